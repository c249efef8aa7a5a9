"""read_log: what a crash can leave is tolerated, what isn't a log is refused in one line."""

import json

import pytest

from schedtui.events import FORMAT, EventLog, Log, LogError, read_log, resolve_log_path
from schedtui.events import format as fmt


def header(**over):
    return {"format": FORMAT, "version": 1, "seq": 0, "type": "header", "time": 0.0, "wall": "2026-01-01T00:00:00Z",
            "preset": "toy", **over}


def ev(seq, type_="step", step=None, **fields):
    return {"seq": seq, "type": type_, "step": seq if step is None else step, "time": seq * 0.1, **fields}


def write(path, *objs, tail=""):
    path.write_text("".join(json.dumps(o) + "\n" for o in objs) + tail, encoding="utf-8")
    return path


def one_line_error(path, e):
    msg = str(e.value)
    assert msg.startswith(str(path)) and "\n" not in msg
    return msg


def test_round_trip_from_writer(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path, {"preset": "cifar10"}) as log:
        sent = [log.emit("step", i, loss=0.5) for i in range(1, 4)] + [log.emit("end", 3, status="completed")]
    got = read_log(path)
    assert isinstance(got, Log) and got.path == path
    assert got.header["preset"] == "cifar10" and got.header["type"] == "header"
    assert got.events == sent and got.warnings == []


def test_run_dir_resolves_to_its_events_file(tmp_path):
    write(tmp_path / "events.jsonl", header(), ev(1))
    assert resolve_log_path(tmp_path) == tmp_path / "events.jsonl"
    assert [e["seq"] for e in read_log(tmp_path).events] == [1]


def test_dir_without_events_file(tmp_path):
    with pytest.raises(LogError) as e:
        read_log(tmp_path)
    assert "events.jsonl" in one_line_error(tmp_path, e)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(LogError) as e:
        read_log(path)
    assert "no such file" in one_line_error(path, e)


def test_torn_last_line_dropped_with_warning(tmp_path):
    path = write(tmp_path / "e.jsonl", header(), ev(1), ev(2), tail='{"seq": 3, "type": "st')
    log = read_log(path)
    assert [e["seq"] for e in log.events] == [1, 2]
    assert len(log.warnings) == 1 and "line 4" in log.warnings[0] and "torn" in log.warnings[0]


def test_complete_last_line_without_newline_is_kept(tmp_path):
    path = write(tmp_path / "e.jsonl", header(), ev(1), tail=json.dumps(ev(2)))
    log = read_log(path)
    assert [e["seq"] for e in log.events] == [1, 2] and log.warnings == []


def test_garbage_middle_line_strict_error_names_line(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join([json.dumps(header()), json.dumps(ev(1)), "garbage{", json.dumps(ev(2))]) + "\n")
    with pytest.raises(LogError) as e:
        read_log(path)
    assert "line 3" in one_line_error(path, e)


def test_garbage_middle_line_skipped_when_not_strict(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join([json.dumps(header()), json.dumps(ev(1)), "garbage{", "[1, 2]", json.dumps(ev(2))]) + "\n")
    log = read_log(path, strict=False)
    assert [e["seq"] for e in log.events] == [1, 2]
    assert any("line 3" in w for w in log.warnings) and any("line 4" in w for w in log.warnings)


def test_seq_gap_and_reversal_warned_reading_continues(tmp_path):
    path = write(tmp_path / "e.jsonl", header(), *[ev(i) for i in range(1, 6)], *[ev(i) for i in range(9, 12)], ev(4))
    log = read_log(path)
    assert [e["seq"] for e in log.events] == [1, 2, 3, 4, 5, 9, 10, 11, 4]
    assert "seq jumps from 5 to 9 at line 7: 3 events missing" in log.warnings
    assert any("from 11 to 4" in w and "line 10" in w for w in log.warnings)


def test_wrong_format_refused(tmp_path):
    path = write(tmp_path / "e.jsonl", header(format="asciicast"), ev(1))
    with pytest.raises(LogError) as e:
        read_log(path)
    assert "asciicast" in one_line_error(path, e)


def test_plain_json_lines_without_header_refused(tmp_path):
    path = write(tmp_path / "e.jsonl", {"loss": 1.0}, {"loss": 0.5})
    with pytest.raises(LogError) as e:
        read_log(path)
    assert "not a schedtui event log" in one_line_error(path, e)


def test_newer_version_refused(tmp_path):
    path = write(tmp_path / "e.jsonl", header(version=3), ev(1))
    with pytest.raises(LogError) as e:
        read_log(path)
    assert "newer schedtui (log version 3, this reads up to 2)" in one_line_error(path, e)


def test_older_version_goes_through_upgrades(tmp_path, monkeypatch):
    monkeypatch.setattr(fmt, "VERSION", 3)
    monkeypatch.setattr("schedtui.events.reader.VERSION", 3)
    monkeypatch.setitem(fmt.UPGRADES, 2, lambda e: {**e, "version": 3} if e["type"] == "header" else {**e, "upgraded": True})
    path = write(tmp_path / "e.jsonl", header(version=1), ev(1))
    log = read_log(path)
    assert log.header["version"] == 3 and log.events[0]["upgraded"] is True


def test_empty_file_refused(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"")
    with pytest.raises(LogError) as e:
        read_log(path)
    assert "is empty" in one_line_error(path, e)


def test_binary_file_refused(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(LogError) as e:
        read_log(path)
    assert "not a schedtui event log" in one_line_error(path, e)


def test_not_utf8_refused(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"format": "\xff\xfe"}\n')
    with pytest.raises(LogError) as e:
        read_log(path)
    assert "UTF-8" in one_line_error(path, e)
