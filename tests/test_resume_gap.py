"""A checkpoint reaches the disk only after the log holds (fsynced) every step up to it; when a log is behind its
checkpoint anyway (cut by hand, a disk that lost its tail), resume refuses in one line and names the way out."""

from engine_helpers import make_engine, of_type, run_to_end
from schedtui.cli import main


def test_resume_refuses_a_checkpoint_ahead_of_the_log_and_names_an_earlier_one(tmp_path, capsys):
    log = run_to_end(make_engine(tmp_path, ["epochs=6", "engine.checkpoint_every=2"]))
    cks = of_type(log, "checkpoint")
    assert [c["reason"] for c in cks] == ["epoch", "epoch", "completed"]
    for c in cks:  # each checkpoint's step is already in the log before it: the log was written first
        assert any(e["type"] == "step" and e["step"] == c["step"] and e["seq"] < c["seq"] for e in log.events)
    keep = cks[1]["step"] - 3  # the log now ends three steps before the second checkpoint
    lines = log.path.read_text().splitlines(keepends=True)
    cut = [ln for ln in lines if '"type":"step"' not in ln or int(ln.split('"step":')[1].split(",")[0]) <= keep]
    cut = [ln for ln in cut if '"type":"end"' not in ln and '"type":"checkpoint"' not in ln]
    log.path.write_text("".join(cut[: next(i for i, ln in enumerate(cut) if f'"step":{keep},' in ln and '"type":"step"' in ln) + 1]))
    (log.path.parent / "checkpoints" / "latest").write_text(f"step-{cks[1]['step']:08d}.pt\n")
    capsys.readouterr()
    assert main(["resume", str(log.path.parent), "--headless"]) == 2
    (err,) = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("schedtui: ")]  # one line
    assert f"the log ends at step {keep}" in err
    assert f"--from step-{cks[0]['step']:08d}.pt" in err
    assert main(["resume", str(log.path.parent), "--headless", "--from", f"step-{cks[0]['step']:08d}.pt"]) == 0
