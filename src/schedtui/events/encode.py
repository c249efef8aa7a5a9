"""Encoding events as log lines: the same text as `json.dumps(ev, separators=(",", ":"), allow_nan=True)`, fast.

`make_encoder()` returns `encode(ev) -> str`. An event shaped like the engine's
step events (`seq, type, step, time, epoch, loss, knobs, samples_per_s` and
optionally `terms`, with plain ints, floats, None and a flat dict of numbers) is
formatted directly: the float reprs dominate the cost, and most knob values repeat
from one step to the next, so each knob's last text is reused while its value holds. Anything else
(and any value of another type) goes to the C encoder that `json.dumps` uses, built
once per log. Either way the text is identical to json's, NaN and infinities as
`NaN` / `Infinity` (a test checks this on random events). A value json cannot
encode (a tensor, a numpy scalar, a path, a set) goes through `_default`; an event
that still cannot be encoded keeps its seq, type, step and time and says why.
Pure Python, stdlib only.
"""

from __future__ import annotations

import json
import math
from json.encoder import encode_basestring_ascii

STEP_KEYS = ("seq", "type", "step", "time", "epoch", "loss", "knobs", "samples_per_s")
_STEP_TERMS = STEP_KEYS + ("terms",)
_CACHE_MAX = 4096
_INF = math.inf
_float_repr = float.__repr__
_int_repr = int.__repr__


def _default(o):
    """Last resort for values json can't encode (tensors, numpy scalars, paths, sets)."""
    item = getattr(o, "item", None)
    if callable(item):
        try:
            return item()  # a device tensor costs a host-device sync here, off the training thread
        except Exception:
            pass
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    return str(o)


class _Other(Exception):
    """This event is not of the shape the fast path formats: use the C encoder."""


def make_encoder():
    """ev -> its log line (without the newline). One per log: the C encoder's circular-reference markers and
    the caches are not shared between writer threads."""
    markers: dict = {}
    c_enc = json.encoder.c_make_encoder
    if c_enc is None:  # pragma: no cover - CPython always has _json
        slow = json.JSONEncoder(separators=(",", ":"), allow_nan=True, default=_default).encode
    else:
        it = c_enc(markers, _default, encode_basestring_ascii, None, ":", ",", False, False, True)
        join = "".join

        def slow(ev):
            return join(it(ev, 0))

    keys: dict = {}  # a dict key -> its JSON text with the colon
    memo: dict = {}  # a dict key -> (type, value, "key":text) as last encoded: most knob values repeat

    def num(v) -> str:
        c = v.__class__
        if c is float:
            if v != v:
                return "NaN"
            if v == _INF:
                return "Infinity"
            if v == -_INF:
                return "-Infinity"
            return _float_repr(v)
        if c is int:
            return _int_repr(v)
        if v is None:
            return "null"
        raise _Other

    def flat(d) -> str:
        if d.__class__ is not dict:
            raise _Other
        parts = []
        for k, v in d.items():
            m = memo.get(k)
            if m is not None and m[1] == v and m[0] is v.__class__:
                parts.append(m[2])  # the same value as last time: the same text (0.0 and NaN are never kept)
                continue
            q = keys.get(k)
            if q is None:
                if k.__class__ is not str:
                    raise _Other
                if len(keys) >= _CACHE_MAX:
                    keys.clear()
                    memo.clear()
                q = keys[k] = encode_basestring_ascii(k) + ":"
            text = q + num(v)
            if v.__class__ is int or (v.__class__ is float and v != 0.0 and v == v):
                memo[k] = (v.__class__, v, text)
            parts.append(text)
        return "{" + ",".join(parts) + "}"

    def step(ev) -> str:
        order = tuple(ev)
        if order != STEP_KEYS and order != _STEP_TERMS:
            raise _Other
        line = (f'{{"seq":{num(ev["seq"])},"type":"step","step":{num(ev["step"])},"time":{num(ev["time"])},'
                f'"epoch":{num(ev["epoch"])},"loss":{num(ev["loss"])},"knobs":{flat(ev["knobs"])},'
                f'"samples_per_s":{num(ev["samples_per_s"])}')
        if len(order) == len(_STEP_TERMS):
            return line + f',"terms":{flat(ev["terms"])}}}'
        return line + "}"

    def encode(ev: dict) -> str:
        try:
            if ev.get("type") == "step":
                try:
                    return step(ev)
                except _Other:
                    pass
            return slow(ev)
        except Exception as e:  # e.g. a circular structure: keep the line, say what went wrong
            markers.clear()
            keep = {k: ev.get(k) for k in ("seq", "type", "step", "time")}
            return slow({**keep, "unserialisable": f"{type(e).__name__}: {e}"})

    return encode
