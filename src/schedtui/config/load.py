"""Finding presets (by name or path), reading TOML, applying --set KEY=VALUE overrides.

Presets live in the package (`schedtui/presets`, in the wheel) or, in a source
checkout, in the repository's `presets/`. Pure Python; no torch/textual.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from schedtui.config.schema import check_name, safe_name, shown, validate
from schedtui.safe_text import visible
from schedtui.errors import UserError

_HERE = Path(__file__).resolve().parent


def preset_dirs() -> list[Path]:
    dirs = [_HERE.parent / "presets", _HERE.parents[2] / "presets"]
    return [d for d in dirs if d.is_dir()]


def list_presets() -> dict[str, str]:
    """name -> one-line description, for every shipped preset."""
    out = {}
    for d in preset_dirs():
        for p in sorted(d.glob("*.toml")):
            if p.stem not in out:
                try:
                    out[p.stem] = str(read_toml(p).get("description", "")).strip().splitlines()[0]
                except (UserError, IndexError):
                    out[p.stem] = ""
    return out


def find_preset(name_or_path: str) -> Path:
    p = Path(name_or_path).expanduser()
    if p.suffix == ".toml" or "/" in name_or_path:
        try:
            found = p.is_file()
        except (OSError, ValueError):  # a name the file system cannot even look up (a NUL, too long)
            found = False
        if not found:
            raise UserError(f"no such preset file: {visible(name_or_path)}")
        return p
    for d in preset_dirs():
        if (d / f"{name_or_path}.toml").is_file():
            return d / f"{name_or_path}.toml"
    valid = ", ".join(list_presets()) or "(none found)"
    raise UserError(f"unknown preset {shown(name_or_path)}; valid presets: {valid} (or a path to a .toml file)")


def read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: invalid TOML: {e}") from None
    except RecursionError:
        raise UserError(f"{path}: invalid TOML: nested too deeply") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read: {e}") from None


def _split_key(key: str) -> list[str]:
    """Dotted key, with "quoted" parts for names such as "lr@head" (quotes optional)."""
    parts, cur, quote = [], "", None
    for ch in key:
        if quote:
            if ch == quote:
                quote = None
            else:
                cur += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    if quote or any(not p.strip() for p in parts):
        raise UserError(f"--set: bad key {shown(key)}; expected dotted keys such as optimizer.lr")
    return [p.strip() for p in parts]


def parse_set(item: str) -> tuple[list[str], object]:
    """`schedules.lr.T_max=200` -> (["schedules", "lr", "T_max"], 200). Values are TOML; bare words are strings."""
    if "=" not in item:
        raise UserError(f"--set {shown(item)}: expected KEY=VALUE, e.g. optimizer.lr=0.05")
    key, raw = item.split("=", 1)
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        if not raw or any(c in raw for c in "[]{}\"'=,\n"):
            raise UserError(f"--set {shown(item)}: {shown(raw)} is not a TOML value") from None
        value = raw
    return _split_key(key.strip()), value


def _apply(cfg: dict, path: list[str], value, item: str) -> None:
    node = cfg
    for i, part in enumerate(path[:-1]):
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise UserError(f"--set {shown(item)}: {visible('.'.join(path[: i + 1]))} is a value, not a table")
        node = nxt
    node[path[-1]] = value


def load_config(name_or_path: str, overrides: list[str] = ()) -> tuple[dict, Path]:
    """The resolved config and the preset file it came from."""
    path = find_preset(name_or_path)
    return resolve(read_toml(path), overrides, path.stem), path


def resolve(table: dict, overrides: list[str] = (), name: str = "run") -> dict:
    """A preset table with `--set` overrides applied, validated, defaults filled in.

    A `name` the preset or --set gives is refused unless it is a safe run name (it becomes the start of the
    run directory's name); without one, the run is named `name` (the file's stem) made safe."""
    cfg = dict(table)
    for item in overrides:
        keys, value = parse_set(item)
        _apply(cfg, keys, value, item)
    cfg["name"] = check_name(cfg["name"]) if "name" in cfg else safe_name(name)
    return validate(cfg)
