"""The schedtui event log format: its name, version, event types and upgrades.

Contract: one JSON object per line, UTF-8, append-only. Line 1 is the header
(`format`, `version`, `seq` 0, `type` "header", `time` 0.0, `wall`, plus the run's
metadata). Every later line has `seq` (consecutive integers from 1), `type` (one
of `EVENT_TYPES`), `step` and `time` (seconds since the header), plus fields of
its type.

Versioning: a schema change bumps `VERSION` and adds `UPGRADES[old]`, a function
that turns an event (header included) of version `old` into one of version
`old + 1`. The reader applies the chain `UPGRADES[v], UPGRADES[v + 1], ...` up to
`VERSION` to every line of an older log, so the rest of schedtui only ever sees
current events. A log newer than `VERSION` is refused.

Pure Python; imports nothing from schedtui except `schedtui.errors`, and no
torch, textual or rich.
"""

from __future__ import annotations

from typing import Callable

from schedtui.errors import UserError

FORMAT = "schedtui-events"
VERSION = 1

EVENT_TYPES = frozenset({
    "header", "step", "eval", "epoch", "edit", "pause", "resume", "swa",
    "checkpoint", "early_stop", "warning", "error", "end",
    "detach",  # the run's terminal went away (SIGHUP): it goes on headless, output in RUN_DIR/output.log
})

END_STATUSES = frozenset({"completed", "stopped", "crashed", "interrupted"})


class LogError(UserError):
    """An event log that can't be written or read; one line, starting with the file path."""


# old version -> function turning an event of that version into one of the next.
# Empty for version 1: there is nothing older to upgrade.
UPGRADES: dict[int, Callable[[dict], dict]] = {}


def upgrade(event: dict, version: int) -> dict:
    """Bring one event written by log `version` up to `VERSION`."""
    for v in range(version, VERSION):
        event = UPGRADES[v](event)
    return event
