"""Chart data and drawing, without a terminal: bounded series on a step axis, plots a person can read."""

import math

from schedtui.ui.plot import BLOCKS, MARK_GLYPH, Trace, axis, draw, smooth, tick_labels
from schedtui.ui.series import Curve, StepSeries


def test_series_is_bounded_keeps_the_shape_and_the_recent_steps_in_full():
    s = StepSeries(capacity=64, recent=100)
    for i in range(1, 100_001):
        s.add(i, float(i))
    steps, values = s.curve(0, 100_000)
    assert len(values) <= 64 and s.width > 1
    assert values == sorted(values) and values[0] < 5_000 and values[-1] > 95_000
    assert all(abs(st - v) < 1e-6 for st, v in zip(steps, values))  # each point sits at the mean step it holds
    steps, values = s.curve(99_950, 100_000)  # a narrow window: every step
    assert steps == list(range(99_950, 100_001)) and s.last == 100_000.0


def test_series_skips_non_finite_values_and_a_resumed_run_replaces_the_steps_it_repeats():
    s = StepSeries()
    for step, v in ((1, 1.0), (2, float("nan")), (3, None), (4, 4.0), (5, 5.0), (6, 6.0)):
        s.add(step, v)
    s.add(5, 50.0)  # resumed from a checkpoint at step 4
    assert s.curve(0, 10)[1][-2:] == [4.0, 50.0] and s.last == 50.0


def test_curve_windows_by_step():
    c = Curve([1, 5, 10, 20], [1.0, float("inf"), 3.0, 4.0])
    assert c.curve(2, 15) == ([10], [3.0]) and c.last == 4.0


def test_smoothing_is_tensorboards_debiased_ema():
    assert smooth([2.0, 2.0, 2.0], 0.9) == [2.0, 2.0, 2.0]  # debiased: no pull towards zero at the start
    out = smooth([1.0, 3.0], 0.6)
    assert out[0] == 1.0 and math.isclose(out[1], (0.6 * 0.4 * 1 + 0.4 * 3) / (1 - 0.36))
    assert smooth([1.0, 5.0], 0.0) == [1.0, 5.0]


def test_tick_labels_carry_the_digits_that_tell_the_ends_apart():
    assert tick_labels([0.1, 0.0996], 0.0004) == ["0.1", "0.0996"]
    assert tick_labels([0.1812, 0.18], 0.0012) == ["0.1812", "0.18"]
    assert tick_labels([3e29, 0.054], 3e29) == ["3e+29", "0.054"]


def test_a_tiny_change_is_not_drawn_as_a_cliff():
    steps = list(range(1, 201))
    lr = [0.1 - 0.0004 * s / 200 for s in steps]  # a cosine lr's first 0.4%
    ax = axis([Trace(steps, lr, "blue")])
    assert ax.hi - ax.lo >= 0.01 * 0.1 * 0.99  # the axis spans at least 1% of the values
    plot = draw([Trace(steps, lr, "blue")], ax, 0, 200, 40, 4)
    used = [r for r, row in enumerate(plot.rows) if row.strip()]
    assert len(used) <= 2 and plot.ticks[0] != plot.ticks[3]  # a gentle slope, ends labelled apart


def test_log_scale_keeps_a_spike_from_flattening_the_rest():
    steps = list(range(1, 101))
    loss = [0.5 - 0.004 * s for s in steps]
    loss[50] = 3e29
    linear = draw([Trace(steps, loss, "red")], axis([Trace(steps, loss, "red")]), 0, 100, 50, 4)
    log = draw([Trace(steps, loss, "red")], axis([Trace(steps, loss, "red")], log=True), 0, 100, 50, 4)
    assert log.log and not linear.log
    bottom_linear = linear.rows[-1].replace(" ", "")
    assert len(set(log.rows[-1].replace(" ", ""))) > 1 or log.rows[-2].strip()  # the slope shows on a log scale
    assert len(bottom_linear) >= 45  # linear: everything but the spike squashed on the bottom row


def test_braille_and_blocks_fit_the_width_and_marks_share_a_column():
    steps = list(range(0, 501))
    a = [math.sin(s / 40) for s in steps]
    b = [s / 500 for s in steps]
    marks = [(250, "bold yellow")]
    pa = draw([Trace(steps, a, "red")], axis([Trace(steps, a, "red")]), 0, 500, 40, 4, marks, "braille")
    pb = draw([Trace(steps[::25], b[::25], "green")], axis([Trace(steps, b, "green")]), 0, 500, 40, 2, marks, "blocks")
    assert all(len(r) == 40 for r in pa.rows + pb.rows)
    assert set("".join(pa.rows)) - {" ", MARK_GLYPH} <= {chr(c) for c in range(0x2800, 0x2900)}
    assert set("".join(pb.rows)) - {" ", MARK_GLYPH} <= set(BLOCKS)
    cols_a = {s for row in pa.spans for s, e, st in row if st == "bold yellow"}
    cols_b = {s for row in pb.spans for s, e, st in row if st == "bold yellow"}
    assert cols_a == cols_b == {20}  # step 250 of 0..500 on 40 columns, in both charts
    assert pb.rows[-1].strip()[0] == BLOCKS[0] and pb.rows[0].rstrip()[-1] == BLOCKS[-1]  # a sparse series, joined up
