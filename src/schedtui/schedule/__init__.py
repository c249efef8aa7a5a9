"""Schedules for every knob, and the edits a person makes to them while a run goes.

A *schedule* maps "optimizer updates completed" to a knob's value. A *knob
schedule* is a base schedule from the preset plus at most one override from an
edit (set, scale, schedule-from-here; revert drops it). Everything here is pure
Python and deterministic; torch is imported lazily, only to drive the
`torch.optim.lr_scheduler` classes that torch-named kinds delegate to, so that
their values are exactly torch's. Must not import textual, rich or the engine.
"""

from schedtui.schedule.bounds import Bounds
from schedtui.schedule.knobset import KnobSchedules, EDIT_OPS
from schedtui.schedule.spec import ALL_KINDS, NATIVE_KINDS, TORCH_KINDS, Timing, build_schedule, describe_spec

__all__ = [
    "ALL_KINDS",
    "Bounds",
    "EDIT_OPS",
    "KnobSchedules",
    "NATIVE_KINDS",
    "TORCH_KINDS",
    "Timing",
    "build_schedule",
    "describe_spec",
]
