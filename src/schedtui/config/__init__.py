"""Presets: find, load, override with --set, validate and fill defaults.

`load_config(name_or_path, overrides)` returns the fully resolved config (every
default filled in) that the engine runs and the event log's header records.
Every problem is a one-line `UserError`. Pure Python (tomllib); no torch/textual.
"""

from schedtui.config.load import find_preset, list_presets, load_config, parse_set

__all__ = ["find_preset", "list_presets", "load_config", "parse_set"]
