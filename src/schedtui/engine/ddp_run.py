"""Starting a run as one rank of a data-parallel job: rank 0's config, run directory and log, shared with the rest.

- `join(cfg)`: joins torchrun's job (`engine.ddp.setup`) and returns (dist or None,
  the config every rank runs: rank 0's, broadcast; a rank whose own differed says
  so in its output log).
- `shared_log(dist, open_log)`: rank 0 calls `open_log()` -> (run directory,
  EventLog); the directory and the header go to every rank, whose log is a
  `SilentLog` with that header, and whose stdout and stderr go to
  `RUN_DIR/output-rank<N>.log` (nothing on the terminal from ranks other than 0).

torch only (through engine.ddp); no textual/rich.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from schedtui.engine import ddp
from schedtui.engine.silent_log import SilentLog


def join(cfg: dict) -> tuple:
    d = ddp.setup(cfg["device"])
    if d is None:
        return None, cfg
    ruling = d.broadcast(cfg)
    if not d.main and ruling != cfg:
        print(f"schedtui rank {d.rank}: this rank's config differs from rank 0's; rank 0's rules", file=sys.stderr)
    return d, ruling


def header_fields(d) -> dict:
    return {"world_size": 1 if d is None else d.world, **({"backend": d.backend} if d is not None else {})}


def shared_log(d, open_log):
    """(run directory, log) for this rank; see the module docstring."""
    if d is None:
        return open_log()
    if d.main:
        run_dir, log = open_log()
        d.broadcast((str(run_dir), log.header, str(log.path)))
        return run_dir, log
    run_dir, header, path = d.broadcast()
    run_dir = Path(run_dir)
    quiet(run_dir / f"output-rank{d.rank}.log")
    return run_dir, SilentLog(header, Path(path))


def quiet(path: Path) -> None:
    """Send this process's stdout and stderr to `path` (appended)."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def ranks_in_sync(core) -> bool:
    """Whether every rank holds the same parameters (a digest of each, all-gathered); a warning if not."""
    from schedtui.engine.digest import parameter_digest

    digests = core.dist.gather(parameter_digest(core.parts.model))
    same = all(d == digests[0] for d in digests)
    if not same:
        differ = [r for r, d in enumerate(digests) if d != digests[0]]
        core.emit("warning", message=f"the ranks' parameters differ at the end of epoch {core.epoch + 1} "
                                     f"(ranks {', '.join(map(str, differ))} differ from rank 0)", ranks=differ)
    return same
