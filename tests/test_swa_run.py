"""SWA, EMA and early stopping in real (tiny, CPU) runs: what torch's swa_utils would give, and what a person sees."""

import time

import torch
from torch.optim.swa_utils import SWALR, AveragedModel

from engine_helpers import make_engine, of_type, run_to_end
from schedtui.cli import main
from schedtui.events import read_log

SWA = ["swa.start=4", "swa.swa_lr=0.01", "swa.anneal_epochs=2", "swa.anneal_strategy=\"linear\"", "model.batchnorm=true",
       "schedules.lr={kind=\"CosineAnnealingLR\", eta_min=0.001, unit=\"step\"}"]  # 5 steps an epoch in TINY_MOONS


def wait_for(pred, timeout=30.0):
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.005)


def checkpoints(run_dir):
    return {int(p.stem.split("-")[1]): torch.load(p, weights_only=True) for p in (run_dir / "checkpoints").glob("step-*.pt")}


def test_scheduled_swa_lr_phase_is_swalr_and_the_average_is_averaged_models(tmp_path):
    engine = make_engine(tmp_path, ["epochs=9", "engine.checkpoint_every=1", *SWA])
    log = run_to_end(engine)
    spe = log.header["steps_per_epoch"]
    start = 4 * spe
    (swa_start,) = [e for e in of_type(log, "swa") if e["op"] == "start"]
    assert swa_start["step"] == start
    (edit,) = of_type(log, "edit")
    assert (edit["step"], edit["knob"], edit["by"], edit["spec"]["kind"]) == (start, "lr", "swa", "SWALR")
    # the lr of every update from the start on equals torch's SWALR, stepped once an epoch
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=edit["old"])
    ref = SWALR(opt, swa_lr=0.01, anneal_epochs=2, anneal_strategy="linear")
    lrs = {s["step"]: s["knobs"]["lr"] for s in of_type(log, "step")}
    for epoch in range(5):
        for k in range(spe):
            assert lrs[start + epoch * spe + k + 1] == opt.param_groups[0]["lr"]
        opt.step()
        ref.step()
    # the average equals AveragedModel fed the weights of each epoch end since the start
    ckpt = checkpoints(engine.run_dir)
    model = engine.parts.model
    ref_avg = AveragedModel(model)
    for epoch in range(5, 10):
        model.load_state_dict(ckpt[epoch * spe]["model"])
        ref_avg.update_parameters(model)
    final = ckpt[9 * spe]["stateful"]["averaging"]["swa"]
    assert int(final["n_averaged"]) == 5
    for name, p in ref_avg.named_parameters():
        assert torch.equal(final[name], p), name
    # evaluated at every epoch since, BatchNorm recomputed first
    swa_evals = [e for e in of_type(log, "eval") if e["model"] == "swa"]
    assert [e["step"] for e in swa_evals] == [e * spe for e in range(5, 10)] and all(e["bn_updated"] for e in swa_evals)


def test_swa_on_demand_update_bn_stop_and_a_rerun_reproduces_it(tmp_path, capsys):
    engine = make_engine(tmp_path, ["epochs=20000", "model.batchnorm=true"])
    engine.start()
    wait_for(lambda: engine.step >= 12)
    start = engine.send("swa", op="start").result(10)
    assert start["op"] == "start"
    target = start["step"] + 12
    wait_for(lambda: engine.step >= target)
    bn = engine.send("swa", op="update_bn").result(10)
    assert bn["op"] == "update_bn"
    stop = engine.send("swa", op="stop").result(10)
    assert stop["n_averaged"] >= 2
    target = engine.step + 7
    wait_for(lambda: engine.step >= target)
    engine.send("stop").result(10)
    engine.join(30)
    src = read_log(engine.run_dir / "events.jsonl")
    assert [e for e in of_type(src, "eval") if e.get("reason") == "update_bn"][0]["model"] == "swa"
    assert main(["rerun", str(engine.run_dir), "--headless", "--runs-dir", str(tmp_path / "re"),
                 "--data-dir", str(tmp_path / "data")]) == 0
    (re_dir,) = (tmp_path / "re").iterdir()
    re = read_log(re_dir / "events.jsonl")
    steps = lambda log: [(s["step"], s["loss"], s["knobs"]) for s in of_type(log, "step")]
    assert steps(re) == steps(src)
    evals = lambda log: [(e["step"], e["model"], e["loss"]) for e in of_type(log, "eval")]
    assert evals(re) == evals(src)
    assert [(e["step"], e["op"]) for e in of_type(re, "swa") if e["op"] != "update"] == \
           [(e["step"], e["op"]) for e in of_type(src, "swa") if e["op"] != "update"]


def test_early_stopping_ends_the_run_with_the_best_weights_and_says_why(tmp_path):
    engine = make_engine(tmp_path, ["epochs=40", "engine.checkpoint_every=1", "early_stopping.patience=2",
                                    "early_stopping.min_delta=0.05", "early_stopping.metric=\"val_loss\""])
    log = run_to_end(engine)
    (es,) = of_type(log, "early_stop")
    end = of_type(log, "end")[0]
    assert end["status"] == "stopped" and end["reason"].startswith("early stopping: val_loss did not improve for 2")
    assert es["evaluations_without_improvement"] == 2 and es["restored"]
    ckpt = checkpoints(engine.run_dir)
    best = ckpt[es["best_step"]]["model"]
    for k, v in engine.parts.model.state_dict().items():
        assert torch.equal(v, best[k]), k
    assert end["epochs_completed"] == es["step"] // log.header["steps_per_epoch"]
    assert "patience" in of_type(log, "step")[0]["knobs"]


def test_ema_is_evaluated_each_epoch_and_its_decay_is_a_knob(tmp_path):
    engine = make_engine(tmp_path, ["epochs=3", "ema.decay=0.9", 'edits=[{step=7, knob="ema_decay", op="set", value=0.5}]'])
    log = run_to_end(engine)
    assert [e["step"] for e in of_type(log, "eval") if e["model"] == "ema"] == [5, 10, 15]
    decays = {s["step"]: s["knobs"]["ema_decay"] for s in of_type(log, "step")}
    assert decays[7] == 0.9 and decays[8] == 0.5


def test_an_exported_preset_starts_swa_where_the_run_did(tmp_path, capsys):
    engine = make_engine(tmp_path, ["epochs=20000"])
    engine.start()
    wait_for(lambda: engine.step >= 13)
    start = engine.send("swa", op="start").result(10)["step"]
    target = start + 11
    wait_for(lambda: engine.step >= target)
    engine.send("stop").result(10)
    engine.join(30)
    out = tmp_path / "again.toml"
    assert main(["export", str(engine.run_dir), "--preset", str(out)]) == 0
    from schedtui.config import load_config
    from schedtui.engine.averaging import swa_start_step
    from schedtui.schedule import Timing

    cfg, _ = load_config(str(out))
    assert cfg["edits"] == []  # the lr's SWA phase is not an edit of its own: starting SWA applies it
    assert swa_start_step(cfg["swa"], Timing(5, 5 * cfg["epochs"])) == start


def test_a_run_averaging_with_swa_and_ema_resumes_bit_for_bit(tmp_path, capsys):
    sets = ["epochs=10", "ema.decay=0.9", "early_stopping.patience=50", *SWA]
    straight = run_to_end(make_engine(tmp_path / "a", sets))
    engine = make_engine(tmp_path / "b", sets)
    engine.start()
    wait_for(lambda: engine.step >= 33)  # SWA started at step 20; mid-epoch or not, it must not matter
    engine.send("stop").result(30)
    assert engine.join(30)
    assert main(["resume", str(engine.run_dir), "--headless"]) == 0, capsys.readouterr().err
    log = read_log(engine.run_dir / "events.jsonl")
    steps = lambda log: [(s["step"], s["loss"], s["knobs"]) for s in of_type(log, "step")]
    assert steps(log) == steps(straight)
    evals = lambda log: [(e["step"], e["model"], e["loss"], e["acc"]) for e in of_type(log, "eval")]
    assert evals(log) == evals(straight)  # the averaged models too


def test_the_moons_swa_demo_runs_its_swa_phase_to_the_end_and_the_average_ends_better(tmp_path):
    from schedtui.config import load_config
    from schedtui.events.state import RunState
    from schedtui.launch import start_run

    cfg, _ = load_config("moons-swa", [])
    log = run_to_end(start_run(cfg, tmp_path / "data", tmp_path / "runs", start=False).engine)
    st = RunState.from_header(log.header)
    for ev in log.events:
        st.apply(ev)
    assert (st.status, st.epochs_completed, st.early_stop) == ("completed", 30, None)  # nothing undoes the SWA phase
    swa, raw = st.evals["swa"], st.final_eval
    during = [e for e in of_type(log, "eval") if e["model"] == "raw" and e["step"] > st.swa_started]
    assert swa["loss"] < raw["loss"] and swa["acc"] >= raw["acc"]  # what the summary shows: the average is better
    assert swa["loss"] < sum(e["loss"] for e in during) / len(during)  # than the weights it averaged, on the whole


def test_the_end_events_best_is_the_one_early_stopping_kept(tmp_path):
    from engine_helpers import make_engine, of_type, run_to_end

    log = run_to_end(make_engine(tmp_path, ["epochs=40", "early_stopping={patience=3, min_delta=0.02}"]))
    stop, end = of_type(log, "early_stop"), of_type(log, "end")[0]
    assert stop and end["best_step"] == stop[0]["best_step"] and end["best_metric"] == "val_loss"
    assert end["best_val_loss"] == stop[0]["best"]
    restored = [e for e in of_type(log, "eval") if e.get("reason") == "restored_best"]
    assert restored and restored[0]["loss"] == stop[0]["best"]  # the run ends with the model it reports
