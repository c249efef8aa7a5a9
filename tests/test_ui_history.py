"""A resumed run's screen shows the whole run, from its log: the curves, marks and events before the resume."""

from engine_helpers import TINY_MOONS
from schedtui.commands.resume import plan_resume
from schedtui.config import load_config
from schedtui.launch import start_run
from schedtui.ui.app import TrainApp
from schedtui.ui.source import LiveSource
from ui_helpers import until


def stopped_run(tmp_path):
    """A tiny run with an edit at step 7, stopped (with its checkpoint) after step 30."""
    cfg, _ = load_config("moons", [*TINY_MOONS, "epochs=400", 'edits=[{step=7, knob="dropout", op="set", value=0.05}]'])
    run = start_run(cfg, tmp_path / "data", tmp_path / "runs", start=False)
    engine = run.engine
    engine.start()
    while engine.step < 30:
        engine.join(0.01)
    engine.send("stop").result(30)
    assert engine.join(30)
    return run.run_dir, engine.step


async def test_a_resumed_run_shows_its_history_and_a_true_eta(tmp_path):
    run_dir, stopped_at = stopped_run(tmp_path)
    cfg, resume = plan_resume(str(run_dir), None)
    source = LiveSource(lambda: start_run(cfg, tmp_path / "data", tmp_path / "runs", resume=resume))
    app = TrainApp(source, refresh_hz=20)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.view.state is not None and app.view.state.step > stopped_at + 40, what="steps after the resume")
        assert source.history == run_dir / "events.jsonl" and source.history_seq > 30
        steps, _ = app.view.series["loss"].curve(0, app.view.state.step)
        assert steps[0] <= 2 and steps[-1] > stopped_at + 40  # the loss from the first step on
        assert (8, "bold yellow") in app.view.marks  # the edit before the resume, marked
        listed = app.event_log.plain()
        assert "dropout 0.2→0.05 set (planned)" in listed and f"resumed from step-{stopped_at:08d}.pt" in listed
        assert listed.count("resumed from") == 1  # read from the log, not again from the run
        st = app.view.state
        resume_ev = next(ev for ev in reversed(app.view.entries) if "resumed from" in ev[3])
        assert resume_ev[0] == stopped_at
        t0 = next(t for t in _resume_times(run_dir))
        expected = (st.elapsed_s - t0) / (st.step - stopped_at) * (st.total_steps - st.step)
        assert abs(st.eta_s - expected) <= 0.05 * expected  # counted from the resume, not from step 0
        source.engine.send("stop")
        source.engine.join(30)


def _resume_times(run_dir):
    import json

    for line in (run_dir / "events.jsonl").read_text().splitlines():
        ev = json.loads(line)
        if ev.get("type") == "resume":
            yield ev["time"]
