"""What the screen shows and how it is laid out, as a person reads it: scripted events (fast) and tiny real runs."""

from schedtui.ui.app import TrainApp
from schedtui.ui.source import LogSource
from schedtui.ui.view import fmt
from test_ui_snapshots import scripted_events, scripted_source
from ui_helpers import knob_row, live_app, region_lines, screen_lines, select_knob, stop_engine, table_value_on_screen, until


async def test_columns_fit_their_content_and_the_detail_line_has_the_rest():
    app = TrainApp(scripted_source())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.2)
        table = region_lines(app, app.table)
        assert any(line.split()[:2] == ["weight_decay@head", "4.30e-04"] for line in table)  # names and values whole
        await select_knob(pilot, app, "weight_decay@head")
        detail = " ".join(line.strip() for line in region_lines(app, app.detail))
        assert "CosineAnnealingWarmRestarts T_0=3 T_mult=2 eta_min=1e-05 (epoch)" in detail  # the whole schedule
        assert "weight_decay@head = 0.00043000543" in detail  # the value with more digits than the table's
        events = region_lines(app, app.event_log)
        assert "warning: lr was changed by something other than schedtui: 0.1 -> 0.2" in " ".join(x.strip() for x in events)


async def test_chart_keys_zoom_window_log_smoothing_and_the_event_filter():
    app = TrainApp(scripted_source())
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        titles = lambda: [line.split()[0] for line in region_lines(app, app.charts) if line[:1].strip()]  # noqa: E731
        assert titles()[:3] == ["loss", "0.06388", "val"]
        await pilot.press("z")  # the selected knob's chart (lr), in the whole panel
        await pilot.pause(0.1)
        assert titles()[0] == "lr" and "lr" not in titles()[1:] and len(region_lines(app, app.charts)) > 20
        assert not app.event_log.display or app.event_log.region.width == 0  # the event list and table make room
        await pilot.press("right_square_bracket")
        await pilot.pause(0.1)
        assert titles()[0] == "weight_decay"
        await pilot.press("z", "x")  # back to all charts; the window: the last 200 steps... of 120: the whole run still
        await pilot.pause(0.1)
        assert region_lines(app, app.charts)[-1].split()[0] == "steps" and app.charts.window is None
        await pilot.press("l")
        await pilot.pause(0.1)
        assert "log scale" in " ".join(region_lines(app, app.charts))
        await pilot.press("s", "s")
        assert app.charts.smoothing == 0.99 and "smoothing 0.99" in app.notice.text
        await pilot.press("f")  # edits only
        await pilot.pause(0.1)
        listed = app.event_log.plain().splitlines()
        assert listed == ["    69 dropout 0.3→0.05 set"] and "edits:" in region_lines(app, app.event_log)[0]


async def test_the_first_screen_says_how_long_the_run_is_and_how_to_end_it_sooner():
    app = TrainApp(scripted_source())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        notice = " ".join(region_lines(app, app.notice))
        assert "10 epochs × 20 steps" in notice and "q: detach, or stop sooner" in notice


async def test_an_edit_stays_in_view_while_evaluations_come_and_confirmations_hide_nothing(tmp_path):
    app = live_app(tmp_path, ["epochs=20000", "data.n_samples=200", "data.batch_size=100"])  # an evaluation every 2 steps
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.view.state is not None and app.view.state.step > 5, what="steps")
        app.source.send("edit", knob="dropout", op="set", value=0.25).result(10)
        start = app.view.state.step
        await until(pilot, lambda: app.view.state.step > start + 200, what="100 evaluations after the edit")
        events = region_lines(app, app.event_log)
        assert any("dropout 0.2→0.25 set" in line for line in events)  # still there
        assert "@" in events[0]  # the latest validation: one line that updates
        await pilot.press("c")
        await until(pilot, lambda: "checkpoint saved" in app.notice.text, what="the confirmation")
        await pilot.pause(0.1)
        shown = screen_lines(app)
        assert not app.screen.query("Toast")  # no toast over the table
        rows = [r.knob for r in app.view.knob_rows()]
        top = app.table._top
        for knob in rows[top:top + app.table.max_rows]:  # every row the table shows is on the screen
            assert any(line.lstrip(" ▸").startswith(knob + " ") for line in shown), knob
        stop_engine(app)


async def test_one_frame_shows_one_moment(tmp_path):
    """The knob table, the chart's value label and the status line come from the same frame."""
    app = live_app(tmp_path, ["epochs=20000"])
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: table_value_on_screen(app, "lr") not in (None, "0.01"), what="the lr moving")
        for _ in range(5):
            await pilot.pause(0.15)
            charts = region_lines(app, app.charts)
            label = next(charts[i + 1].split()[0] for i, line in enumerate(charts) if line.split()[:1] == ["lr"])
            table = table_value_on_screen(app, "lr")
            detail = region_lines(app, app.detail)[0].split("=", 1)[1].split()[0]  # the selected knob: lr
            assert label == table == fmt(float(detail)), (label, table, detail)
        assert knob_row(app, "lr").value == fmt(app.view.state.knobs["lr"])
        stop_engine(app)


async def test_the_event_list_scrolls_back_and_stays_put_as_new_lines_come():
    header, events = scripted_events()
    seq = events[-1]["seq"]
    for i in range(40):
        seq += 1
        events.append({"seq": seq, "type": "warning", "step": 120, "time": 2.0, "message": f"warning number {i}"})
    app = TrainApp(LogSource(header, events))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.2)
        bottom = region_lines(app, app.event_log)
        assert "warning number 39" in bottom[-1]
        app.event_log.focus()
        await pilot.press("up", "up", "up", "pageup")
        await pilot.pause(0.1)
        shown = region_lines(app, app.event_log)
        assert "warning number 39" not in " ".join(shown) and "↓ 13 newer (end)" in shown[-1]
        app.view.apply({"seq": seq + 1, "type": "warning", "step": 120, "time": 2.1, "message": "a new one"})
        app.redraw()
        await pilot.pause(0.1)
        assert region_lines(app, app.event_log)[1:-1] == shown[1:-1] and "↓ 14 newer" in region_lines(app, app.event_log)[-1]
        await pilot.press("end")
        await pilot.pause(0.1)
        assert "a new one" in region_lines(app, app.event_log)[-1]
