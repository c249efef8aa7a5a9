"""The Hugging Face Trainer under schedtui: real `Trainer.train` runs of a tiny BERT built offline from a config."""

import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainerCallback, TrainingArguments  # noqa: F401 (used in the subprocess script)

import schedtui.hf
from engine_helpers import of_type
from schedtui.cli import main
from schedtui.errors import UserError
from schedtui.events import read_log

MODEL = "BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)"


class Tokens(torch.utils.data.Dataset):
    """Token ids and a label, as dicts (no tokenizer): the label is whether token 0 is in the first half."""

    def __init__(self, n, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randint(0, 50, (n, 8), generator=g)
        self.y = (self.x[:, 0] < 25).long()

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"input_ids": self.x[i], "labels": self.y[i]}


class Seen(TrainerCallback):
    """What the Trainer itself did: the lr right before each update, and its own loss log."""

    def __init__(self, during=None):
        self.lrs, self.logged, self.during = [], [], during

    def on_step_begin(self, args, state, control, **kw):
        if self.during:
            self.during(state.global_step)

    def on_pre_optimizer_step(self, args, state, control, optimizer=None, **kw):
        self.lrs.append(optimizer.param_groups[0]["lr"])

    def on_log(self, args, state, control, logs=None, **kw):
        if "loss" in logs:
            self.logged.append(logs["loss"])


def train(tmp_path, steer=None, during=None, epochs=2, **args):
    torch.manual_seed(0)
    model = BertForSequenceClassification(eval(MODEL))
    steer = steer or schedtui.hf.Steer(runs_dir=tmp_path / "runs")
    seen = Seen(during)
    targs = TrainingArguments(output_dir=str(tmp_path / "out"), num_train_epochs=epochs, per_device_train_batch_size=8,
                              eval_strategy="epoch", logging_steps=1, report_to=[], save_strategy="no", use_cpu=True,
                              disable_tqdm=True, log_level="error", learning_rate=1e-2, **args)
    trainer = Trainer(model=model, args=targs, train_dataset=Tokens(40), eval_dataset=Tokens(16, seed=1),
                      callbacks=[steer, seen],
                      compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())})
    trainer.train()
    return trainer, seen, read_log(steer.run_dir / "events.jsonl")


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("hf"), gradient_accumulation_steps=2)


def test_every_update_is_logged_with_the_trainers_own_loss_and_lr(hf_run):
    trainer, seen, log = hf_run
    steps = of_type(log, "step")
    assert len(steps) == trainer.state.global_step == 6  # 5 batches an epoch, 2 per update: 3 updates an epoch
    assert [s["loss"] for s in steps] == pytest.approx(seen.logged, rel=1e-6)  # the Trainer's own `loss` log
    assert [s["knobs"]["lr"] for s in steps] == seen.lrs  # what the optimizer used: the Trainer's linear decay
    assert seen.lrs[0] == 1e-2 and seen.lrs == sorted(seen.lrs, reverse=True)
    evals = of_type(log, "eval")
    assert [e["step"] for e in evals] == [3, 6] and all(0 <= e["acc"] <= 1 and e["loss"] > 0 for e in evals)
    assert [e["val_loss"] for e in of_type(log, "epoch")] == [e["loss"] for e in evals]
    assert of_type(log, "end")[0]["status"] == "completed"
    assert log.header["driver"] == "transformers" and log.header["own_loop"] is True and log.header["seed"] is None
    assert log.header["knobs"]["lr"] == "your LambdaLR (stepped by the Hugging Face Trainer, per step)"
    assert type(trainer.lr_scheduler) is torch.optim.lr_scheduler.LambdaLR  # given back its own class


def test_an_hf_run_replays_diffs_and_exports_but_does_not_rerun(hf_run, tmp_path, capsys):
    run_dir = str(hf_run[2].path.parent)
    assert main(["replay", run_dir]) == 0
    assert main(["diff", run_dir, run_dir]) == 0
    assert main(["export", run_dir, "--csv", str(tmp_path / "steps.csv")]) == 0
    capsys.readouterr()
    assert main(["rerun", run_dir, "--headless", "--runs-dir", str(tmp_path / "re")]) == 2
    err = capsys.readouterr().err.strip()
    assert "Hugging Face" in err and "no factory to run again" in err and len(err.splitlines()) == 1


def test_edits_override_the_trainers_scheduler_a_pause_waits_and_a_stop_ends_it_stopped(tmp_path):
    steer = schedtui.hf.Steer(runs_dir=tmp_path / "runs")
    held = {}

    def watch():  # another thread: the run holds still while paused, then goes on when resumed
        try:
            while steer.run.mon.status != "paused":
                time.sleep(0.01)
            step = steer.run.mon.core.step
            time.sleep(0.3)
            held["still"] = steer.run.mon.core.step == step
        finally:
            steer.send("resume")

    def during(step):  # sent while update step+1 runs: applies at the boundary after it
        if step == 1:
            steer.send("edit", knob="lr", op="set", value=0.5)
        elif step == 3:
            threading.Thread(target=watch, daemon=True).start()
            steer.send("pause")
        elif step == 4:
            steer.send("edit", knob="lr", op="revert")
        elif step == 6:
            steer.send("stop")

    trainer, seen, log = train(tmp_path, steer, during, epochs=4)
    linear = [1e-2 * (1 - i / 20) for i in range(20)]  # the Trainer's linear decay over 4 x 5 updates
    assert seen.lrs == pytest.approx(linear[:2] + [0.5] * 3 + linear[5:7])  # its chain goes on under the edit
    assert [s["knobs"]["lr"] for s in of_type(log, "step")] == seen.lrs
    assert held["still"] and [e["step"] for e in of_type(log, "pause")] == [4]
    end = of_type(log, "end")[0]
    assert end["status"] == "stopped" and end["step"] == trainer.state.global_step == 7
    assert not of_type(log, "warning")


def test_bad_input_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match="screen must be one of 'auto', 'headless'"):
        schedtui.hf.Steer(screen="textual")
    with pytest.raises(UserError, match="schedules must be a dict"):
        schedtui.hf.Steer(schedules=["lr"])
    with pytest.raises(UserError, match="name must be letters, digits"):
        schedtui.hf.Steer(name="../up")
    with pytest.raises(UserError, match="bogus: unknown key"):
        schedtui.hf.Steer(config={"bogus": 1})
    with pytest.raises(UserError, match="label_smoothing_factor"):
        train(tmp_path, label_smoothing_factor=0.1)


CRASH = f"""
import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments
import schedtui.hf

class Broken(BertForSequenceClassification):
    calls = 0
    def forward(self, input_ids=None, labels=None, **kw):
        Broken.calls += 1
        if Broken.calls == 4:
            raise ValueError("a bug in forward")
        return super().forward(input_ids=input_ids, labels=labels, **kw)

x = torch.randint(0, 50, (24, 8))
data = [{{"input_ids": x[i], "labels": torch.tensor(i % 2)}} for i in range(24)]
args = TrainingArguments(output_dir="out", num_train_epochs=2, per_device_train_batch_size=8, report_to=[],
                         save_strategy="no", use_cpu=True, disable_tqdm=True, log_level="error")
Trainer(model=Broken({MODEL}), args=args, train_dataset=data, callbacks=[schedtui.hf.Steer(runs_dir="runs")]).train()
"""


def test_an_exception_in_training_ends_the_run_crashed_when_the_process_exits(tmp_path):
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(CRASH)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 1 and "ValueError: a bug in forward" in out.stderr
    (log_path,) = (tmp_path / "runs").glob("*/events.jsonl")
    log = read_log(log_path)
    assert len(of_type(log, "step")) == 3 and of_type(log, "end")[0]["status"] == "crashed"
    assert of_type(log, "error")[0]["message"] == "ValueError: a bug in forward"
