"""Layer boundaries, checked in fresh interpreters: what each part must not load."""

import subprocess
import sys

import pytest


def loaded_after(code: str) -> set:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_engine_runs_without_textual_or_rich():
    mods = loaded_after("import schedtui.engine.engine, schedtui.engine.build, schedtui.engine.rundir")
    assert "torch" in mods
    assert "textual" not in mods and "rich" not in mods


@pytest.mark.parametrize("module", ["schedtui.cli", "schedtui.config", "schedtui.schedule", "schedtui.events", "schedtui.events.state"])
def test_pure_layers_do_not_import_torch(module):
    mods = loaded_after(f"import {module}")
    assert "torch" not in mods and "textual" not in mods


def test_help_and_presets_do_not_import_torch():
    code = ("import sys\nfrom schedtui.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\nmain(['presets'])\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
