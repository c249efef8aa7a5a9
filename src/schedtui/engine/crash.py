"""A run that ends badly still ends readably: the error in the log (and its traceback beside it), or a lost rank.

- `record_error(core, error)`: the `error` event of a run that crashed, with
  `traceback.txt` written beside the log (its text inside the event when the disk
  takes no file); a UserError from the user's code is one line (`user_error`); a
  collective that failed because a data-parallel rank went away names the rank.
- `ranks_lost(core, ranks)`: called by the heartbeat watch (`engine.ddp_watch`) on
  rank 0 when ranks stopped answering: the error and the `end` event (crashed,
  with the steps trained but not read marked `missing`) are written without any
  collective, then the process ends — its training thread may be stuck in one
  for good.
torch only through the core; no textual/rich.
"""

from __future__ import annotations

import os
import traceback

from schedtui.errors import UserError


def record_error(core, error: BaseException) -> None:
    tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    path = core.run_dir / "traceback.txt"
    fields: dict = {}
    try:
        path.write_text(tb, encoding="utf-8")
        fields["traceback_file"] = str(path)
    except OSError as e:  # a full disk: the message still goes into the log
        path.unlink(missing_ok=True)
        fields["traceback"] = tb[-4000:]
        fields["traceback_file_error"] = e.strerror or str(e)
    if core.watch is not None and isinstance(error, RuntimeError):  # a collective failed: was it a lost rank?
        lost = core.watch.dead()
        if lost:
            who = ", ".join(map(str, lost))
            core.emit("error", message=f"rank {who} stopped (its process died or hangs): {type(error).__name__}: "
                                       f"{str(error).splitlines()[0][:200]}", ranks=lost, **fields)
            return
    if isinstance(error, UserError):  # the user's code handed schedtui something it cannot use: one line
        core.emit("error", message=str(error), user_error=True, **fields)
    else:
        core.emit("error", message=f"{type(error).__name__}: {error}", **fields)


def ranks_lost(core, ranks: list) -> None:
    pending = [p[0] for p in core.recorder.pending]
    who = ", ".join(map(str, ranks))
    try:
        core.emit("error", message=f"rank {who} stopped answering for {core.watch.stale_s:g} s (its process died or "
                                   "hangs): the run ends here", ranks=ranks)
        core.emit("end", status="crashed", epochs_completed=core.epoch, elapsed_s=round(core.active_seconds(), 3),
                  **({"missing": [pending[0], pending[-1]]} if pending else {}), **core.best)
        core.log.close()
    finally:
        core.status = "crashed"
        os._exit(1)
