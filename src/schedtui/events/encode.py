"""Encoding events as log lines: standard JSON (format version 2), the step lines fast.

`make_encoder()` returns `encode(ev) -> str`: the text of
`json.dumps(ev, separators=(",", ":"), allow_nan=False)` when every float in `ev`
is finite. A non-finite float is written as the string "NaN", "Infinity" or
"-Infinity" and its path is listed in the event's `format.NONFINITE` field (see
`schedtui.events.format`), so the line stays standard JSON and the reader puts the
float back. An event shaped like the engine's step events (`seq, type, step,
time, epoch, loss, knobs, samples_per_s` and optionally `terms`, every value a
plain int or float) is written with one %-format of a template made once per set
of knob names: `%r` of a finite int or float is the text json writes, and the
float reprs are most of the cost; a NaN or infinity among them (a diverged run
writes one every step) goes in as its string, its path appended. Anything else
(None, a bool, a float subclass, another shape) goes to the C encoder that
`json.dumps` uses, built once per log; an event it refuses for a non-finite float
is copied with the strings in place (`_finite`) and encoded again. Either way the text is json's (a
test checks this on random events). A value json cannot encode (a tensor, a numpy
scalar, a path, a set) goes through `_default`; an event that still cannot be
encoded keeps its seq, type, step and time and says why.
Pure Python, stdlib only.
"""

from __future__ import annotations

import json
import math
from json.encoder import encode_basestring_ascii

from schedtui.events.format import NONFINITE

STEP_KEYS = ("seq", "type", "step", "time", "epoch", "loss", "knobs", "samples_per_s")
_STEP_TERMS = STEP_KEYS + ("terms",)
_CACHE_MAX = 4096
_NUMBERS = frozenset((int, float))
_type = type
_isfinite = math.isfinite


class _Raw(str):
    """Text that `%r` writes as it is: a non-finite value's JSON string in a step line's template."""

    __repr__ = str.__str__


_NAMED = {"NaN": _Raw('"NaN"'), "Infinity": _Raw('"Infinity"'), "-Infinity": _Raw('"-Infinity"')}


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


def _float_text(x: float) -> str:
    """json's text for a float, as a string: a non-finite one is named as the log writes it."""
    if x != x:
        return "NaN"
    if x in (math.inf, -math.inf):
        return "Infinity" if x > 0 else "-Infinity"
    return float.__repr__(x)


def _key(k):
    """A dict key as json writes it (json turns int, float, bool and None keys into strings)."""
    if isinstance(k, str):
        return k
    if k is True or k is False:
        return "true" if k else "false"
    if k is None:
        return "null"
    if isinstance(k, float):
        return _float_text(k)
    if isinstance(k, int):
        return int.__repr__(k)
    return k  # json refuses it: the caller says the event cannot be encoded


def _finite(ev: dict) -> dict:
    """A copy of `ev` with every non-finite float written as its name, and their paths in `NONFINITE`.
    Walks what json would (dicts, lists, tuples, and what `_default` makes of anything else)."""
    paths: list = []
    on_path: set = set()

    def walk(o, path: list):
        if isinstance(o, str) or o is None or o is True or o is False:
            return o
        if isinstance(o, float):
            if math.isfinite(o):
                return o
            paths.append(path)
            return _float_text(o)
        if isinstance(o, int):
            return o
        if isinstance(o, (dict, list, tuple)):
            if id(o) in on_path:
                raise ValueError("Circular reference detected")
            on_path.add(id(o))
            if isinstance(o, dict):
                out = {}
                for k, v in o.items():
                    k = _key(k)
                    out[k] = walk(v, path + [k])
            else:
                out = [walk(v, path + [i]) for i, v in enumerate(o)]
            on_path.discard(id(o))
            return out
        return walk(_default(o), path)

    out = walk(ev, [])
    out.pop(NONFINITE, None)
    if paths:
        out[NONFINITE] = paths
    return out


class _Other(Exception):
    """This event is not of the shape the fast path formats: use the C encoder."""


def make_encoder():
    """ev -> its log line (without the newline). One per log: the C encoder's circular-reference markers and
    the caches are not shared between writer threads."""
    markers: dict = {}
    c_enc = json.encoder.c_make_encoder
    if c_enc is None:  # pragma: no cover - CPython always has _json
        strict = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_default).encode
    else:
        it = c_enc(markers, _default, encode_basestring_ascii, None, ":", ",", False, False, False)
        join = "".join

        def strict(ev):
            return join(it(ev, 0))

    def slow(ev):
        try:
            return strict(ev)
        except ValueError:  # a non-finite float (or a circular structure: _finite says so again)
            markers.clear()  # the C encoder leaves its markers behind when it raises
            return strict(_finite(ev))

    templates: dict = {}  # (knob names, term names or None) -> the line as a %-template of its values
    value_paths: dict = {}  # the same key -> the JSON text of each value's path, in the template's order

    def nonfinite(key: tuple, tpl: str, vals: tuple) -> str:
        """A step line whose plain numbers include NaN or an infinity: those as strings, their paths listed."""
        bad = [i for i, v in enumerate(vals) if v.__class__ is float and not _isfinite(v)]
        if not bad:  # only the sum overflowed
            return tpl % vals
        paths = value_paths.get(key)
        if paths is None:
            knobs, terms = key
            paths = (['["seq"]', '["step"]', '["time"]', '["epoch"]', '["loss"]']
                     + ['["knobs",' + encode_basestring_ascii(k) + "]" for k in knobs] + ['["samples_per_s"]']
                     + ['["terms",' + encode_basestring_ascii(k) + "]" for k in terms or ()])
            if len(value_paths) >= _CACHE_MAX:
                value_paths.clear()
            value_paths[key] = paths
        vals = list(vals)
        for i in bad:
            vals[i] = _NAMED[_float_text(vals[i])]
        return (tpl[:-1] % tuple(vals)) + ',"' + NONFINITE + '":[' + ",".join(paths[i] for i in bad) + "]}"

    def template(key: tuple) -> str:
        knobs, terms = key

        def obj(names) -> str:
            if any(k.__class__ is not str for k in names):
                raise _Other
            return "{" + ",".join(encode_basestring_ascii(k).replace("%", "%%") + ":%r" for k in names) + "}"

        tpl = ('{"seq":%r,"type":"step","step":%r,"time":%r,"epoch":%r,"loss":%r,"knobs":' + obj(knobs)
               + ',"samples_per_s":%r' + ("" if terms is None else ',"terms":' + obj(terms)) + "}")
        if len(templates) >= _CACHE_MAX:
            templates.clear()
        templates[key] = tpl
        return tpl

    def step(ev) -> str:
        """One C-level %-format of every value (%r of a finite int or float is json's own text), when every
        value is a plain int or float; else _Other (None, a bool, a float subclass: json's encoder)."""
        order = tuple(ev)
        if order == STEP_KEYS:
            terms = None
        elif order == _STEP_TERMS:
            terms = ev["terms"]
            if terms.__class__ is not dict:
                raise _Other
        else:
            raise _Other
        knobs = ev["knobs"]
        if knobs.__class__ is not dict:
            raise _Other
        key = (tuple(knobs), None if terms is None else tuple(terms))
        tpl = templates.get(key) or template(key)
        vals = (ev["seq"], ev["step"], ev["time"], ev["epoch"], ev["loss"], *knobs.values(), ev["samples_per_s"])
        if terms is not None:
            vals += tuple(terms.values())
        if set(map(_type, vals)) <= _NUMBERS:
            total = sum(vals)
            if total - total == 0:  # every value finite
                return tpl % vals
            return nonfinite(key, tpl, vals)  # a NaN or an infinity (or a sum that overflowed)
        raise _Other

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
