"""Each benchmark in benchmarks/ runs, in a tiny configuration, and writes the JSON its README describes.

Not timed tests: a benchmark here must run and report, not be fast (`--no-check`:
tiny runs are all noise). The real measurements are run by hand; see
benchmarks/README.md.
"""

import importlib.util
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def bench(name: str):
    """benchmarks/NAME.py as a module (its directory goes on sys.path, as when it is run)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(name: str, tmp_path, *argv) -> dict:
    out = tmp_path / f"{name}.json"
    assert bench(name).main([*argv, "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["benchmark"] == name and {"cpu", "cores", "torch", "python"} <= set(data["machine"])
    return data


def test_overhead_moons_bare_against_the_live_ui(tmp_path):
    d = run("overhead", tmp_path, "--workload", "moons", "--variants", "bare,ui", "--rounds", "1", "--epochs", "1",
            "--no-check")
    moons = d["workloads"]["moons"]
    assert set(moons["seconds"]) == {"bare", "ui"} and set(moons["ratio"]) == {"ui"}
    assert moons["steps"] == 25 and moons["same_weights"] is True
    assert moons["ui_frames"][0] > 0 and moons["ui_terminal_kb"][0] > 0  # the live app drew in its terminal


def test_overhead_cnn_bare_against_the_headless_engine(tmp_path):
    d = run("overhead", tmp_path, "--workload", "cnn", "--variants", "bare,headless", "--rounds", "1", "--cnn-images", "160",
            "--cnn-test", "16", "--cnn-batch", "16", "--cnn-epochs", "1", "--cnn-width", "4", "--no-check")
    cnn = d["workloads"]["cnn"]
    assert cnn["steps"] == 10 and cnn["same_weights"] is True and "headless" in cnn["ratio"]


def test_data_pipeline(tmp_path):
    d = run("data_pipeline", tmp_path, "--images", "256", "--batch", "64", "--rounds", "1", "--workers", "0", "--no-check")
    assert set(d["median_samples_per_s"]) == {"schedtui", "torchvision, 0 workers"}
    assert d["speedup_vs_best"] > 0


def test_event_log(tmp_path):
    d = run("event_log", tmp_path, "--steps", "3000", "--runs", "1", "--app-runs", "1", "--no-check")
    assert d["write"]["events"] > 3000 and d["write"]["events_per_s"] > 0
    assert d["load"]["steps"] == 3000 and d["load"]["load_s"] > 0 and d["app_open_median_s"] > 0


def test_startup(tmp_path):
    d = run("startup", tmp_path, "--runs", "1")  # checked: --help and replay must not import torch
    assert d["help"]["torch"] is False and d["replay"]["torch"] is False
    assert 0 < d["moons_first_screen_s"] <= d["moons_running_s"]


def test_cuda_sync_check_or_its_machinery_on_the_cpu(tmp_path):
    import torch

    argv = []
    if not torch.cuda.is_available():
        assert run("cuda", tmp_path)["skipped"]  # without a GPU it says so and exits 0
        argv = ["--device", "cpu"]  # and the same run, without the sync check, on the CPU
    d = run("cuda", tmp_path, *argv, "--steps", "2", "--batch", "8")
    assert d["sync"]["status"] == "completed" and d["sync"]["steps"] == 2


def test_ddp_bare_against_steered_on_two_processes(tmp_path):
    d = run("ddp", tmp_path, "--rounds", "1", "--epochs", "1", "--images", "320", "--batch", "32", "--width", "4",
            "--no-check")
    assert d["same_weights"] is True and len(d["ratios"]) == 1 and d["ratio"] > 0


def test_overhead_moons_bare_against_an_attached_screen(tmp_path):
    d = run("overhead", tmp_path, "--workload", "moons", "--variants", "bare,attached", "--rounds", "1", "--epochs", "1",
            "--no-check")
    moons = d["workloads"]["moons"]
    assert set(moons["ratio"]) == {"attached"} and moons["same_weights"] is True
    assert moons["attached_terminal_kb"][0] > 0  # `schedtui attach` drew the run, to its end, in its terminal
    assert "schedtui-control" in moons["cpu_s"]["attached"][0]  # the trainer served it from its control thread
