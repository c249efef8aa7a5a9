"""What a person types for an edit -> the engine's edit arguments.

`parse_edit(op, text)`:
- set:      `0.3`                          -> {"value": 0.3}
- scale:    `0.5` or `x0.5`                -> {"factor": 0.5}
- schedule: `cosine end=1e-4 duration=10`  -> {"spec": {"kind": "cosine", "end": 0.0001, "duration": 10}}
            or a TOML inline table `{kind="StepLR", step_size=5}`
Values after `=` are TOML (bare words are strings). Errors are one-line
UserErrors; ranges and kinds are checked by the schedule package. Pure Python.
"""

from __future__ import annotations

import math
import re
import tomllib

from schedtui.errors import UserError

_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"|'[^']*'|[^\s,]+)")


def _number(text: str, what: str) -> float:
    t = text.strip().lstrip("x*×").strip()
    try:
        v = float(t)
    except ValueError:
        raise UserError(f"{what}: {text.strip()!r} is not a number") from None
    if not math.isfinite(v):
        raise UserError(f"{what}: {text.strip()!r} is not a finite number")
    return v


def _toml_value(raw: str):
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def parse_spec(text: str) -> dict:
    text = text.strip()
    if not text:
        raise UserError("schedule: type a kind and its arguments, e.g. cosine end=1e-4")
    if text.startswith("{"):
        try:
            spec = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError as e:
            raise UserError(f"schedule: not a TOML table ({e})") from None
        if not isinstance(spec, dict):
            raise UserError("schedule: expected a table")
        return spec
    kind, _, rest = text.partition(" ")
    spec: dict = {"kind": kind.strip()}
    pos = 0
    rest = rest.strip()
    for m in _PAIR.finditer(rest):
        if rest[pos:m.start()].strip(" ,"):
            raise UserError(f"schedule: cannot read {rest[pos:m.start()].strip()!r}; use NAME=VALUE")
        spec[m.group(1)] = _toml_value(m.group(2))
        pos = m.end()
    if rest[pos:].strip(" ,"):
        raise UserError(f"schedule: cannot read {rest[pos:].strip()!r}; use NAME=VALUE")
    return spec


def parse_edit(op: str, text: str) -> dict:
    """Keyword arguments for an `edit` command with this op."""
    if op == "set":
        return {"value": _number(text, "set")}
    if op == "scale":
        return {"factor": _number(text, "scale")}
    if op == "schedule":
        return {"spec": parse_spec(text)}
    if op == "revert":
        return {}
    raise UserError(f"unknown edit {op!r}; valid: set, scale, schedule, revert")
