"""A log is data: `rerun` and `resume` import the experiment a log names only when the user names it
(--experiment) or says yes on a terminal; nothing is written outside the directory the user chose
(run names are not paths; resume refuses links out of its run directory)."""

import io
import json
import sys
import textwrap

import pytest
from engine_helpers import make_engine, run_to_end
from test_cli_tty import run_in_pty

from schedtui.cli import main
from schedtui.config import load_config
from schedtui.engine.rundir import make_run_dir
from schedtui.errors import UserError
from schedtui.experiment import consent_to_logged

PAYLOAD = """
    import pathlib
    pathlib.Path({marker!r}).write_text("imported")  # what a crafted log's module could do: anything
    import torch
    import schedtui

    def f():
        x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
        return schedtui.Experiment(model=torch.nn.Linear(2, 2), train=(x, (x[:, 0] > 0).long()))
"""


def header(config: dict, **more) -> dict:
    return {"format": "schedtui-events", "version": 1, "seq": 0, "type": "header", "time": 0.0,
            "wall": "2026-01-01T00:00:00Z", "run_id": "crafted", "preset": "x", "config": config, "seed": 0,
            "device": "cpu", **more}


def write_log(path, head: dict, *events: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in (head, *events)))
    return path


@pytest.fixture
def crafted(tmp_path, monkeypatch):
    """A directory holding a payload module and a log naming it, made the current directory (as a person who
    downloaded both would stand in it); returns (log path, module:function, marker path)."""
    work = tmp_path / "work"
    work.mkdir()
    name = f"payload_{tmp_path.name[-10:].replace('-', '_')}"
    marker = tmp_path / "MARKER"
    (work / f"{name}.py").write_text(textwrap.dedent(PAYLOAD.format(marker=str(marker))))
    target = f"{name}:f"
    log = write_log(work / "run" / "events.jsonl", header({"name": "x", "experiment": target, "epochs": 1, "device": "cpu"}))
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_factory puts "" on it, as `python -m` does
    sys.modules.pop(name, None)
    yield log, target, marker
    sys.modules.pop(name, None)


def one_line(capsys, rc, code=2):
    err = capsys.readouterr().err
    assert rc == code and len(err.strip().splitlines()) == 1 and err.startswith("schedtui:"), err
    return err


def test_rerun_imports_a_logged_experiment_only_when_the_user_names_it(crafted, tmp_path, capsys):
    log, target, marker = crafted
    runs = tmp_path / "runs"
    err = one_line(capsys, main(["rerun", str(log), "--headless", "--runs-dir", str(runs)]))
    assert f"add --experiment {target}" in err and str(log.parent.parent / target.split(":")[0]) in err
    assert not marker.exists() and not runs.exists()  # nothing imported, nothing created

    err = one_line(capsys, main(["rerun", str(log), "--headless", "--runs-dir", str(runs), "--experiment", "other:f"]))
    assert "does not match" in err and not marker.exists() and not runs.exists()

    assert main(["rerun", str(log), "--headless", "--runs-dir", str(runs), "--experiment", target]) == 0
    assert marker.exists() and len(list(runs.iterdir())) == 1  # the user named it: it runs


def test_a_stdlib_module_named_by_a_log_is_not_imported_either(tmp_path, capsys, monkeypatch):
    log = write_log(tmp_path / "events.jsonl", header({"name": "x", "experiment": "this:x", "epochs": 1, "device": "cpu"}))
    monkeypatch.delitem(sys.modules, "this", raising=False)  # importing `this` prints the Zen of Python
    err = one_line(capsys, main(["rerun", str(log), "--headless", "--runs-dir", str(tmp_path / "runs")]))
    assert "add --experiment this:x" in err and "this.py" in err
    assert "Beautiful is better than ugly" not in capsys.readouterr().out and "this" not in sys.modules


def test_an_own_loop_run_still_says_it_cannot_be_rerun(tmp_path, capsys):
    log = write_log(tmp_path / "events.jsonl", header({"name": "x", "experiment": "<own loop>", "epochs": 1}))
    for cmd in (["rerun", str(log)], ["rerun", str(log), "--experiment", "<own loop>"]):
        assert "driven by its own training loop" in one_line(capsys, main([*cmd, "--runs-dir", str(tmp_path / "r")]))
    assert "names no experiment" in one_line(capsys, main(["rerun", str(write_log(tmp_path / "b.jsonl", header({"name": "x"}))),
                                                           "--experiment", "m:f", "--runs-dir", str(tmp_path / "r")]))


def test_resume_imports_a_logged_experiment_only_when_the_user_names_it(crafted, capsys):
    log, target, marker = crafted
    (log.parent / "checkpoints").mkdir()
    (log.parent / "checkpoints" / "step-00000001.pt").write_bytes(b"junk")
    before = log.read_bytes()
    err = one_line(capsys, main(["resume", str(log.parent), "--headless"]))
    assert f"add --experiment {target}" in err and not marker.exists()
    err = one_line(capsys, main(["resume", str(log.parent), "--headless", "--experiment", target]))
    assert marker.exists() and "not a readable schedtui checkpoint" in err  # imported, then on to the checkpoint
    assert log.read_bytes() == before


class Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("answer, allowed", [("y\n", True), ("yes\n", True), ("n\n", False), ("\n", False), ("", False)])
def test_on_a_terminal_the_user_is_shown_what_would_be_imported_and_asked(tmp_path, answer, allowed):
    out = Tty()
    ask = lambda: consent_to_logged("json.tool:main", None, "LOG", "rerun it", stdin=Tty(answer), stdout=out)  # noqa: E731
    if allowed:
        ask()
    else:
        with pytest.raises(UserError, match="not importing json.tool:main: nothing started"):
            ask()
    assert "imports module json.tool from" in out.getvalue() and "json" in out.getvalue() and "[y/N]" in out.getvalue()
    with pytest.raises(UserError, match="add --experiment"):  # a terminal on one side only: no question
        consent_to_logged("json.tool:main", None, "LOG", "rerun it", stdin=io.StringIO("y\n"), stdout=Tty())


def test_the_question_in_a_real_terminal_defaults_to_no(crafted, tmp_path):  # "y" is the fake-terminal test's
    log, target, marker = crafted
    runs = tmp_path / "runs"
    status, seen = run_in_pty(["rerun", str(log), "--headless", "--runs-dir", str(runs)], [("[y/N]", ["\r"])])
    assert status == 2 and not marker.exists() and not runs.exists()  # keys are typed only once [y/N] shows


BAD_NAMES = ["../../OUTSIDE", "{abs}", "a/b", "..", ".hidden", "-rf", "", "a\x1b]0;title\x07", "a\\b", "x" * 65, "a..b"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_that_is_a_path_is_refused_and_nothing_is_created(tmp_path, capsys, monkeypatch, name):
    name = name.format(abs=tmp_path / "ABS")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    preset = tmp_path / "p.toml"
    preset.write_text(f"name = {json.dumps(name)}\n")
    for args in (["moons", "--set", f"name={json.dumps(name)}"], [str(preset)]):
        err = one_line(capsys, main([*args, "--headless", "--set", "device='cpu'", "--runs-dir", "runs"]))
        assert "cannot name a run directory: use 1 to 64 letters, digits" in err and "\x1b" not in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["cwd", "p.toml"]
    for bad in ("../x", str(tmp_path / "y"), ""):
        with pytest.raises(UserError, match="cannot name a run directory"):
            make_run_dir(tmp_path / "runs", bad)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["cwd", "p.toml"]


def test_a_name_from_a_file_name_is_made_safe(tmp_path):
    preset = tmp_path / ".my preset+1.toml"
    preset.write_text("epochs = 1\n")
    assert load_config(str(preset))[0]["name"] == "my_preset_1"


def test_rerun_of_a_log_whose_name_is_a_path_stays_inside_runs_dir(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = run_to_end(make_engine(tmp_path / "src", ["epochs=1"])).path
    head, rest = src.read_text().split("\n", 1)
    head = json.loads(head)
    head["config"]["name"] = "../../OUTSIDE"
    src.write_text(json.dumps(head) + "\n" + rest)
    assert main(["rerun", str(src), "--headless", "--runs-dir", "re", "--data-dir", str(tmp_path / "data")]) == 0
    (run,) = (tmp_path / "re").iterdir()
    assert run.name.startswith("OUTSIDE-") and (run / "events.jsonl").is_file() and (run / "config.toml").is_file()
    assert "cannot name a run directory; this rerun is named 'OUTSIDE'" in capsys.readouterr().err
    assert not list(tmp_path.parent.glob("OUTSIDE*")) and not list(tmp_path.glob("OUTSIDE*"))


def stopped_run(root, epochs=200):
    engine = make_engine(root, [f"epochs={epochs}"])
    engine.send("stop")
    run_to_end(engine)
    return engine.run_dir


@pytest.mark.parametrize("link", ["checkpoints", "events.jsonl", "traceback.txt", "checkpoints/latest",
                                  "checkpoints/step-00000000.pt.tmp"])
def test_resume_refuses_a_link_that_leads_out_of_the_run_directory(tmp_path, capsys, link):
    run_dir = stopped_run(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    path = run_dir / link
    if path.exists():
        path.rename(outside / path.name)
    path.symlink_to(outside / path.name)
    before = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    err = one_line(capsys, main(["resume", str(run_dir), "--headless"]))
    assert "outside the run directory" in err and str(outside) in err
    assert {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()} == before


def test_resume_follows_a_link_that_stays_inside(tmp_path, capsys):
    run_dir = stopped_run(tmp_path, epochs=2)
    (run_dir / "checkpoints").rename(run_dir / "kept")
    (run_dir / "checkpoints").symlink_to("kept")
    assert main(["resume", str(run_dir), "--headless"]) == 0, capsys.readouterr().err
    assert len(list((run_dir / "kept").glob("step-*.pt"))) == 2  # the one it stopped with, and the last
