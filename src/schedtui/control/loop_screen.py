"""The live screen of a loop that keeps this process's main thread: your own loop, Lightning, the HF Trainer.

`LoopScreen.open(run, run_dir, refresh_hz)` starts the screen as a child process
attached to the run (`own_screen.ScreenProcess`, as `schedtui PRESET` does) and
sends this process's output to RUN_DIR/output.log (`capture.OutputCapture`) while
the loop trains on. `run` is the run's handle: `step`, `status`, `send(...)` and
`log` (its `emit`), as `engine.core.RunCore` has them. Then:

- the screen closed while the run goes: quit (ctrl+q, exit `QUIT`) stops the run
  at its next step (`by: "ui"`); detached (q then d) or failed, the loop goes on,
  a `detach` event (reason "key" or "screen") and a line on the terminal say so;
- the terminal hangs up (a dropped SSH session): the loop goes on, where SIGHUP
  would have killed it. Only while the screen is up, only from the main thread,
  and only where SIGHUP had its default action (a handler or `nohup` of yours
  stays yours): a `detach` event with reason "hangup", and what would have gone to
  the dead terminal goes to RUN_DIR/output.log, through the end of the process;
- `close(status)` (the run has ended): waits until the person closes the screen
  (it shows the end), gives the terminal back and says where the log is.

Nothing here imports torch, textual or rich.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

from schedtui.capture import OutputCapture
from schedtui.control import own_screen
from schedtui.control.background import OUTPUT
from schedtui.safe_text import visible

HANGUP_GRACE_S = 0.5  # a screen that died with its terminal: the SIGHUP handler has this long to say "hangup"


class LoopScreen:
    def __init__(self, run, run_dir: Path, screen: own_screen.ScreenProcess, capture: OutputCapture):
        self.run, self.run_dir, self.screen, self.capture = run, Path(run_dir), screen, capture
        self.hung_up = False
        self.closing = False
        self._detached = threading.Lock()  # one detach event, whoever sees it first
        self._old_hup = None
        self._installed = False
        if (hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGHUP) is signal.SIG_DFL):
            self._old_hup = signal.signal(signal.SIGHUP, self._on_hangup)
            self._installed = True
        threading.Thread(target=self._watch, name="schedtui-loop-screen", daemon=True).start()

    @classmethod
    def open(cls, run, run_dir: Path, refresh_hz: float) -> "LoopScreen":
        screen = own_screen.ScreenProcess(refresh_hz)  # on this terminal, before the capture takes it
        screen.started(run_dir)
        return cls(run, run_dir, screen, OutputCapture(Path(run_dir) / OUTPUT, lambda: run.step))

    # ---- while the loop trains ------------------------------------------------------------------
    def _on_hangup(self, signum, frame) -> None:
        """SIGHUP: the terminal is gone. The work is done on a short thread (this handler may have interrupted a
        holder of the log's or the capture's lock)."""
        if not self.hung_up:
            self.hung_up = True
            threading.Thread(target=self._hangup, name="schedtui-hangup", daemon=True).start()

    def _hangup(self) -> None:
        self.capture.retarget(self.run_dir / OUTPUT)  # the terminal's output, at the end too, goes to the file
        self._detach("hangup")
        self.screen.dismiss()  # nobody can see it now

    def _watch(self) -> None:
        code = self.screen.proc.wait()
        if self.closing or self.run.status not in ("running", "paused"):
            return  # the run had ended: the person closed the screen after it
        if code == own_screen.QUIT:
            self.run.send("stop", by="ui")
            return
        if code != own_screen.DETACHED:  # it failed, or died with its terminal: is a SIGHUP on its way here?
            time.sleep(HANGUP_GRACE_S)
            if self.hung_up:
                return
        reason, said = own_screen.closed_while_running(code, self.run_dir, "your loop")
        if self._detach(reason):
            self.capture.to_terminal(said)

    def _detach(self, reason: str) -> bool:
        """The `detach` event, once; False if there was one already or the run has ended."""
        if not self._detached.acquire(blocking=False):
            return False
        try:
            self.run.log.emit("detach", self.run.step, reason=reason, output=str(self.run_dir / OUTPUT))
        except Exception:  # the run ended meanwhile (the log is closed): nothing to record
            return False
        return True

    # ---- the run has ended ----------------------------------------------------------------------
    def close(self, status: str) -> None:
        """The screen shows the end until the person closes it; then the terminal (or, after a hang-up, the
        output file) is the loop's again, with a line saying where the log is."""
        self.closing = True
        try:
            if not self.hung_up:
                self.screen.proc.wait()
        except KeyboardInterrupt:
            pass
        self.screen.wait(timeout=5.0)  # (its pipe closed; a screen still up, after a ctrl-c or a hang-up, closes)
        self.capture.close()
        if self._installed:
            try:
                if signal.getsignal(signal.SIGHUP) == self._on_hangup:  # (unless someone replaced it since)
                    signal.signal(signal.SIGHUP, self._old_hup)
            except ValueError:  # not the main thread
                pass
        try:
            print(f"schedtui: run {status}; log {visible(self.run_dir / 'events.jsonl')}; "
                  f"its output in {visible(self.run_dir / OUTPUT)}", file=sys.stderr)
        except OSError:  # no terminal and no file to say it to
            pass
