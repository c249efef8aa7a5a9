"""Chart data stays bounded and keeps marks; sparklines fit their width."""

from schedtui.ui.series import Series
from schedtui.ui.spark import BLOCKS, sparkline, sparkrows


def test_series_is_bounded_and_keeps_the_shape_and_marks():
    s = Series(capacity=64)
    for i in range(100_000):
        s.append(i, float(i), mark=(i == 50_000))
    values, marks = s.points()
    assert len(values) <= 64 and s.bucket > 1
    assert values == sorted(values) and values[0] < 5_000 and values[-1] > 95_000
    assert sum(marks) == 1 and s.last == 99_999.0


def test_series_skips_non_finite_values():
    s = Series()
    s.append(1, 1.0)
    s.append(2, float("nan"))
    s.append(3, None)
    assert s.points()[0] == [1.0]


def test_sparkline_fits_width_and_marks_columns():
    text = sparkline([0.0, 1.0, 2.0, 3.0] * 50, [False] * 199 + [True], 20)
    assert len(text.plain) == 20 and set(text.plain) <= set(BLOCKS)
    assert any("yellow" in str(span.style) for span in text.spans)
    assert sparkline([1.0, 2.0], [False, False], 10).plain[:2] == BLOCKS[0] + BLOCKS[-1]


def test_taller_sparklines_stack_blocks():
    rows = sparkrows([0.0, 1.0], [False, False], 4, 3)
    assert [r.plain for r in rows] == [" █  ", " █  ", "▁█  "]  # lowest value: one level; highest: all
