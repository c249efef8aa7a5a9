"""The schedtui event log format: its name, version, event types and upgrades.

Contract: one JSON object per line, UTF-8, append-only. Line 1 is the header
(`format`, `version`, `seq` 0, `type` "header", `time` 0.0, `wall`, plus the run's
metadata). Every later line has `seq` (consecutive integers from 1), `type` (one
of `EVENT_TYPES`), `step` and `time` (seconds since the header), plus fields of
its type.

Standard JSON (version 2): every line is JSON that strict readers (`jq`,
`JSON.parse`) accept, so a non-finite float is never written bare. It is written
as the string "NaN", "Infinity" or "-Infinity" where the number was, and the event
gets one more field, `NONFINITE` ("$nonfinite"): the list of the paths (lists of
keys and list indices) of every value so written, e.g.
`"loss":"NaN",...,"$nonfinite":[["loss"],["knobs","lr"]]`. `decode_nonfinite`
turns exactly those back into floats and drops the field, so a string someone
wrote (a warning message "NaN", a run named "Infinity") is never read as a number,
and any field, the header's config included, round-trips. Version 1 wrote bare
`NaN`/`Infinity`, which Python's json reads as floats; its upgrade only renumbers
the header.

Versioning: a schema change bumps `VERSION` and adds `UPGRADES[old]`, a function
that turns an event (header included) of version `old` into one of version
`old + 1`. The reader applies the chain `UPGRADES[v], UPGRADES[v + 1], ...` up to
`VERSION` to every line of an older log, so the rest of schedtui only ever sees
current events. A log newer than `VERSION` is refused.

Pure Python; imports nothing from schedtui except `schedtui.errors`, and no
torch, textual or rich.
"""

from __future__ import annotations

import math
from typing import Callable

from schedtui.errors import UserError

FORMAT = "schedtui-events"
VERSION = 2
# the oldest version whose step lines are laid out as today's (Timeline reads those in bulk)
STEP_LINES_SINCE = 1
NONFINITE = "$nonfinite"
NONFINITE_TEXT = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
MAX_DEPTH = 64  # a line nested deeper than this is damaged, not an event (no event of ours comes near it)

EVENT_TYPES = frozenset({
    "header", "step", "eval", "epoch", "edit", "pause", "resume", "swa",
    "checkpoint", "early_stop", "warning", "error", "end",
    "detach",  # the screen went away (reason: hangup, SIGHUP; key, q then d; screen, its process failed): the run goes on headless, output in RUN_DIR/output.log
})

END_STATUSES = frozenset({"completed", "stopped", "crashed", "interrupted"})


class LogError(UserError):
    """An event log that can't be written or read; one line, starting with the file path."""


def _v1_to_v2(event: dict) -> dict:
    """Version 1 wrote non-finite floats as bare NaN/Infinity, which json.loads already read as floats:
    the values are as version 2's reader leaves them. Only the header's version changes."""
    if event.get("type") == "header":
        event["version"] = 2
    return event


# old version -> function turning an event of that version into one of the next.
UPGRADES: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2}


def decode_nonfinite(event: dict) -> dict:
    """Put back the non-finite floats that the `NONFINITE` field lists (see the module docstring) and drop
    the field. Only a listed path holding one of the three strings is changed; a damaged list is ignored."""
    paths = event.pop(NONFINITE, None)
    if not isinstance(paths, list):
        return event
    for path in paths:
        if not isinstance(path, list) or not path:
            continue
        obj = event
        for key in path:
            parent = obj
            if isinstance(obj, dict) and isinstance(key, str):
                obj = obj.get(key)
            elif isinstance(obj, list) and isinstance(key, int) and not isinstance(key, bool) and -len(obj) <= key < len(obj):
                obj = obj[key]
            else:
                break
        else:
            if isinstance(obj, str) and obj in NONFINITE_TEXT:
                parent[path[-1]] = NONFINITE_TEXT[obj]
    return event


def upgrade(event: dict, version: int) -> dict:
    """Bring one event written by log `version` up to `VERSION`."""
    for v in range(version, VERSION):
        event = UPGRADES[v](event)
    return event
