"""The `schedtui` subcommands that work on recorded runs: replay, rerun, diff, export, resume.

Each module has `main(argv) -> int` and its own argparse parser built with
`command_parser`; bad input raises UserError (one line, exit 2, printed by
`schedtui.cli.main`). Modules import torch only where a run is re-executed
(rerun, resume); replay, diff and export never do.
"""

from __future__ import annotations

import argparse

from schedtui.errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UserError(f"{message} (see {self.prog} --help)")


def command_parser(name: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    return _Parser(prog=f"schedtui {name}", description=description, epilog=epilog,
                   formatter_class=argparse.RawDescriptionHelpFormatter)
