"""`schedtui diff LOG_A LOG_B`: do two runs match, and if not, where do they first part?

The first line is the verdict (`runs match: ...` or `runs differ: first at step K
(loss, lr)`); then Rich tables of the values that differ at that step, the final
metrics of both runs, and the config differences (context). Exit status 0 when
the runs match, 1 when they differ (like diff(1)), 2 for bad input. The comparison
itself is `schedtui.events.compare`; this module only prints it. Every name and
value from the logs is printed through `schedtui.safe_text` (control characters
shown, Rich markup escaped). Imports rich, and never torch or textual.
"""

from __future__ import annotations

import sys

from schedtui.commands import command_parser
from schedtui.events.compare import Comparison, compare, show
from schedtui.safe_text import markup, visible

MAX_CONFIG_ROWS = 10
MAX_NAMES = 6  # knob names listed on the first line

EPILOG = """\
Each LOG is an events.jsonl file or a run directory holding one. Floats are
compared bit for bit (reruns are meant to be bit-identical) and shown in full.
Exit status: 0 when the runs match, 1 when they differ, 2 for bad input.

examples:
  schedtui diff runs/moons-20261121-190000 runs/moons-20261121-193000
  schedtui diff --quiet a/events.jsonl b/events.jsonl && echo identical
"""


def build_parser():
    p = command_parser("diff", "Compare two runs step by step: the first step where loss or a knob differs, and the final metrics.", EPILOG)
    p.add_argument("log_a", metavar="LOG_A", help="the first run's event log or run directory")
    p.add_argument("log_b", metavar="LOG_B", help="the second run's event log or run directory")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the first line; the exit status says it all")
    return p


def _names(names: list[str]) -> str:
    more = len(names) - MAX_NAMES
    return ", ".join(map(visible, names[:MAX_NAMES])) + (f", +{more} more" if more > 0 else "")


def verdict(c: Comparison) -> str:
    """The first line of the output."""
    if c.match:
        n = c.common_steps
        return f"runs match: {n} step{'s' if n != 1 else ''}, every loss and knob value identical"
    if c.first_step is not None:
        if c.first_missing:
            other = "B" if c.first_missing == "A" else "A"
            why = f"only in {other}"
        else:
            why = _names([what for what, _, _ in c.at_first])
        return f"runs differ: first at step {c.first_step} ({why})"
    return f"runs differ: all {c.common_steps} steps identical, final metrics differ ({_names(c.finals_differ)})"


def render(c: Comparison, console) -> None:
    """Everything after the first line."""
    for tag, run in (("A", c.a), ("B", c.b)):
        console.print(f"{tag}: {markup(run.path)}  (run {markup(run.run_id)}, {markup(run.header.get('preset', '?'))})",
                      soft_wrap=True)
    if c.first_step is not None:
        console.print(f"\n[bold]at step {c.first_step}[/]")
        t = _table("what", "A", "B")
        for what, va, vb in c.at_first:
            t.add_row(markup(what), _cell(va), _cell(vb))
        console.print(t)
    console.print("\n[bold]final metrics[/] (* differs)")
    t = _table("", "A", "B", "")
    for label, va, vb, differs in c.finals:
        t.add_row(label, _cell(va), _cell(vb), "*" if differs else "")
    console.print(t)
    for tag, only in (("A", c.knobs_only_a), ("B", c.knobs_only_b)):
        if only:
            console.print(f"knobs only in {tag}: {', '.join(map(markup, only))}", soft_wrap=True)
    if c.config:
        console.print(f"\n[bold]config differences[/] ({len(c.config)}; context, not part of the verdict)")
        t = _table("key", "A", "B")
        for key, va, vb in c.config[:MAX_CONFIG_ROWS]:
            t.add_row(markup(_clip(visible(key))), _cell(va, clip=True), _cell(vb, clip=True))
        console.print(t)
        if len(c.config) > MAX_CONFIG_ROWS:
            console.print(f"... and {len(c.config) - MAX_CONFIG_ROWS} more")


def _table(*columns: str):
    from rich import box
    from rich.table import Table

    return Table(*columns, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)


def _clip(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _cell(v, clip: bool = False) -> str:
    """A logged value as a table cell: shown in full (or clipped), control characters visible, markup escaped."""
    text = visible(show(v))
    return markup(_clip(text) if clip else text)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    c = compare(args.log_a, args.log_b)
    for tag, run in (("A", c.a), ("B", c.b)):
        for w in run.warnings:
            print(f"schedtui diff: warning: {tag} {visible(run.path)}: {visible(w)}", file=sys.stderr)
    print(verdict(c), flush=True)
    if not args.quiet:
        from rich.console import Console

        render(c, Console(highlight=False, emoji=False))
    return 0 if c.match else 1
