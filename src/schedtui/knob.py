"""A knob: a named value a run can schedule and a person can edit while it trains.

`Knob(name, get, set, bounds)` is all a custom knob needs: `get()` reads the live
value, `set(v)` writes it (the engine calls it at a step boundary, on the training
thread, only when the value changes), `bounds` is a `Bounds` or a `(lo, hi)` pair
(either end may be None). Built-in knobs (lr, dropout, ...) are the same class.
Pure Python; no torch, textual or rich.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from schedtui.errors import UserError
from schedtui.schedule.bounds import ANY, Bounds

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.@-]*$")


@dataclass
class Knob:
    name: str
    get: Callable[[], float]
    set: Callable[[float], None]
    bounds: Bounds | tuple = ANY
    doc: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise UserError(f"knob name {self.name!r}: use letters, digits, _ . @ - (and start with a letter)")
        if not callable(self.get) or not callable(self.set):
            raise UserError(f"knob {self.name}: get and set must be callables (get() -> float, set(value))")
        if isinstance(self.bounds, tuple):
            if len(self.bounds) != 2:
                raise UserError(f"knob {self.name}: bounds must be (lo, hi), got {self.bounds!r}")
            lo, hi = self.bounds
            self.bounds = Bounds(-float("inf") if lo is None else float(lo), float("inf") if hi is None else float(hi))
        elif not isinstance(self.bounds, Bounds):
            raise UserError(f"knob {self.name}: bounds must be (lo, hi) or a Bounds, got {self.bounds!r}")
