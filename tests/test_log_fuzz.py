"""Fuzz over log lines (seeded, bounded): a log with mutated or garbage lines goes through every reader
(read_log, iter_events, Timeline, compare, export, the fold and the replay and headless summaries, the CLI's
replay, diff and export) and nothing raises but a one-line LogError/UserError, nothing prints a traceback, no raw
ESC reaches the output. The log has a pause, SWA, early stopping and a resume that supersedes three steps.

A seeded generator (no new dependency): each case applies one to three mutations to a small real log, at the
byte level (a changed, dropped or inserted byte, a cut, a duplicated, swapped or dropped line, a garbage line)
or at the JSON level (a field of any event, the header's config included, replaced by an odd value, removed,
or a damaged `$nonfinite` list). A failure prints the seed of its case.
"""

import io
import json
import math
import random

import pytest
from rich.console import Console

from schedtui.cli import main
from schedtui.commands.replay import summary
from schedtui.errors import UserError
from schedtui.events import EventLog, read_log
from schedtui.events import timeline as timeline_mod
from schedtui.events.compare import compare
from schedtui.events.export import csv_rows, exported_preset, scan
from schedtui.events.reader import iter_events
from schedtui.events.state import RunState
from schedtui.events.summary import summary_rows
from schedtui.headless import summary_table
from schedtui.events.timeline import Timeline

CASES = 250
EVIL = "\x1b]52;c;ZXZpbA==\x07[link=file:///etc/passwd]x[/link]\x1b[2J"
ODD = [None, True, False, -1, 0, 2**70, -(2**70), 1e308, -0.0, 0.5, "NaN", "Infinity", "many", "", EVIL, [], {}, [1, [2]],
       {"a": {"b": []}}, {"lr": "x"}, ["lr"], "[" * 70]
NONFINITE = [[["loss"]], "x", [[1, 2]], [["knobs", 0]], [[]], [["config", "epochs"]], [["knobs"]], [["loss", "x", "y"]],
             [[None]], [[True]], {"loss": 1}]
GARBAGE = [b"", b"null", b"[]", b"{}", b"[" * 5000, b"{" * 3000, b'{"seq":', b"1e999", b"-0", b"NaN", b'"str"',
           b"\x00\x00\x00", b"\xff\xfe", b'{"seq": 3, "type": 5}', b'{"seq": true, "type": "step"}', b"\x1b]0;t\x07",
           b'{"seq": 4, "type": "step", "step": "4"}', b'{"seq": 1e400, "type": "eval", "step": 1}',
           b'{"seq":5,"type":"step","step":5,"time":0.5,"epoch":0,"loss":"NaN","knobs":{"lr":0.1},"samples_per_s":1.0}',
           b'{"seq":6,"type":"step","step":6,"time":"x","epoch":[],"loss":{},"knobs":[],"samples_per_s":null}']


def base_log(path):
    head = {"run_id": "r", "preset": "toy", "device": "cpu", "steps_per_epoch": 10, "knobs": {"lr": "constant", "dropout": "constant"},
            "config": {"name": "toy", "epochs": 4, "seed": 0, "optimizer": {"lr": 0.1}, "swa": {"start": None},
                       "edits": []}}
    with EventLog(path, head) as log:
        for i, s in enumerate([*range(1, 34), *range(31, 41)]):  # killed at 33, resumed from the checkpoint at 30
            if i == 33:
                log.emit("resume", 30, checkpoint="checkpoints/step-30.pt", epoch=3, batch=0, superseded=[31, 33])
            loss = math.nan if s == 13 else 1.0 / s
            log.emit("step", s, epoch=(s - 1) // 10, loss=loss, knobs={"lr": 0.1, "dropout": 0.2 if s < 20 else 0.1},
                     samples_per_s=100.0, terms={"task": loss})
            if s == 19:
                log.emit("edit", 19, knob="dropout", op="set", value=0.1, old=0.2, new=0.1)
                log.emit("edit", 19, knob="lr", op="schedule", spec={"kind": "cosine", "end": 0.0}, old=0.1, new=0.1)
            if s == 25:
                log.emit("pause", 25, reason="user")
                log.emit("resume", 25)
                log.emit("swa", 25, op="start", update_every=1, update_unit="epoch")
                log.emit("warning", 25, message="non-finite loss", loss=math.inf)
                log.emit("checkpoint", 25, path="checkpoints/step-25.pt", reason="user")
            if s % 10 == 0:
                log.emit("eval", s, split="val", model="raw", loss=0.5, acc=0.8, reason="epoch", metrics={"f1": math.nan})
                log.emit("epoch", s, epoch=s // 10 - 1, epochs=4, train_loss=0.5, val_loss=0.5, val_acc=0.8)
        log.emit("early_stop", 40, metric="val_loss", evaluations_without_improvement=2, best=0.5, best_step=30,
                 restored=True)
        log.emit("end", 40, status="completed", epochs_completed=4, best_val_acc=0.8, best_val_loss=0.5)
    return path


def mutate_json(rng: random.Random, line: bytes) -> bytes:
    try:
        ev = json.loads(line)
    except (ValueError, RecursionError):
        return line
    if not isinstance(ev, dict) or not ev:
        return line
    target = ev  # a random table inside the event, the event itself most often
    for _ in range(rng.randrange(3)):
        tables = [v for v in target.values() if isinstance(v, dict) and v]
        if not tables:
            break
        target = rng.choice(tables)
    key = rng.choice(list(target))
    what = rng.random()
    if what < 0.6:
        target[key] = rng.choice(ODD)
    elif what < 0.8:
        del target[key]
    else:
        ev["$nonfinite"] = rng.choice(NONFINITE)
    spaced = rng.random() < 0.3
    return json.dumps(ev, separators=(", ", ": ") if spaced else (",", ":")).encode()


def mutate(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")[:-1]
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines)) if lines and rng.random() < 0.8 else 0  # the header, one time in five
        what = rng.randrange(9)
        if not lines:
            lines = [rng.choice(GARBAGE)]
        elif what == 0:  # one changed byte
            line = bytearray(lines[i] or b" ")
            line[rng.randrange(len(line))] = rng.choice(b'"{}[],:0123456789.-eE \\\x00\xffaz')
            lines[i] = bytes(line)
        elif what == 1:  # a byte dropped
            if lines[i]:
                j = rng.randrange(len(lines[i]))
                lines[i] = lines[i][:j] + lines[i][j + 1:]
        elif what == 2:  # bytes put in
            j = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:j] + rng.choice([b"\n", b"\x00", b'"', b"[" * 100, b"\xe2\x80", b",", b"}"]) + lines[i][j:]
        elif what == 3:
            lines.insert(i, rng.choice(GARBAGE))
        elif what == 4:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif what == 5:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif what == 6 and len(lines) > 1:
            del lines[i]
        else:
            lines[i] = mutate_json(rng, lines[i])
    out = b"\n".join(lines) + b"\n"
    if rng.random() < 0.15:
        out = out[:rng.randrange(len(out) + 1)]  # cut anywhere: a torn end, or less
    return out


def exercise(path, base, rng: random.Random, capsys) -> None:
    """Every reader over `path`; only one-line LogError/UserError may come out."""
    def guarded(fn, *args):
        try:
            return fn(*args)
        except UserError as e:  # LogError is a UserError
            assert "\n" not in str(e)
            return None

    for strict in (True, False):
        log = guarded(read_log, path, strict)
    guarded(lambda: list(iter_events(path, strict=False)))

    tl = guarded(Timeline, path, rng.choice([8, 64, 2048]))
    if tl is not None:
        guarded(tl.load)
        tl.buckets(tl.last_step)
        tl.step_at_time(rng.random() * 10)
        state = RunState.from_header(tl.header)
        for ev in tl.events:
            state.apply(ev)
        for k in (1, rng.randint(1, 45), tl.last_step):
            ev = tl.step_event(k)
            if ev is not None:
                state.apply(ev)
        lines = summary(tl)
        assert all("\x1b" not in line and "\n" not in line for line in lines)
        console = Console(file=io.StringIO(), width=120, color_system=None)
        for st in (state, tl.state):
            st.finals()
            console.print(summary_table(st, path))
        assert "\x1b" not in console.file.getvalue()
    guarded(compare, path, base)
    if log is not None:
        guarded(compare, log, log)
    s = guarded(scan, path)
    if s is not None:
        list(csv_rows(path, s))
        summary_rows(s.state)
        guarded(exported_preset, path, None, s)

    out_csv = path.with_suffix(".csv")
    for argv in (["replay", path], ["diff", base, path], ["export", path, "--csv", out_csv, "--force"]):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        assert code in (0, 1, 2) and "Traceback" not in err and "\x1b" not in out + err, (argv, err)
        if code == 2:
            assert err.startswith("schedtui: ") and err.count("\n") == 1, err


def test_mutated_logs_never_raise_anything_but_a_one_line_error(tmp_path, capsys, monkeypatch):
    base = base_log(tmp_path / "base.jsonl")
    data = base.read_bytes()
    rng = random.Random(12)
    for case in range(CASES):
        seed = rng.randrange(2**32)
        r = random.Random(seed)
        monkeypatch.setattr(timeline_mod, "CHUNK", r.choice([256, 4096, 1 << 20]))  # the bulk path over several chunks
        path = tmp_path / f"case{case}.jsonl"
        path.write_bytes(mutate(r, data))
        try:
            exercise(path, base, r, capsys)
        except BaseException:
            print(f"fuzz case {case}, seed {seed}: {path.read_bytes()[:2000]!r}")
            raise
        path.unlink()
        path.with_suffix(".csv").unlink(missing_ok=True)


@pytest.mark.parametrize("header", [{"config": [1]}, {"config": {"epochs": "many"}}, {"steps_per_epoch": 10**400},
                                    {"steps_per_epoch": -3, "config": {"epochs": 10**30}}, {"knobs": EVIL}, {"config": None},
                                    {"preset": ["x"], "run_id": {"a": 1}, "device": 3}])
def test_odd_headers(tmp_path, capsys, header):
    base = base_log(tmp_path / "base.jsonl")
    lines = base.read_bytes().split(b"\n", 1)
    head = {**json.loads(lines[0]), **header}
    path = tmp_path / "events.jsonl"
    path.write_bytes(json.dumps(head).encode() + b"\n" + lines[1])
    exercise(path, base, random.Random(0), capsys)
