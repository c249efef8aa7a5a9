"""The performance shortcuts give exactly what the plain paths give.

- knob values kept while their schedule holds them (`KnobSchedules`' hold cache) equal
  values computed afresh, step by step, through edits, observed metrics and a state load;
- torch schedules stepped ahead in chunks equal torch's classes stepped once per update;
- the step-event encoder writes json's own text (standard JSON: a non-finite float as its name, listed in
  `$nonfinite`), and the reader gets the event back;
- `EventLog.emit_many` numbers, stamps and hands out events like `emit`;
- a `LineWidget` line is drawn as Textual's own text pipeline draws it.
"""

import json
import math
import random

import pytest

from schedtui.events import EventLog, read_log
from schedtui.events.encode import make_encoder
from schedtui.schedule import KnobSchedules, Timing
from schedtui.schedule.bounds import NONNEGATIVE, UNIT, UNIT_OPEN

T = Timing(steps_per_epoch=7, total_steps=140)
SPECS = {
    "lr": {"kind": "OneCycleLR", "max_lr": 0.2, "unit": "step"},
    "momentum": {"kind": "constant"},
    "weight_decay": {"kind": "linear", "end": 1e-3, "duration": 12},
    "dropout": {"kind": "milestones", "values": {"3": 0.3, "7.5": 0.1}},
    "label_smoothing": {"kind": "piecewise", "points": [[0, 0.1], [4, 0.1], [9, 0.0]]},
    "bn_momentum": {"kind": "follow", "knob": "lr", "factor": 0.25},
    "grad_clip": {"kind": "StepLR", "step_size": 3, "gamma": 0.5},
    "patience": {"kind": "ReduceLROnPlateau", "patience": 0, "factor": 0.5},
}
INITIAL = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "dropout": 0.5, "label_smoothing": 0.1, "bn_momentum": 0.1,
           "grad_clip": 1.0, "patience": 4.0}
BOUNDS = {"lr": NONNEGATIVE, "momentum": UNIT_OPEN, "weight_decay": NONNEGATIVE, "dropout": UNIT_OPEN,
          "label_smoothing": UNIT_OPEN, "bn_momentum": UNIT, "grad_clip": NONNEGATIVE, "patience": NONNEGATIVE}


def make() -> KnobSchedules:
    return KnobSchedules(dict(INITIAL), json.loads(json.dumps(SPECS)), BOUNDS, T)


def fresh(ks: KnobSchedules, step: int) -> dict:
    ks._held.clear()  # what the values are without anything kept from earlier steps
    return ks.values(step)


def test_kept_knob_values_equal_fresh_ones_through_edits_metrics_and_a_state_load():
    a, b = make(), make()
    script = {20: ("edit", "dropout", "set", {"value": 0.2}), 33: ("observe", {"val_loss": 1.0}),
              40: ("edit", "momentum", "scale", {"factor": 0.5}), 41: ("observe", {"val_loss": 2.0}),
              55: ("edit", "weight_decay", "schedule", {"spec": {"kind": "milestones", "values": {"2": 5e-4}}}),
              70: ("edit", "dropout", "revert", {}), 90: ("load", None), 100: ("edit", "lr", "set", {"value": 0.05})}
    saved = None
    for step in range(T.total_steps + 1):
        if step in script:
            what = script[step]
            for ks in (a, b):
                if what[0] == "edit":
                    ks.edit(what[1], what[2], step=step, current=fresh(ks, step), **what[3])
                elif what[0] == "observe":
                    ks.observe(what[1], step)
                elif saved is not None:
                    ks.load_state_dict(json.loads(saved))
            if what[0] == "observe":
                saved = json.dumps(a.state_dict())
        assert a.values(step) == fresh(b, step), step


def test_torch_schedules_stepped_ahead_equal_torch_stepped_each_update():
    import torch

    ks = make()
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=T.total_steps)
    opt.step()
    for step in range(T.total_steps):
        assert ks.values(step)["lr"] == opt.param_groups[0]["lr"]
        sched.step()


def _random_event(rng: random.Random, k: int) -> dict:
    def num():
        return rng.choice([rng.random(), -rng.random() * 1e-9, 0.0, -0.0, float("nan"), math.inf, -math.inf, 1, 0, 10**20,
                           None, True, 1e16, 1e-5, 123456.789])

    knobs = {name: num() for name in rng.sample(["lr", "lr@head", "dropout", "é", 'q"uote', "loss@task"], 4)}
    ev = {"seq": k, "type": "step", "step": k, "time": round(rng.random() * 100, 6), "epoch": k // 10, "loss": num(),
          "knobs": knobs, "samples_per_s": rng.choice([None, 1234.5, 99.0])}
    if rng.random() < 0.3:
        ev["terms"] = {"task": num(), "l2": num()}
    if rng.random() < 0.1:
        ev["extra"] = [1, 2]  # another shape: json's own encoder
    if rng.random() < 0.1:
        ev["knobs"] = {1: 0.5}  # a non-str key: json's own encoder
    return ev


def _standard(ev: dict) -> str:
    """The log's line, the plain way: json's text, each non-finite float written as its name, their paths listed."""
    paths = []

    def walk(o, path):
        if isinstance(o, float) and not math.isfinite(o):
            paths.append(path)
            return "NaN" if o != o else ("Infinity" if o > 0 else "-Infinity")
        if isinstance(o, dict):
            return {k if isinstance(k, str) else json.dumps(k): walk(v, path + [k if isinstance(k, str) else json.dumps(k)])
                    for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v, path + [i]) for i, v in enumerate(o)]
        return o

    out = walk(ev, [])
    if paths:
        out["$nonfinite"] = paths
    return json.dumps(out, separators=(",", ":"), allow_nan=False)


def _strict(line: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(line, parse_constant=refuse)


def test_step_events_are_encoded_as_json_writes_them():
    from schedtui.events.compare import same
    from schedtui.events.reader import parse_line

    enc, rng = make_encoder(), random.Random(0)
    for k in range(3000):
        ev = _random_event(rng, k)
        line = enc(ev)
        assert line == _standard(ev), ev
        _strict(line)
        back, why = parse_line(line.encode())
        assert why == "" and same(back, json.loads(json.dumps(ev))), (ev, back)  # keys as json writes them
    for odd in ({"loss": 1e308, "knobs": {"a": 1e308}}, {"loss": math.nan, "knobs": {"a": -math.inf}, "terms": {"t": math.inf}}):
        ev = {"seq": 1, "type": "step", "step": 1, "time": 0.1, "epoch": 0, "loss": odd["loss"], "knobs": odd["knobs"],
              "samples_per_s": 1.0, **({"terms": odd["terms"]} if "terms" in odd else {})}
        assert enc(ev) == _standard(ev)  # a sum that overflows; NaN and infinities in the step fast path


def test_emit_many_numbers_stamps_and_hands_out_like_emit(tmp_path):
    with EventLog(tmp_path / "e.jsonl", {"run_id": "x"}) as log:
        sub = log.subscribe()
        log.emit("epoch", 0, epoch=0)
        evs = log.emit_many("step", [(1, {"epoch": 0, "loss": 0.5}), (2, {"epoch": 0, "loss": float("nan")})])
        log.emit("end", 2, status="completed")
        assert [e["seq"] for e in evs] == [2, 3] and evs[0]["time"] == evs[1]["time"]
        assert [sub.get_nowait()["seq"] for _ in range(4)] == [1, 2, 3, 4]
        with pytest.raises(ValueError):
            log.emit_many("nope", [])
    events = read_log(tmp_path / "e.jsonl").events
    assert [(e["type"], e["step"]) for e in events] == [("epoch", 0), ("step", 1), ("step", 2), ("end", 2)]
    assert math.isnan(events[2]["loss"])


async def test_line_widget_draws_lines_as_textual_does():
    from rich.text import Span, Text
    from textual.app import App

    from schedtui.ui.lines import LineWidget

    class Lines(LineWidget):
        texts: list = []

        def text_lines(self):
            return self.texts

    class Host(App):
        def compose(self):
            yield Lines()

    rng = random.Random(1)
    styles = ["bold", "red", "green", "grey62", "bold yellow", "reverse bold green", "cyan"]
    async with Host().run_test(size=(60, 10)) as pilot:
        w = pilot.app.query_one(Lines)
        for _ in range(200):
            plain = "".join(rng.choice("ab ▁▂█→━x.0123") for _ in range(rng.randint(0, 58)))
            cuts = sorted(rng.sample(range(len(plain) + 1), min(len(plain) + 1, 2 * rng.randint(0, 3))))
            spans = [Span(a, b, rng.choice(styles)) for a, b in zip(cuts[::2], cuts[1::2]) if b > a]
            text = Text(plain, spans=spans, style=rng.choice(["", "yellow", "bold cyan"]))
            ours = [(s.text, s.style) for s in w._to_strip(text, 0, 60)]
            theirs = [(s.text, s.style) for s in w._textual_strip(text, 60)]

            def plainstyle(segs):
                out = []
                for t, st in segs:  # the same characters in the same styles (meta aside), however split
                    base = st.copy() if st is not None else None
                    if base is not None:
                        base._meta = None
                    out.extend((c, str(base)) for c in t)
                return out

            assert plainstyle(ours) == plainstyle(theirs), text


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("weight", [1.0, 0.5, 0.0])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_a_single_loss_term_gives_what_the_weighted_sum_gives(task, weight, smoothing):
    """The one-term shortcut (no product by a weight of 1, no smoothing arithmetic at 0, no stack of
    the total with itself: its row is the 0-d total) gives the same total and the same gradients, bit for bit."""
    import torch
    import torch.nn.functional as F

    from schedtui.engine.losses import WeightedLoss

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1 if task == "binary" else 4)
    x = torch.randn(32, 3)
    y = torch.randint(0, 2 if task == "binary" else 4, (32,))
    loss = WeightedLoss(model, task, {"task": weight}, smoothing)
    total, row = loss(model(x), y)
    total.backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    logits = model(x)
    if task == "binary":  # the general formula, written out
        term = F.binary_cross_entropy_with_logits(logits.reshape(-1), y.float() * (1.0 - smoothing) + 0.5 * smoothing)
    else:
        term = F.cross_entropy(logits, y, label_smoothing=smoothing)
    expected = weight * term if weight else (logits * 0.0).sum()
    expected.backward()
    assert total.item() == expected.item() and row.dim() == 0 and row.item() == expected.item()  # the total alone
    assert all(torch.equal(a, p.grad) for a, p in zip(got, model.parameters()))


def test_a_run_whose_only_loss_weight_goes_to_zero_and_back_logs_every_step(tmp_path):
    from engine_helpers import make_engine, of_type, run_to_end

    engine = make_engine(tmp_path, ["epochs=2", "edits=[{step=3, knob='loss@task', op='set', value=0.0},"
                                                " {step=6, knob='loss@task', op='set', value=2.0}]"])
    log = run_to_end(engine)
    steps = of_type(log, "step")
    assert log.events[-1]["status"] == "completed" and [e["step"] for e in steps] == list(range(1, len(steps) + 1))
    assert [e["loss"] for e in steps[3:6]] == [0.0] * 3 and all(e["loss"] > 0 for e in steps[6:])
