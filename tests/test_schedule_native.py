"""Native schedule kinds and the bounds check on presets."""

import math

import pytest

from schedtui.errors import UserError
from schedtui.schedule import KnobSchedules, Timing, describe_spec
from schedtui.schedule.bounds import NONNEGATIVE, UNIT_OPEN

T = Timing(steps_per_epoch=10, total_steps=100)


def vals(spec, start=0.5, knob="dropout", timing=T):
    ks = KnobSchedules({knob: start}, {knob: spec}, {knob: UNIT_OPEN}, timing)
    return [ks.values(k)[knob] for k in range(timing.total_steps + 1)]


def test_constant_and_no_schedule_hold_the_preset_value():
    assert set(vals({"kind": "constant"})) == {0.5}
    ks = KnobSchedules({"lr": 0.1}, {}, {}, T)
    assert ks.values(57) == {"lr": 0.1}


def test_linear_in_fractional_epochs_then_holds():
    v = vals({"kind": "linear", "end": 0.1, "duration": 4})
    assert v[0] == 0.5 and v[20] == pytest.approx(0.3) and v[40] == pytest.approx(0.1) and v[90] == pytest.approx(0.1)
    assert v[5] == pytest.approx(0.5 - 0.4 * 0.5 / 4)  # moves inside an epoch: epochs are fractional


def test_cosine_defaults_to_the_rest_of_the_run():
    v = vals({"kind": "cosine", "end": 0.0, "unit": "step"})
    assert v[0] == 0.5 and v[50] == pytest.approx(0.25) and v[100] == pytest.approx(0.0, abs=1e-15)
    assert all(a >= b for a, b in zip(v, v[1:]))


def test_milestones_toml_style_keys():
    v = vals({"kind": "milestones", "values": {"2": 0.4, "5": 0.2, "8": 0.1}})
    assert (v[19], v[20], v[49], v[50], v[80]) == (0.5, 0.4, 0.4, 0.2, 0.1)


def test_piecewise_interpolates_from_start():
    v = vals({"kind": "piecewise", "points": [[5, 0.0], [10, 0.4]], "start": 0.2})
    assert v[0] == 0.2 and v[25] == pytest.approx(0.1) and v[50] == 0.0 and v[75] == pytest.approx(0.2) and v[100] == 0.4


def test_follow_keeps_the_starting_ratio_to_a_scheduled_knob():
    ks = KnobSchedules(
        {"lr": 0.1, "bn_momentum": 0.01},
        {"lr": {"kind": "OneCycleLR", "max_lr": 0.4, "unit": "step"}, "bn_momentum": {"kind": "follow", "knob": "lr"}},
        {"bn_momentum": UNIT_OPEN},
        T,
    )
    v0, v30 = ks.values(0), ks.values(30)
    assert v0["bn_momentum"] == pytest.approx(0.01)
    assert v30["bn_momentum"] / v30["lr"] == pytest.approx(0.01 / v0["lr"])


def test_follow_with_factor_and_cycles():
    ks = KnobSchedules({"lr": 0.1, "lr@head": 1.0}, {"lr@head": {"kind": "follow", "knob": "lr", "factor": 10}}, {}, T)
    assert ks.values(3)["lr@head"] == pytest.approx(1.0)
    with pytest.raises(UserError, match="follow cycle"):
        KnobSchedules({"a": 1.0, "b": 1.0}, {"a": {"kind": "follow", "knob": "b"}, "b": {"kind": "follow", "knob": "a"}}, {}, T)
    with pytest.raises(UserError, match="unknown knob 'lrr'"):
        KnobSchedules({"a": 1.0}, {"a": {"kind": "follow", "knob": "lrr"}}, {}, T)


@pytest.mark.parametrize(
    "spec,needle",
    [
        ({"kind": "linear", "end": 1.5}, "would be 1 at step 50: above the allowed range [0, 1)"),
        ({"kind": "constant", "value": math.nan}, "finite number"),
        ({"kind": "milestones", "values": {"x": 0.1}}, "not a step/epoch number"),
        ({"kind": "milestones", "values": {"3": 0.1}, "speed": 1}, "no argument 'speed'"),
        ({"kind": "piecewise", "points": [1, 2]}, "points = [[TIME, VALUE]"),
        ({"kind": "linear", "end": 0.1, "duration": 0}, "duration must be > 0"),
        ({"kind": "linear"}, "linear needs end"),
        ({"kind": "cosine", "start": 0.3, "base": 0.2}, "not both"),
        ("cosine", "expected a table"),
    ],
)
def test_bad_native_specs(spec, needle):
    with pytest.raises(UserError) as e:
        vals(spec)
    assert needle in str(e.value) and str(e.value).startswith("schedule for dropout")


def test_unknown_knob_names_the_valid_ones():
    with pytest.raises(UserError, match="no knob named 'dropuot'; knobs: lr, dropout"):
        KnobSchedules({"lr": 0.1, "dropout": 0.1}, {"dropuot": {"kind": "constant"}}, {"lr": NONNEGATIVE}, T)


def test_describe_says_kind_arguments_and_unit():
    assert describe_spec({"kind": "OneCycleLR", "max_lr": 0.2, "unit": "step"}) == "OneCycleLR max_lr=0.2 (step)"
    assert describe_spec({"kind": "milestones", "values": {"10": 0.4}}) == "milestones values={10:0.4} (epoch)"
