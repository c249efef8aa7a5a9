"""Edits: set, scale, schedule-from-here (continuous), revert; bad edits change nothing."""

import json

import pytest

from schedtui.errors import UserError
from schedtui.schedule import KnobSchedules, Timing
from schedtui.schedule.bounds import NONNEGATIVE, UNIT_OPEN

T = Timing(steps_per_epoch=10, total_steps=200)


def make():
    return KnobSchedules(
        {"lr": 0.1, "dropout": 0.5, "bn_momentum": 0.1},
        {
            "lr": {"kind": "CosineAnnealingLR", "eta_min": 0.0, "unit": "step"},
            "dropout": {"kind": "linear", "end": 0.1},
            "bn_momentum": {"kind": "follow", "knob": "lr"},
        },
        {"lr": NONNEGATIVE, "dropout": UNIT_OPEN, "bn_momentum": UNIT_OPEN},
        T,
    )


def test_set_holds_from_the_next_update_and_revert_restores_the_base():
    ks = make()
    before = [ks.values(k)["dropout"] for k in range(201)]
    ev = ks.edit("dropout", "set", step=50, current=ks.values(49), value=0.3)
    assert ev == {"knob": "dropout", "op": "set", "value": 0.3, "old": before[49], "new": 0.3}
    assert ks.values(50)["dropout"] == 0.3 and ks.values(150)["dropout"] == 0.3
    assert ks.overridden("dropout") == "set" and "set 0.3 @50" == ks.describe("dropout")
    ks.edit("dropout", "revert", step=120, current=ks.values(119))
    assert [ks.values(k)["dropout"] for k in range(201)] == before
    assert ks.overridden("dropout") is None


def test_scale_multiplies_the_base_schedule_and_followers_follow():
    ks = make()
    base = [ks.values(k) for k in range(201)]
    ks.edit("lr", "scale", step=20, current=base[19], factor=0.5)
    for k in (20, 90, 200):
        assert ks.values(k)["lr"] == pytest.approx(0.5 * base[k]["lr"])
        assert ks.values(k)["bn_momentum"] == pytest.approx(0.5 * base[k]["bn_momentum"])


def test_schedule_from_here_starts_at_the_current_value():
    ks = make()
    cur = ks.values(99)
    ev = ks.edit("lr", "schedule", step=100, current=cur, spec={"kind": "cosine", "end": 1e-4, "duration": 50, "unit": "step"})
    assert ev["old"] == cur["lr"] and ks.values(100)["lr"] == pytest.approx(cur["lr"])  # no jump
    assert ks.values(150)["lr"] == pytest.approx(1e-4) and ks.values(199)["lr"] == pytest.approx(1e-4)
    assert ks.values(125)["lr"] == pytest.approx((cur["lr"] + 1e-4) / 2)


def test_torch_schedule_from_here_counts_from_the_edit():
    ks = make()
    cur = ks.values(59)
    ks.edit("dropout", "schedule", step=60, current=cur, spec={"kind": "StepLR", "step_size": 2, "gamma": 0.5})
    assert ks.values(60)["dropout"] == cur["dropout"]
    assert ks.values(80)["dropout"] == pytest.approx(cur["dropout"] / 2)  # two epochs after the edit


@pytest.mark.parametrize(
    "op,kw,needle",
    [
        ("set", {"value": 1.5}, "would be 1.5"),
        ("set", {"value": float("nan")}, "finite number"),
        ("set", {"value": "0.3"}, "finite number"),
        ("scale", {"factor": -1.0}, "must be >= 0"),
        ("scale", {"factor": 3.0}, "would be"),
        ("schedule", {"spec": {"kind": "nope"}}, "unknown kind"),
        ("schedule", {"spec": {"kind": "linear", "end": 2.0}}, "above the allowed range"),
        ("shift", {}, "unknown edit 'shift'"),
    ],
)
def test_bad_edits_are_rejected_and_change_nothing(op, kw, needle):
    ks = make()
    before = [ks.values(k) for k in range(0, 201, 7)]
    with pytest.raises(UserError, match=needle.replace("(", r"\(")):
        ks.edit("dropout", op, step=30, current=ks.values(29), **kw)
    assert [ks.values(k) for k in range(0, 201, 7)] == before
    assert ks.overridden("dropout") is None


def test_edit_creating_a_follow_cycle_is_refused():
    ks = make()
    with pytest.raises(UserError, match="follow cycle"):
        ks.edit("lr", "schedule", step=10, current=ks.values(9), spec={"kind": "follow", "knob": "bn_momentum"})
    assert ks.overridden("lr") is None


def test_state_round_trips_through_json():
    ks = make()
    ks.edit("lr", "schedule", step=40, current=ks.values(39), spec={"kind": "OneCycleLR", "max_lr": 0.2, "unit": "step"})
    ks.edit("dropout", "scale", step=45, current=ks.values(44), factor=0.5)
    again = make()
    again.load_state_dict(json.loads(json.dumps(ks.state_dict())))
    assert [again.values(k) for k in range(201)] == [ks.values(k) for k in range(201)]
