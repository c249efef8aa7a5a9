"""Strings from logs, presets and user code are shown with their control characters visible and markup escaped."""

from rich.console import Console

from schedtui.safe_text import markup, visible


def test_terminal_sequences_become_visible_text():
    osc52 = "run\x1b]52;c;aGVsbG8=\x07"  # would write the terminal's clipboard
    assert visible(osc52) == "run\\x1b]52;c;aGVsbG8=\\x07"
    assert visible("a\x1b[2Jb\nc\x9bd") == "a\\x1b[2Jb\\nc\\x9bd"
    assert visible("evil\u202etxt.exe") == "evil\\u202etxt.exe"  # a bidi override would reorder what is shown
    assert visible("plain name é 中") == "plain name é 中"
    assert visible(3.5) == "3.5"


def test_markup_is_shown_not_interpreted():
    console = Console(record=True, width=200, color_system=None)
    evil = "[link=file:///etc/passwd]x[/link] [bold]b\x1b[0m"
    console.print("name: " + markup(evil))
    text = console.export_text()
    assert "[link=file:///etc/passwd]x[/link] [bold]b\\x1b[0m" in text
    assert "\x1b" not in text
