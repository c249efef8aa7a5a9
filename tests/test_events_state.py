"""The run-state fold the displays share: status, ETA without paused time, best accuracy."""

from schedtui.events.state import RunState


def step(n, t):
    return {"type": "step", "step": n, "time": t, "epoch": 0, "loss": 0.5, "knobs": {"lr": 0.1}, "samples_per_s": 100.0}


def test_eta_does_not_count_paused_time_and_status_follows_pause_resume():
    st = RunState.from_header({"preset": "moons", "device": "cpu", "config": {"epochs": 10}, "steps_per_epoch": 100})
    assert st.total_steps == 1000
    for n in range(1, 101):
        st.apply(step(n, n * 0.01))  # 100 steps a second
    assert abs(st.eta_s - 9.0) < 0.05
    st.apply({"type": "pause", "step": 100, "time": 1.0, "reason": "user"})
    assert st.status == "paused"
    st.apply({"type": "resume", "step": 100, "time": 301.0})  # five minutes paused
    for n in range(101, 201):
        st.apply(step(n, 301.0 + (n - 100) * 0.01))
    assert st.status == "running" and abs(st.eta_s - 8.0) < 0.05  # not inflated by the pause


def test_best_accuracy_errors_and_end():
    st = RunState()
    for acc in (0.5, 0.8, 0.7):
        st.apply({"type": "eval", "step": 1, "time": 1.0, "loss": 0.3, "acc": acc})
    st.apply({"type": "error", "step": 2, "time": 2.0, "message": "RuntimeError: boom"})
    st.apply({"type": "end", "step": 2, "time": 2.0, "status": "crashed"})
    assert st.best_val_acc == 0.8 and st.error == "RuntimeError: boom" and st.status == "crashed"


def test_a_run_resumed_from_a_checkpoint_is_running_again():
    st = RunState.from_header({"config": {"epochs": 2}, "steps_per_epoch": 5})
    st.apply({"type": "end", "step": 4, "status": "interrupted"})
    assert st.status == "interrupted" and st.end is not None
    st.apply({"type": "resume", "step": 4, "checkpoint": "runs/x/checkpoints/step-00000004.pt"})
    assert st.status == "running" and st.end is None
