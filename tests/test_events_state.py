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


HEAD = {"run_id": "r", "preset": "toy", "config": {"epochs": 4, "early_stopping": {"metric": "val_loss"}}, "steps_per_epoch": 10}


def ev_eval(step, loss, acc, model="raw", reason="epoch"):
    return {"type": "eval", "step": step, "split": "val", "model": model, "loss": loss, "acc": acc, "reason": reason}


def test_swa_and_ema_evaluations_are_their_own_and_the_best_is_by_early_stoppings_metric():
    st = RunState.from_header(HEAD)
    for e in (ev_eval(10, 0.9, 0.6), ev_eval(10, 0.1, 0.99, "ema"), ev_eval(20, 0.4, 0.8), ev_eval(20, 0.05, 1.0, "swa"),
              ev_eval(30, 0.5, 0.85)):  # more accurate at 30, but early stopping watches the loss
        st.apply(e)
    assert (st.best_metric, st.best_val_loss, st.best_val_acc, st.best_step) == ("val_loss", 0.4, 0.8, 20)
    assert st.final_eval["step"] == 30 and st.final_eval["model"] == "raw"
    assert st.averaged() == {"swa": ev_eval(20, 0.05, 1.0, "swa"), "ema": ev_eval(10, 0.1, 0.99, "ema")}
    nowatch = RunState.from_header({"config": {"epochs": 4}})
    for e in (ev_eval(10, 0.9, 0.6), ev_eval(20, 0.4, 0.8), ev_eval(30, 0.5, 0.85), ev_eval(40, 0.6, 0.85)):
        nowatch.apply(e)
    assert (nowatch.best_metric, nowatch.best_step) == ("val_acc", 40)  # by accuracy; a tie goes to the later, as the engine
    regression = RunState()
    for e in (ev_eval(10, 0.9, float("nan")), ev_eval(20, 0.4, float("nan"))):
        regression.apply(e)
    assert (regression.best_metric, regression.best_step) == ("val_loss", 20)


def test_after_early_stopping_restored_the_best_weights_the_final_validation_is_the_restored_models():
    st = RunState.from_header(HEAD)
    for e in (ev_eval(10, 0.4, 0.8), ev_eval(20, 0.6, 0.7),
              {"type": "early_stop", "step": 20, "metric": "val_loss", "best": 0.4, "best_step": 10, "restored": True}):
        st.apply(e)
    assert st.restored_best and st.final_eval == ev_eval(10, 0.4, 0.8)  # an older log: no second evaluation, the best's
    st.apply(ev_eval(20, 0.4, 0.8, reason="restored_best"))
    assert st.final_eval["reason"] == "restored_best" and st.best_step == 10  # not ranked again
    st.apply({"type": "end", "step": 20, "status": "stopped", "epochs_completed": 2, "best_metric": "val_loss",
              "best_val_loss": 0.4, "best_val_acc": 0.8, "best_step": 10})
    assert st.outcome == "stopped" and st.epochs_completed == 2
    lost = RunState.from_header(HEAD)  # the best evaluation is not in what was folded: unknown, not the wrong one
    for e in (ev_eval(20, 0.6, 0.7), {"type": "early_stop", "step": 20, "best_step": 10, "restored": True}):
        lost.apply(e)
    assert lost.final_eval is None


def test_a_resume_from_an_earlier_checkpoint_supersedes_what_was_logged_after_it():
    st = RunState.from_header(HEAD)
    for s in range(1, 21):
        st.apply(step(s, s * 0.1))
    st.apply(ev_eval(10, 0.5, 0.8))
    st.apply({"type": "epoch", "step": 10, "epoch": 0})
    st.apply({"type": "edit", "step": 12, "knob": "lr", "op": "set", "value": 0.1})
    st.apply({"type": "swa", "step": 15, "op": "start"})
    st.apply(ev_eval(20, 0.1, 0.99))
    st.apply({"type": "epoch", "step": 20, "epoch": 1})
    st.apply({"type": "edit", "step": 20, "knob": "lr", "op": "set", "value": 0.2})
    st.apply({"type": "end", "step": 20, "status": "interrupted", "epochs_completed": 2})
    st.apply({"type": "resume", "step": 12, "seq": 99, "checkpoint": "c/step-00000012.pt", "epoch": 1, "batch": 2,
              "superseded": [13, 20]})
    assert (st.step, st.epoch, st.epochs_completed, st.status, st.end) == (12, 1, 1, "running", None)
    assert st.superseded == [(13, 20)] and st.resume_points == [(99, 12)] and st.resumes == 1
    assert st.edits == 1 and not st.swa and st.swa_starts == []  # the edit at 12 stays; SWA at 15 and the rest go
    assert st.final_eval["step"] == 10 and (st.best_step, st.best_val_acc) == (10, 0.8)
    assert not st.apply(step(12, 9.0)) and st.apply(step(13, 0.3)) and st.step == 13  # the later copies count
    assert not st.apply({"type": "step", "step": "14"}) and st.step == 13  # no step number: ignored


def test_a_fold_that_begins_at_a_resume_is_partial_and_takes_the_end_events_best():
    st = RunState.from_header(HEAD)  # a live view of `schedtui resume`: its events begin at the resume
    st.apply({"type": "resume", "step": 20, "seq": 50, "checkpoint": "c/step-00000020.pt", "epoch": 2, "batch": 0})
    for e in (ev_eval(30, 0.5, 0.85), ev_eval(40, 0.6, 0.7)):
        st.apply(e)
    assert st.partial and st.best_step == 30  # the best it has seen
    st.apply({"type": "end", "step": 40, "status": "completed", "epochs_completed": 4, "best_metric": "val_loss",
              "best_val_loss": 0.4, "best_val_acc": 0.8, "best_step": 20})
    assert (st.best_step, st.best_val_loss, st.epochs_completed) == (20, 0.4, 4)  # the engine's, over the whole run
