"""The event log: one JSON object per line, written by the engine, read by replay and tools.

`EventLog` writes it (cheap `emit` from the training loop, a background writer thread,
live subscriber queues); `read_log` reads it back. The format, its version and the
upgrade path live in `schedtui.events.format`. Pure Python, stdlib only; must not
import torch, textual or rich.
"""

from schedtui.events.format import FORMAT, VERSION, LogError
from schedtui.events.reader import Log, read_log, resolve_log_path
from schedtui.events.writer import EventLog

__all__ = ["EventLog", "read_log", "resolve_log_path", "Log", "LogError", "FORMAT", "VERSION"]
