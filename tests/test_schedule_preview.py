"""Previews change nothing; next-change finds milestones; edit text parses as a person types it."""

import pytest

from schedtui.errors import UserError
from schedtui.schedule import KnobSchedules, Timing
from schedtui.schedule.bounds import UNIT_OPEN
from schedtui.schedule.text import parse_edit

T = Timing(steps_per_epoch=10, total_steps=100)


def make():
    return KnobSchedules({"lr": 0.1, "dropout": 0.5},
                         {"lr": {"kind": "cosine", "end": 0.0, "unit": "step"},
                          "dropout": {"kind": "milestones", "values": {"3": 0.3, "6": 0.1}}},
                         {"dropout": UNIT_OPEN}, T)


def test_preview_returns_curves_and_changes_nothing():
    ks = make()
    before = [ks.values(k) for k in range(100)]
    p = ks.preview("dropout", "set", step=40, current=ks.values(40), value=0.2, points=7)
    assert p["before"][0] == 0.3 and p["before"][-1] == 0.1 and p["after"] == [0.2] * 7 and p["new"] == 0.2
    assert [ks.values(k) for k in range(100)] == before and ks.overridden("dropout") is None
    with pytest.raises(UserError):
        ks.preview("dropout", "set", step=40, current=ks.values(40), value=2.0)
    assert [ks.values(k) for k in range(100)] == before


def test_next_change_finds_milestones_and_continuous_schedules():
    ks = make()
    assert ks.next_change("dropout", 5) == (30, 0.3)
    assert ks.next_change("dropout", 30) == (60, 0.1)
    assert ks.next_change("dropout", 70) is None
    assert ks.next_change("lr", 10)[0] == 11


@pytest.mark.parametrize("op,text,expected", [
    ("set", " 0.3 ", {"value": 0.3}),
    ("scale", "x0.5", {"factor": 0.5}),
    ("schedule", "cosine end=1e-4 duration=10 unit=step", {"spec": {"kind": "cosine", "end": 1e-4, "duration": 10, "unit": "step"}}),
    ("schedule", "milestones values={2=0.1, 5=0.05}", {"spec": {"kind": "milestones", "values": {"2": 0.1, "5": 0.05}}}),
    ("schedule", "MultiStepLR milestones=[3, 6] gamma=0.5", {"spec": {"kind": "MultiStepLR", "milestones": [3, 6], "gamma": 0.5}}),
    ("schedule", '{kind="StepLR", step_size=5}', {"spec": {"kind": "StepLR", "step_size": 5}}),
    ("revert", "", {}),
])
def test_parse_edit(op, text, expected):
    assert parse_edit(op, text) == expected


@pytest.mark.parametrize("op,text,needle", [
    ("set", "abc", "'abc' is not a number"),
    ("set", "nan", "not a finite number"),
    ("scale", "", "is not a number"),
    ("schedule", "", "type a kind"),
    ("schedule", "cosine end 3", "cannot read 'end 3'"),
    ("schedule", "{kind=", "not a TOML table"),
])
def test_parse_edit_errors(op, text, needle):
    with pytest.raises(UserError, match=needle):
        parse_edit(op, text)
