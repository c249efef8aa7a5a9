"""`schedtui resume`: a CPU run stopped and resumed is bit-identical to one that ran straight through,
in the same log; and what cannot be resumed is refused in one line, with nothing touched."""

import shutil
import time

import torch
from engine_helpers import make_engine, of_type, run_to_end

from schedtui.cli import main
from schedtui.engine import checkpoint
from schedtui.events import read_log

SPE = 5  # tiny moons: 160 training points, batches of 32
SETS = [
    "epochs=12", "engine.checkpoint_every=1",
    # weight decay halves at every epoch end whose val_loss is not a new maximum: state that must round-trip
    'schedules.weight_decay={kind="ReduceLROnPlateau", patience=0, factor=0.5, mode="max"}',
    # a planned edit at an epoch end: its plateau must see only the metrics observed after step 10
    'edits=[{step=10, knob="momentum", op="schedule", spec={kind="ReduceLROnPlateau", patience=0, factor=0.9, mode="max"}}]',
]
LIVE_EDIT = dict(knob="lr", op="schedule", spec={"kind": "StepLR", "step_size": 7, "gamma": 0.7, "unit": "step"})


def steered(root):
    """A run with a live edit at step 0 (sent while paused before the first update)."""
    engine = make_engine(root, SETS)
    engine.send("pause")
    engine.send("edit", **LIVE_EDIT)
    engine.send("resume")
    return engine


def steps(events):
    return [(e["step"], e["loss"], e["knobs"]) for e in events if e["type"] == "step"]


def after_resume(log):
    i = max(i for i, e in enumerate(log.events) if e["type"] == "resume" and "checkpoint" in e)
    return log.events[i], log.events[i + 1:]


def resume(run_dir, *extra):
    return main(["resume", str(run_dir), "--headless", *extra])


def test_stopped_mid_epoch_and_resumed_matches_a_straight_run_bit_for_bit(tmp_path, capsys):
    straight = run_to_end(steered(tmp_path / "a"))
    wd = {k["weight_decay"] for _, _, k in steps(straight.events)}
    assert len(wd) > 3 and len({k["lr"] for _, _, k in steps(straight.events)}) > 3  # the schedules do move

    engine = steered(tmp_path / "b")
    engine.start()
    while engine.step < 12:
        time.sleep(0.0005)
    engine.send("pause").result(30)
    while engine.step % SPE == 0:  # land mid-epoch: one more update, then pause again
        at = engine.step
        engine.send("resume").result(30)
        while engine.step == at:  # (a fixed sleep here let a loaded machine run the 60 updates to their end)
            time.sleep(0.0005)
        engine.send("pause").result(30)
    engine.send("stop").result(30)
    assert engine.join(30)
    stop = engine.step
    run_dir = engine.run_dir
    branch = tmp_path / "branch"
    shutil.copytree(run_dir, branch)
    before = (run_dir / "events.jsonl").read_bytes()

    assert resume(run_dir) == 0, capsys.readouterr().err
    log = read_log(run_dir / "events.jsonl")
    assert not log.warnings and (run_dir / "events.jsonl").read_bytes().startswith(before)  # appended to
    assert [e["seq"] for e in log.events] == list(range(1, len(log.events) + 1))  # one log, seq consecutive
    marker, rest = after_resume(log)
    assert marker["step"] == stop and marker["checkpoint"].endswith(checkpoint.file_name(stop))
    assert (marker["epoch"], marker["batch"]) == divmod(stop, SPE) and "superseded" not in marker
    assert steps(rest) == [s for s in steps(straight.events) if s[0] > stop]  # every loss and knob value
    assert steps(log.events) == steps(straight.events)
    assert of_type(log, "end")[-1]["status"] == "completed"
    assert [e["val_loss"] for e in of_type(log, "epoch")] == [e["val_loss"] for e in of_type(straight, "epoch")]

    # the same stopped run, resumed from the checkpoint at the end of epoch 2: exactly an epoch boundary
    assert resume(branch, "--from", checkpoint.file_name(2 * SPE)) == 0
    out = capsys.readouterr().out
    log = read_log(branch / "events.jsonl")
    marker, rest = after_resume(log)
    assert (marker["step"], marker["epoch"], marker["batch"]) == (2 * SPE, 2, 0)
    assert marker["superseded"] == [2 * SPE + 1, stop]  # the steps logged after the checkpoint
    assert any("superseded" in w["message"] for w in of_type(log, "warning"))
    assert "superseded" in out and f"resumed from {branch / 'checkpoints' / checkpoint.file_name(10)} at step 10" in out
    assert steps(rest) == [s for s in steps(straight.events) if s[0] > 2 * SPE]
    assert len(of_type(log, "edit")) == 2  # the planned edit at step 10 was in the checkpoint, not applied again


def test_what_cannot_be_resumed_is_refused_in_one_line_and_left_alone(tmp_path, capsys):
    def refused(args, match):
        assert main(["resume", *map(str, args), "--headless"]) == 2
        err = capsys.readouterr().err
        assert match in err and err.count("\n") == 1, err
        return err

    refused([tmp_path / "nope"], "no such run directory")
    done = run_to_end(make_engine(tmp_path / "done", ["epochs=2"])).path.parent
    refused([done], "the run completed at step 10; there is nothing to resume")

    engine = make_engine(tmp_path / "stopped", ["epochs=200"])
    engine.send("stop")
    run_to_end(engine)
    run_dir = engine.run_dir
    before = (run_dir / "events.jsonl").read_bytes()
    other = make_engine(tmp_path / "other", ["epochs=200"])
    other.send("stop")
    run_to_end(other)
    refused([run_dir, "--from", other.run_dir / "checkpoints" / "step-00000000.pt"], "not of this run")
    old = run_dir / "checkpoints" / "old.pt"
    torch.save({"format": "schedtui-checkpoint", "version": 1, "step": 0}, old)
    refused([run_dir, "--from", old], "checkpoint version 1 was written by an older schedtui")
    (run_dir / "checkpoints" / "junk.pt").write_bytes(b"not a checkpoint")
    refused([run_dir, "--from", "junk.pt"], "not a readable schedtui checkpoint")
    refused([run_dir, "--from", "step-00000099.pt"], "no such checkpoint file")
    assert (run_dir / "events.jsonl").read_bytes() == before  # nothing was appended
    edited = tmp_path / "edited"  # the same run, its header's config changed by hand
    shutil.copytree(run_dir, edited)
    head, rest = before.split(b"\n", 1)
    (edited / "events.jsonl").write_bytes(head.replace(b'"lr":0.01,', b'"lr":0.02,', 1) + b"\n" + rest)
    refused([edited], "written under another config")
    shutil.rmtree(run_dir / "checkpoints")
    refused([run_dir], "no checkpoint to resume from")


def test_a_killed_run_resumes_from_its_last_checkpoint_past_a_torn_line(tmp_path, capsys):
    engine = make_engine(tmp_path, ["epochs=40", "engine.checkpoint_every=1"])
    engine.start()
    while engine.step < 7:
        time.sleep(0.0005)
    engine.send("stop").result(30)
    assert engine.join(30)
    stop, path = engine.step, engine.run_dir / "events.jsonl"
    # as if killed with SIGKILL at `stop`: no final checkpoint, no end, the last line half written
    for f in (checkpoint.LATEST, checkpoint.file_name(stop)):
        (engine.run_dir / "checkpoints" / f).unlink()
    lines = path.read_bytes().splitlines(keepends=True)
    kept = [ln for ln in lines if b'"type":"end"' not in ln and b'"reason":"stopped"' not in ln]
    path.write_bytes(b"".join(kept) + kept[-1][:30])
    newest = 5 * (stop // 5) if stop % 5 else stop - 5
    capsys.readouterr()
    assert resume(engine.run_dir) == 0
    log = read_log(path)
    assert not log.warnings and [e["seq"] for e in log.events] == list(range(1, len(log.events) + 1))
    marker, rest = after_resume(log)
    assert marker["step"] == newest and marker["checkpoint"].endswith(checkpoint.file_name(newest))
    assert marker["superseded"] == [newest + 1, stop]
    assert any("torn" in w["message"] for w in of_type(log, "warning"))
    assert [s for s, _, _ in steps(rest)] == list(range(newest + 1, 201))
    assert log.events[-1]["status"] == "completed"


def test_a_cifar_run_with_augmentation_resumes_mid_epoch_bit_for_bit(tmp_path, capsys):
    """Random crops and flips draw from the loader's own generator: mid-epoch, it must be where it was."""
    from cifar_fixture import make_fake_cifar

    data = tmp_path / "data"
    make_fake_cifar(data, n_train_per_batch=40, n_test=20)
    sets = ["device=cpu", "epochs=3", "data.verify=false", "data.batch_size=50", "model.width=4"]
    straight = run_to_end(make_engine(tmp_path / "a", sets, preset="cifar10", data_dir=data))
    engine = make_engine(tmp_path / "b", sets, preset="cifar10", data_dir=data)
    engine.send("pause")
    engine.start()
    engine.send("resume").result(30)
    while engine.step < 5:
        time.sleep(0.001)
    engine.send("pause").result(30)
    while engine.step % 4 == 0:  # land mid-epoch (4 batches an epoch)
        engine.send("resume").result(30)
        time.sleep(0.01)
        engine.send("pause").result(30)
    engine.send("stop").result(30)
    assert engine.join(30)
    stop = engine.step
    assert stop < 12 and stop % 4
    assert resume(engine.run_dir, "--data-dir", str(data)) == 0, capsys.readouterr().err
    log = read_log(engine.run_dir / "events.jsonl")
    marker, rest = after_resume(log)
    assert marker["step"] == stop and (marker["epoch"], marker["batch"]) == divmod(stop, 4)
    assert steps(rest) == [s for s in steps(straight.events) if s[0] > stop]
    assert steps(log.events) == steps(straight.events)
