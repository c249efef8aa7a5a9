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


DISK_FULL = """
import resource, signal, sys
from schedtui.events import EventLog, LogError, read_log

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing us
path = sys.argv[1]
log = EventLog(path, {"run": "full"}, flush_interval=60)
sub = log.subscribe()
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))  # the file may not grow past 4 KB
for i in range(1, 201):
    log.emit("step", i, loss=0.5, note="x" * 40)
try:
    log.flush()
    print("flushed")
except LogError as e:
    print("flush:", e)
print("failed:", log.failed)
log.emit("warning", 200, message="still going")  # emitting goes on; subscribers get every event
got = [sub.get_nowait()["seq"] for _ in range(201)]
print("subscriber:", got[0], got[-1])
print("retry while full:", log.retry())
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))  # space freed
print("retry after:", log.retry())
log.close()
seqs = [e["seq"] for e in read_log(path).events]
print("seqs:", seqs == list(range(1, 202)))
"""


def test_a_full_disk_keeps_the_events_and_writes_them_once_it_can(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", DISK_FULL, str(tmp_path / "e.jsonl")], capture_output=True, text=True,
                         timeout=60)
    lines = out.stdout.splitlines()
    assert out.returncode == 0, out.stderr
    assert lines[0].startswith("flush: ") and "File too large" in lines[0] and "kept" in lines[0]
    assert lines[1] == "failed: File too large" and lines[2] == "subscriber: 1 201"
    assert lines[3] == "retry while full: File too large" and lines[4] == "retry after: None"
    assert lines[5] == "seqs: True"  # every event, once, in order: nothing lost, no line repeated
