"""Chart data and drawing, without a terminal: bounded series on a step axis, plots a person can read."""

import math

from schedtui.ui.plot import BLOCKS, MARK_GLYPH, Canvas, Trace, axis, columns, draw, mark_columns, nice_end, smooth, tick_labels
from schedtui.ui.series import Curve, StepSeries


def trace(steps, values, x0, x1, n, style="blue") -> Trace:
    return Trace(columns(steps, values, x0, x1, n), style)


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
    t = trace(steps, lr, 0, 200, 80)
    ax = axis([t])
    assert ax.hi - ax.lo >= 0.01 * 0.1 * 0.99  # the axis spans at least 1% of the values
    plot = draw([t], ax, 40, 4)
    used = [r for r, row in enumerate(plot.rows) if row.strip()]
    assert len(used) <= 2 and plot.ticks[0] != plot.ticks[3]  # a gentle slope, ends labelled apart


def test_log_scale_keeps_a_spike_from_flattening_the_rest():
    steps = list(range(1, 101))
    loss = [0.95 ** s for s in steps]  # from 1 to 0.006
    loss[50] = 1e4
    t = trace(steps, loss, 0, 100, 50, "red")
    linear = draw([t], axis([t]), 50, 4, mode="blocks")
    log = draw([t], axis([t], log=True), 50, 4, mode="blocks")
    assert log.log and not linear.log
    assert len(linear.rows[-1].replace(" ", "")) >= 45 and not linear.rows[-2].replace(" ", "").strip("█")  # flattened
    assert set(log.rows[2]) - {" ", "█"} and not set(linear.rows[2]) - {" ", "█"}  # on a log scale the slope shows


def test_braille_and_blocks_fit_the_width_and_marks_share_a_column():
    steps = list(range(0, 501))
    a = [math.sin(s / 40) for s in steps]
    b = [s / 500 for s in steps]
    marked = mark_columns([(250, "bold yellow")], 0, 500, 40)
    ta, tb = trace(steps, a, 0, 500, 80, "red"), trace(steps[::25], b[::25], 0, 500, 40, "green")
    pa = draw([ta], axis([ta]), 40, 4, marked, "braille")
    pb = draw([tb], axis([tb]), 40, 2, marked, "blocks")
    assert all(len(r) == 40 for r in pa.rows + pb.rows)
    assert set("".join(pa.rows)) - {" ", MARK_GLYPH} <= {chr(c) for c in range(0x2800, 0x2900)}
    assert set("".join(pb.rows)) - {" ", MARK_GLYPH} <= set(BLOCKS)
    cols_a = {s for row in pa.spans for s, e, st in row if st == "bold yellow"}
    cols_b = {s for row in pb.spans for s, e, st in row if st == "bold yellow"}
    assert cols_a == cols_b == {20}  # step 250 of 0..500 on 40 columns, in both charts
    assert pb.rows[-1].strip()[0] == BLOCKS[0] and pb.rows[0].rstrip()[-1] == BLOCKS[-1]  # a sparse series, joined up


def test_columns_of_a_growing_series_come_out_the_same_incrementally():
    s = StepSeries(capacity=64, recent=300)
    x1 = nice_end(5000)
    for step in range(1, 5001):
        s.add(step, math.sin(step / 100))
        if step % 397 == 0 or step == 5000:
            inc = s.columns(0, x1, 50)  # folded in frame by frame
    whole = columns(*s.curve(0, x1), 0, x1, 50)
    assert x1 == 6000 and inc == whole and inc[-1] is None  # the axis runs on a little past the last step
    s.add(4990, 9.0)  # resumed from an earlier step: the columns start over
    assert s.columns(0, x1, 50) == columns(*s.curve(0, x1), 0, x1, 50)
    narrow = s.columns(4800, 5000, 40)  # a window the recent values cover: every step
    assert narrow == columns(*s.curve(4800, 5000), 4800, 5000, 40) and narrow[38] == 9.0 and narrow[39] is None


def test_a_canvas_drawn_again_where_it_changed_draws_what_a_fresh_one_draws():
    steps = list(range(1, 3001))
    values = [math.sin(s / 150) + (5.0 if s % 700 == 0 else 0.0) for s in steps]
    marked = mark_columns([(1200, "bold yellow")], 0, 3000, 30)
    for mode in ("braille", "blocks"):
        canvas = Canvas()
        ncols = 60 if mode == "braille" else 30
        for upto in (10, 11, 400, 401, 1799, 2500, 3000, 3000):  # a run growing frame by frame
            ts = [trace(steps[:upto], values[:upto], 0, 3000, ncols, "red"),
                  trace(steps[:upto:100], values[:upto:100], 0, 3000, ncols, "green")]
            ax = axis([trace(steps, values, 0, 3000, ncols)])  # an axis held still
            again, fresh = canvas.draw(ts, ax, 30, 4, marked, mode), draw(ts, ax, 30, 4, marked, mode)
            assert (again.rows, again.spans) == (fresh.rows, fresh.spans), (mode, upto)


def test_the_resource_line_has_cpu_and_memory_and_is_quiet_without_a_gpu(capfd):
    import time as _time

    from schedtui.ui import resources

    for device in ("cpu", "cuda:0"):  # no NVIDIA driver here: the GPU part is left out, nothing raises or prints
        r = resources.Resources(device)
        first = r.sample()
        assert first is not None and "mem " in first and "gpu" not in first
        r._at = _time.monotonic() - resources.PERIOD_S  # a second later
        line = r.sample()
        assert line.startswith("cpu ") and "% · mem " in line and line.endswith("MB") and "gpu" not in line
    out, err = capfd.readouterr()
    assert out == "" and err == ""
