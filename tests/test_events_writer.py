"""EventLog: exclusive creation, header, consecutive seq, flushing, subscribers, threads."""

import json
import math
import queue
import re
import threading
import time

import pytest

from schedtui.events import FORMAT, VERSION, EventLog, LogError, read_log


def lines(path):
    with open(path, encoding="utf-8") as f:  # a separate handle, as another process would
        return [json.loads(x) for x in f.read().splitlines()]


def test_header_written_and_flushed_at_once(tmp_path):
    path = tmp_path / "run" / "sub" / "events.jsonl"  # parents are created
    log = EventLog(path, {"run_id": "abc", "preset": "cifar10", "config": {"lr": 0.1}}, flush_interval=60)
    try:
        (head,) = lines(path)
        assert head["format"] == FORMAT == "schedtui-events"
        assert head["version"] == VERSION == 2
        assert head["seq"] == 0 and head["type"] == "header" and head["time"] == 0.0
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", head["wall"])
        assert head["run_id"] == "abc" and head["preset"] == "cifar10" and head["config"] == {"lr": 0.1}
    finally:
        log.close()


def test_refuses_existing_file_and_leaves_it_alone(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("precious\n")
    with pytest.raises(LogError) as e:
        EventLog(path, {})
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    assert path.read_text() == "precious\n"


def test_header_may_not_override_format(tmp_path):
    with pytest.raises(ValueError):
        EventLog(tmp_path / "e.jsonl", {"format": "other"})


def test_emit_returns_event_with_consecutive_seq_and_flush_puts_it_on_disk(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path, {}, flush_interval=60) as log:
        evs = [log.emit("step", i, loss=1.0 / (i + 1)) for i in range(5)]
        assert [e["seq"] for e in evs] == [1, 2, 3, 4, 5]
        assert all(e["type"] == "step" and e["time"] >= 0 for e in evs)
        log.flush()
        on_disk = lines(path)[1:]
        assert on_disk == evs
        assert [e["time"] for e in evs] == sorted(e["time"] for e in evs)


def test_unknown_type_rejected(tmp_path):
    with EventLog(tmp_path / "e.jsonl", {}) as log:
        with pytest.raises(ValueError):
            log.emit("stepp", 0)
        with pytest.raises(ValueError):
            log.emit("header", 0)
        assert log.emit("step", 0)["seq"] == 1  # a refused event takes no seq


def test_nan_and_inf_survive_round_trip(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path, {}) as log:
        log.emit("step", 1, loss=float("nan"))
        log.emit("warning", 1, message="non-finite loss", value=float("-inf"))
    ev = read_log(path).events
    assert math.isnan(ev[0]["loss"]) and ev[1]["value"] == float("-inf")


def test_periodic_flush_without_calling_flush(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path, {}, flush_interval=0.2)
    try:
        log.emit("step", 1, loss=0.5)
        log.emit("step", 2, loss=0.4)
        deadline = time.monotonic() + 1.5
        while len(lines(path)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [e.get("step") for e in lines(path)[1:]] == [1, 2]
    finally:
        log.close()


def test_close_writes_everything_and_is_idempotent(tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path, {}, flush_interval=60)
    for i in range(1000):
        log.emit("step", i)
    log.emit("end", 999, status="completed")
    log.close()
    log.close()
    got = lines(path)
    assert len(got) == 1002 and got[-1]["type"] == "end"
    with pytest.raises(RuntimeError):
        log.emit("step", 1000)


def test_subscribers_get_the_same_events(tmp_path):
    with EventLog(tmp_path / "e.jsonl", {}) as log:
        log.emit("step", 0)  # before subscribing: not delivered
        a, b = log.subscribe(), log.subscribe()
        sent = [log.emit("step", i, loss=0.1) for i in range(1, 4)] + [log.emit("pause", 3, reason="user")]
        for q in (a, b):
            got = []
            while True:
                try:
                    got.append(q.get_nowait())
                except queue.Empty:
                    break
            assert got == sent


def test_concurrent_emit_gives_unique_consecutive_seq(tmp_path):
    path = tmp_path / "events.jsonl"
    n_threads, n_each = 4, 2000
    with EventLog(path, {}, flush_interval=0.05) as log:
        sub = log.subscribe()
        barrier = threading.Barrier(n_threads)

        def work(k):
            barrier.wait()
            for i in range(n_each):
                log.emit("step", i, thread=k)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        log.flush()
        seqs = [e["seq"] for e in lines(path)[1:]]
        assert seqs == list(range(1, n_threads * n_each + 1))  # in seq order on disk too
        sub_seqs = [sub.get_nowait()["seq"] for _ in range(n_threads * n_each)]
        assert sub_seqs == seqs


class _DiskFull:
    """Wraps the log's file: writes of step events fail as on a full disk."""

    def __init__(self, f):
        self.f = f

    def write(self, s):
        if '"type":"step"' in s:
            raise OSError(28, "No space left on device")
        return self.f.write(s)

    def flush(self):
        self.f.flush()

    def close(self):
        self.f.close()


def test_write_error_is_raised_not_swallowed(tmp_path):
    path = tmp_path / "e.jsonl"
    log = EventLog(path, {}, flush_interval=60)
    log._f = _DiskFull(log._f)
    log.emit("step", 1)
    with pytest.raises(LogError, match="No space left on device") as e:
        log.flush()
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)
    sub = log.subscribe()
    log.emit("end", 1, status="crashed")  # reported once; later events still reach subscribers
    assert sub.get_nowait()["type"] == "end"
    log.close()


def test_write_error_surfaces_from_next_emit(tmp_path):
    log = EventLog(tmp_path / "e.jsonl", {}, flush_interval=60)
    log._f = _DiskFull(log._f)
    log.emit("step", 1)
    deadline = time.monotonic() + 2
    with pytest.raises(LogError):
        while time.monotonic() < deadline:
            log.emit("epoch", 1)
            time.sleep(0.01)
    log.close()
