"""Timeline: a recorded run indexed for replay, checked against the strict reader (`read_log`).

What a user of `schedtui replay` would notice: the chart's bucket means and knob
values, any single step read back, every non-step event kept in order, what a bad
log keeps and what it warns about, what is refused at once, and following a log
that is still being written. Logs are written with the real `EventLog` writer
(the bulk path) or re-written by hand with other spacing (the careful path)."""

import json
import math
import random

import pytest

from schedtui.events import EventLog, LogError, read_log
from schedtui.events import timeline as timeline_mod
from schedtui.events.timeline import Timeline

KNOBS0 = {"lr": 0.1, "dropout": 0.1}


def header(epochs=1, steps_per_epoch=100):
    return {"run_id": "t", "preset": "synthetic", "config": {"name": "synthetic", "epochs": epochs, "seed": 0},
            "steps_per_epoch": steps_per_epoch, "knobs": dict(KNOBS0), "device": "cpu"}


def write_run(path, steps=300, steps_per_epoch=100, epochs=None, losses=None, seed=0, end=True, skip=(), terms=False):
    """A log shaped like the engine's: steps, eval+epoch at each epoch end, edits, a pause/resume, an end."""
    rng = random.Random(seed)
    epochs = epochs if epochs is not None else math.ceil(steps / steps_per_epoch)
    dropout = 0.1
    with EventLog(path, header(epochs, steps_per_epoch)) as log:
        for k in range(1, steps + 1):
            if k in skip:
                continue
            e = (k - 1) // steps_per_epoch
            loss = losses(k) if losses is not None else 2.0 * math.exp(-k / steps) + 0.1 * rng.random()
            extra = {"terms": {"ce": loss, "aux": 0.5}} if terms else {}  # a loss with several terms
            knobs = {"lr": round(0.1 * (1 - k / (steps + 1)), 9), "dropout": dropout}
            log.emit("step", k, epoch=e, loss=loss, knobs=knobs, samples_per_s=1.0, **extra)
            if k % 97 == 0:
                new = round(dropout * 0.9, 6)
                log.emit("edit", k, knob="dropout", op="set", value=new, old=dropout, new=new)
                dropout = new
            if k == 150:
                log.emit("pause", k, reason="user")
                log.emit("resume", k)
            if k % steps_per_epoch == 0:
                log.emit("eval", k, split="val", model="raw", loss=loss * 1.1, acc=0.5, reason="epoch")
                log.emit("epoch", k, epoch=e, epochs=epochs, elapsed_s=k * 0.01, eta_s=None, samples_per_s=1.0,
                         train_loss=loss)
        if end:
            log.emit("end", steps, status="completed")
    return path


def respace(src, dst):
    """The same log re-written with json.dumps's default separators: the bulk regexes don't match it."""
    lines = src.read_bytes().split(b"\n")
    dst.write_text("".join(json.dumps(json.loads(x)) + "\n" for x in lines if x), encoding="utf-8")
    return dst


def is_loss(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def expected_buckets(events, bucket):
    """(first step, mean of finite losses or None, first step's knobs, its time) per bucket, from reader events."""
    groups: dict[int, dict] = {}
    last = 0
    for ev in events:
        if ev["type"] != "step" or not isinstance(ev.get("step"), int) or (ev["step"] <= last and groups):
            continue
        last = ev["step"]
        g = groups.setdefault((ev["step"] - 1) // bucket, {"first": ev, "losses": []})
        if is_loss(ev.get("loss")):
            g["losses"].append(ev["loss"])
    return [(j * bucket + 1, math.fsum(g["losses"]) / len(g["losses"]) if g["losses"] else None,
             g["first"].get("knobs") or {}, g["first"].get("time")) for j, g in sorted(groups.items())]


def assert_matches(tl, events):
    """The timeline agrees with these reader events: buckets (means tight, knobs and times exact), non-step events."""
    got, want = tl.buckets(tl.last_step), expected_buckets(events, tl.bucket)
    assert [b[0] for b in got] == [b[0] for b in want]
    for (s, m, kn, t), (_, wm, wkn, wt) in zip(got, want):
        assert (m is None) == (wm is None), s
        assert m is None or math.isclose(m, wm, rel_tol=1e-12, abs_tol=1e-15), (s, m, wm)
        assert kn == wkn and t == wt, s
    assert tl.events == [e for e in events if e["type"] != "step"]
    steps = [e["step"] for e in events if e["type"] == "step"]
    assert tl.last_step == (max(steps) if steps else 0)


@pytest.fixture
def spy_bulk(monkeypatch):
    """Records what the bulk path said for each chunk: True taken, False handed to the careful path."""
    calls: list[bool] = []
    real = Timeline._bulk

    def bulk(self, data, offset):
        ok = real(self, data, offset)
        calls.append(ok)
        return ok

    monkeypatch.setattr(Timeline, "_bulk", bulk)
    return calls


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(timeline_mod, "CHUNK", 4096)
    return 4096


def opened(path, capacity=2048, final=True):
    tl = Timeline(path, capacity=capacity)
    tl.load(final=final)
    return tl


# ---- a good log: the same picture as the reader, by either path ------------------------------------------


@pytest.mark.parametrize("terms", [False, True], ids=["one-loss", "loss-terms"])
@pytest.mark.parametrize("capacity", [2048, 16])
def test_bulk_path_buckets_and_events_match_reader(tmp_path, spy_bulk, capacity, terms):
    path = write_run(tmp_path / "events.jsonl", steps=300, terms=terms)
    tl = opened(path, capacity)
    assert spy_bulk and all(spy_bulk)
    assert tl.warnings == []
    assert tl.header == read_log(path).header
    if capacity == 2048:
        assert tl.bucket == 1 and len(tl.buckets(tl.last_step)) == 300  # 300 steps fit: no downsampling
    else:
        assert tl.bucket == math.ceil(300 / 16) and len(tl.buckets(tl.last_step)) <= 16
    assert_matches(tl, read_log(path).events)


@pytest.mark.parametrize("capacity", [2048, 16])
def test_careful_path_other_spacing_matches_reader(tmp_path, spy_bulk, capacity):
    path = respace(write_run(tmp_path / "compact.jsonl", steps=300), tmp_path / "spaced.jsonl")
    tl = opened(path, capacity)
    assert spy_bulk and not any(spy_bulk)
    assert tl.warnings == []
    assert_matches(tl, read_log(path).events)


def test_both_paths_give_the_same_picture(tmp_path):
    compact = write_run(tmp_path / "compact.jsonl", steps=500, steps_per_epoch=50)
    a, b = opened(compact, 32), opened(respace(compact, tmp_path / "spaced.jsonl"), 32)
    assert a.bucket == b.bucket and a.events == b.events and a.last_step == b.last_step
    for (s1, m1, k1, t1), (s2, m2, k2, t2) in zip(a.buckets(10**9), b.buckets(10**9), strict=True):
        assert s1 == s2 and k1 == k2 and t1 == t2 and math.isclose(m1, m2, rel_tol=1e-12)


def test_buckets_upto_stops_at_the_cursor(tmp_path):
    tl = opened(write_run(tmp_path / "events.jsonl", steps=300), capacity=16)
    b = tl.bucket
    assert [s for s, *_ in tl.buckets(1)] == [1]
    assert [s for s, *_ in tl.buckets(b)] == [1]
    assert [s for s, *_ in tl.buckets(b + 1)] == [1, b + 1]
    assert tl.buckets(10**9) == tl.buckets(tl.last_step)


def test_step_at_time_from_bucket_times(tmp_path):
    tl = opened(write_run(tmp_path / "events.jsonl", steps=300), capacity=16)
    bs = tl.buckets(tl.last_step)
    assert tl.step_at_time(bs[3][3]) == bs[3][0]
    assert tl.step_at_time(-1.0) == 0
    assert tl.step_at_time(math.inf) == bs[-1][0]


# ---- bounded memory -------------------------------------------------------------------------------------


@pytest.mark.parametrize("spaced", [False, True], ids=["bulk", "careful"])
@pytest.mark.parametrize("steps_per_epoch", [100, None], ids=["header-100-steps", "header-no-length"])
def test_run_longer_than_header_says_stays_within_capacity(tmp_path, small_chunks, spaced, steps_per_epoch):
    path = write_run(tmp_path / "events.jsonl", steps=5000, steps_per_epoch=100, epochs=1)  # header: 100 steps
    if steps_per_epoch is None:  # a header without the run's length: buckets start at one step each
        lines = path.read_bytes().split(b"\n", 1)
        head = json.loads(lines[0])
        del head["steps_per_epoch"]
        path.write_bytes(json.dumps(head, separators=(",", ":")).encode() + b"\n" + lines[1])
    if spaced:
        path = respace(path, tmp_path / "spaced.jsonl")
    tl = Timeline(path, capacity=16)
    held = []
    tl.load(progress=lambda frac: held.append(len(tl._sum)))  # after every chunk
    assert len(held) > 10 and max(held) <= 16
    assert len(tl.buckets(tl.last_step)) <= 16 and tl.last_step == 5000
    assert tl.bucket * 16 >= 5000
    assert_matches(tl, read_log(path).events)


# ---- any step on demand ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spaced", [False, True], ids=["bulk", "careful"])
def test_step_event_equals_the_readers_step(tmp_path, small_chunks, spaced):
    path = write_run(tmp_path / "events.jsonl", steps=2000, skip={1234})
    if spaced:
        path = respace(path, tmp_path / "spaced.jsonl")
    tl = opened(path, capacity=64)
    by_step = {e["step"]: e for e in read_log(path).events if e["type"] == "step"}
    ks = [1, 2, 2000, 1233, 1235, *random.Random(1).sample(sorted(by_step), 40)]
    for k in ks:
        assert tl.step_event(k) == by_step[k], k
    for k in (0, -3, 1234, 2001, 10**9):  # 1234 was never written
        assert tl.step_event(k) is None, k


def test_step_event_on_an_unloaded_or_stepless_log(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path, header()) as log:
        log.emit("eval", 0, split="val", model="raw", loss=1.0, acc=0.1, reason="manual")
    tl = Timeline(path)
    assert tl.step_event(1) is None
    tl.load()
    assert tl.step_event(1) is None and tl.buckets(100) == [] and tl.last_step == 0
    assert tl.events == read_log(path).events


def test_a_line_longer_than_a_chunk_is_kept(tmp_path, small_chunks):
    path = tmp_path / "events.jsonl"
    with EventLog(path, header()) as log:
        for k in range(1, 101):
            log.emit("step", k, epoch=0, loss=k / 100, knobs=dict(KNOBS0), samples_per_s=1.0)
            if k == 50:
                log.emit("warning", k, message="x" * (3 * small_chunks))
    tl = opened(path)
    assert tl.warnings == []
    assert_matches(tl, read_log(path).events)
    assert tl.step_event(51) == read_log(path).events[51]


# ---- bad logs: shows what it can, says what it skipped ----------------------------------------------------


def test_torn_last_line_dropped_with_warning(tmp_path):
    path = write_run(tmp_path / "events.jsonl", steps=300, end=False)
    with open(path, "ab") as f:
        f.write(b'{"seq":9999,"type":"step","step":301,"time":1.0,"ep')
    ref = read_log(path)
    tl = opened(path)
    assert len(tl.warnings) == 1 and "torn" in tl.warnings[0]
    assert tl.warnings == ref.warnings  # same line number
    assert_matches(tl, ref.events)
    assert tl.last_step == 300 and tl.step_event(300) == [e for e in ref.events if e["type"] == "step"][-1]


def test_complete_last_line_without_newline_is_kept(tmp_path):
    path = write_run(tmp_path / "events.jsonl", steps=300)
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    tl = opened(path)
    assert tl.warnings == []
    assert tl.events[-1]["type"] == "end"
    assert_matches(tl, read_log(path).events)


def garbage_log(tmp_path, at, junk, steps=300):
    """A good log with `junk` lines inserted after the `at`-th line of each (1 = after the header)."""
    path = write_run(tmp_path / "good.jsonl", steps=steps)
    lines = path.read_bytes().split(b"\n")
    for n in sorted(at, reverse=True):
        lines[n:n] = junk
    bad = tmp_path / "events.jsonl"
    bad.write_bytes(b"\n".join(lines))
    return bad


JUNK = {
    "text": [b"garbage{"],
    "binary": [b"\x00\xff\xfe binary \x00"],
    "blank": [b""],
    "json-not-event": [b"[1, 2, 3]", b'{"no": "seq"}'],
    "looks-like-a-step": [b'{"seq":7,"type":"step","step":7,"time":0.1,"epoch":0,"loss":9.0,"knobs":{"lr":1}}x'],
}


@pytest.mark.parametrize("kind", JUNK)
def test_garbage_in_the_middle_skipped_with_warning(tmp_path, kind):
    path = garbage_log(tmp_path, [5, 200], JUNK[kind])
    with pytest.raises(LogError):
        read_log(path)  # strict: refused
    ref = read_log(path, strict=False)
    tl = opened(path)
    assert tl.warnings == ref.warnings
    named = [w for w in tl.warnings if "skipped" in w]
    assert len(named) == 2 * len(JUNK[kind])
    assert named[0].startswith("line 6:") and all(w.startswith("line ") for w in named)
    assert_matches(tl, ref.events)


@pytest.mark.parametrize("capacity", [2048, 16], ids=["first-of-bucket", "inside-a-bucket"])
def test_a_line_torn_in_the_middle_of_the_log_is_not_counted(tmp_path, capacity):
    """A step line cut short (then the log goes on) must not feed its loss into the chart."""
    path = write_run(tmp_path / "events.jsonl", steps=300)
    lines = path.read_bytes().split(b"\n")
    for i, cut in ((10, b'"knobs"'), (20, b'"dropout"'), (30, b'"samples_per_s"')):
        assert b'"type":"step"' in lines[i]
        lines[i] = lines[i][:lines[i].index(cut) + len(cut)]
    i = 40  # cut right after the knobs' closing brace
    lines[i] = lines[i][:lines[i].index(b"},") + 1]
    path.write_bytes(b"\n".join(lines))
    ref = read_log(path, strict=False)
    tl = opened(path, capacity)
    assert tl.warnings == ref.warnings
    assert sum("skipped" in w for w in tl.warnings) == 4
    assert_matches(tl, ref.events)


def test_a_block_of_nul_bytes_skipped_like_the_reader(tmp_path, small_chunks):
    """What a power cut can leave on some file systems: part of the file zeroed, across lines."""
    path = write_run(tmp_path / "events.jsonl", steps=1000)
    data = bytearray(path.read_bytes())
    start = len(data) // 2 + 17
    data[start:start + 700] = bytes(700)
    path.write_bytes(bytes(data))
    ref = read_log(path, strict=False)
    tl = opened(path, capacity=64)
    assert tl.warnings == ref.warnings
    assert any("binary data" in w for w in tl.warnings) and any("missing" in w for w in tl.warnings)
    assert_matches(tl, ref.events)


def test_seq_gap_warns_and_keeps_the_rest(tmp_path, spy_bulk):
    path = write_run(tmp_path / "events.jsonl", steps=300)
    lines = path.read_bytes().split(b"\n")
    del lines[100:103]  # three events lost
    path.write_bytes(b"\n".join(lines))
    ref = read_log(path)
    tl = opened(path)
    assert tl.warnings == ref.warnings
    assert len(tl.warnings) == 1 and "3 events missing" in tl.warnings[0] and "line 101" in tl.warnings[0]
    assert_matches(tl, ref.events)


def test_repeated_step_keeps_the_first(tmp_path):
    path = write_run(tmp_path / "events.jsonl", steps=50)
    lines = path.read_bytes().split(b"\n")
    again = json.loads(lines[10])
    assert again["type"] == "step"
    last_seq = json.loads(lines[-2])["seq"]
    dup = {**again, "seq": last_seq + 1, "loss": 1e9}
    path.write_bytes(b"\n".join(lines[:-1]) + b"\n" + json.dumps(dup).encode() + b"\n")
    tl = opened(path)
    assert any("again" in w for w in tl.warnings)
    assert tl.step_event(again["step"]) == again
    assert all(m < 1e6 for _, m, _, _ in tl.buckets(tl.last_step))


@pytest.mark.parametrize("spaced", [False, True], ids=["bulk", "careful"])
def test_non_finite_losses_left_out_of_means(tmp_path, spaced):
    odd = {2: -math.inf, 3: math.nan, 4: math.inf, 5: -math.inf, 40: math.nan, 61: math.inf, 62: -math.inf}
    nan_bucket = set(range(17, 33))  # four whole buckets of NaN

    def losses(k):
        if k in nan_bucket:
            return math.nan
        return odd.get(k, k / 10)

    path = write_run(tmp_path / "events.jsonl", steps=64, steps_per_epoch=64, losses=losses)
    if spaced:
        path = respace(path, tmp_path / "spaced.jsonl")
    tl = opened(path, capacity=16)  # 4 steps a bucket
    assert tl.bucket == 4 and tl.warnings == []
    assert_matches(tl, read_log(path).events)
    by_start = {s: (m, kn) for s, m, kn, _ in tl.buckets(tl.last_step)}
    assert math.isclose(by_start[1][0], 0.1)  # steps 1-4: 2, 3 and 4 are -inf, NaN and inf
    assert math.isclose(by_start[61][0], (6.3 + 6.4) / 2)  # 61 and 62 are inf and -inf
    assert math.isclose(by_start[5][0], (0.6 + 0.7 + 0.8) / 3)  # step 5 is -inf
    for s in (17, 21, 25, 29):  # all NaN: no mean, but the knobs are there
        assert by_start[s][0] is None and by_start[s][1]["dropout"] == 0.1


@pytest.mark.parametrize("bad", [None, "nan", True], ids=["null", "string", "bool"])
def test_a_loss_that_is_not_a_number_does_not_break_the_load(tmp_path, bad):
    path = write_run(tmp_path / "events.jsonl", steps=40, steps_per_epoch=40,
                     losses=lambda k: bad if k == 7 else k / 10)
    tl = opened(path, capacity=16)
    assert tl.last_step == 40 and tl.step_event(7)["loss"] == bad
    if bad is not True:  # a bool is an int to Python: not worth a special case
        assert_matches(tl, read_log(path).events)


def test_garbage_in_one_chunk_of_many(tmp_path, small_chunks, spy_bulk):
    path = garbage_log(tmp_path, [1500], [b"garbage{"], steps=3000)
    ref = read_log(path, strict=False)
    tl = opened(path, capacity=64)
    assert len(spy_bulk) > 20 and spy_bulk.count(False) == 1  # only the chunk with the junk is read carefully
    assert tl.warnings == ref.warnings == ["line 1501: skipped, not a valid event (not JSON)"]
    assert_matches(tl, ref.events)
    by_step = {e["step"]: e for e in ref.events if e["type"] == "step"}
    for k in (1, 1400, 1450, 1500, 1550, 3000):
        assert tl.step_event(k) == by_step[k]


def test_garbage_in_many_chunks_warnings_are_capped(tmp_path, small_chunks):
    path = garbage_log(tmp_path, list(range(5, 3000, 13)), [b"junk"], steps=3000)
    ref = read_log(path, strict=False)
    tl = opened(path, capacity=64)
    assert tl.warnings == ref.warnings[:-1] and len(tl.warnings) == 100  # reader adds "... and N more"
    assert ref.warnings[-1] == f"... and {tl.dropped_warnings} more warnings"
    assert_matches(tl, ref.events)


# ---- refused at once, in one line -------------------------------------------------------------------------


def refused(path):
    with pytest.raises(LogError) as e:
        Timeline(path)
    msg = str(e.value)
    assert msg.startswith(str(path)) and "\n" not in msg
    return msg


def test_missing_file_refused(tmp_path):
    assert "no such file" in refused(tmp_path / "nope.jsonl")


def test_run_dir_without_log_refused_and_with_one_opened(tmp_path):
    assert "events.jsonl" in refused(tmp_path)
    write_run(tmp_path / "events.jsonl", steps=10)
    assert opened(tmp_path).last_step == 10


def test_empty_file_refused(tmp_path):
    (tmp_path / "e.jsonl").write_bytes(b"")
    assert "empty" in refused(tmp_path / "e.jsonl")


def test_binary_file_refused(tmp_path):
    (tmp_path / "e.bin").write_bytes(bytes(range(256)) * 4)
    assert "not a schedtui event log" in refused(tmp_path / "e.bin")


def test_wrong_format_refused(tmp_path):
    (tmp_path / "e.jsonl").write_text(json.dumps({"format": "other-tool", "version": 1}) + "\n")
    assert "'other-tool'" in refused(tmp_path / "e.jsonl")
    (tmp_path / "f.jsonl").write_text('{"a": 1}\n')
    assert "no format field" in refused(tmp_path / "f.jsonl")


def test_newer_version_refused(tmp_path):
    path = write_run(tmp_path / "events.jsonl", steps=5)
    lines = path.read_bytes().split(b"\n", 1)
    head = json.loads(lines[0])
    head["version"] = 99
    path.write_bytes(json.dumps(head).encode() + b"\n" + lines[1])
    assert "newer schedtui" in refused(path)


# ---- following a log that is still being written ------------------------------------------------------------


def test_follow_picks_up_exactly_the_new_events(tmp_path, small_chunks):
    full = write_run(tmp_path / "full.jsonl", steps=400).read_bytes()
    lines = full.split(b"\n")[:-1]
    ends = [0]
    for x in lines:
        ends.append(ends[-1] + len(x) + 1)  # ends[n]: bytes up to and including line n's newline
    live = tmp_path / "events.jsonl"

    def grow_to(nbytes):
        with open(live, "ab") as f:
            f.write(full[live.stat().st_size if live.exists() else 0:nbytes])

    def reference(n):  # the reader's events of the first n lines
        part = tmp_path / f"part{n}.jsonl"
        part.write_bytes(full[:ends[n]])
        return read_log(part).events

    grow_to(ends[40])
    tl = Timeline(live, capacity=32)
    assert tl.load(final=False) is True
    assert_matches(tl, reference(40))

    mid = ends[120] + 25  # line 121 half written
    grow_to(mid)
    assert tl.load(final=False) is True
    assert tl.warnings == []
    assert_matches(tl, reference(120))

    grow_to(ends[121] - 1)  # all of line 121 but its newline: still in progress
    assert tl.load(final=False) is False
    assert tl.warnings == [] and tl.last_step == reference(120)[-1]["step"]

    grow_to(ends[300] + 10)  # the newline, many more lines (several chunks), another partial
    assert tl.load(final=False) is True
    assert tl.warnings == []
    assert_matches(tl, reference(300))
    assert tl.load(final=False) is False  # nothing new

    grow_to(len(full))
    assert tl.load(final=False) is True
    assert tl.warnings == []
    assert_matches(tl, read_log(tmp_path / "full.jsonl").events)
    k = tl.last_step
    assert tl.step_event(k) == next(e for e in reversed(read_log(live).events) if e["type"] == "step")


def test_follow_then_final_load_warns_about_a_torn_end(tmp_path):
    full = write_run(tmp_path / "full.jsonl", steps=100, end=False).read_bytes()
    live = tmp_path / "events.jsonl"
    live.write_bytes(full[:-30])  # the writer crashed mid-line
    tl = Timeline(live)
    tl.load(final=False)
    assert tl.warnings == []
    tl.load(final=False)
    assert tl.warnings == []
    tl.load(final=True)
    ref = read_log(live)
    assert tl.warnings == ref.warnings and len(tl.warnings) == 1 and "torn" in tl.warnings[0]
    assert_matches(tl, ref.events)


def test_follow_a_live_writer(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path, header(epochs=3), flush_interval=60) as log:
        tl = Timeline(path, capacity=16)
        assert tl.load(final=False) is False
        for part in range(3):
            for k in range(part * 100 + 1, part * 100 + 101):
                log.emit("step", k, epoch=part, loss=1 / k, knobs={"lr": 0.1 / k, "dropout": 0.1}, samples_per_s=1.0)
            log.emit("epoch", k, epoch=part, epochs=3)
            log.flush()
            assert tl.load(final=False) is True
            assert_matches(tl, read_log(path).events)
    assert tl.load(final=True) is False and tl.warnings == []
