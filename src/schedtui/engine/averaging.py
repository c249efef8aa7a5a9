"""SWA and EMA: averaged copies of the training model, from `torch.optim.swa_utils`.

SWA, on demand (`start`/`stop`) or from the preset's `[swa] start`: an
`AveragedModel` (torch's equal average) takes the model's weights every
`update_every` epochs or steps while it runs, and the lr enters an SWA phase. That
phase is an edit of the lr to the `SWALR` schedule kind (torch's own class: anneal
to `swa_lr` over `anneal_epochs`, then hold), so it is one more schedule segment
that live edits of the lr can still change; `lr_spec` gives it to the engine,
which applies it like any edit. `stop` ends averaging and keeps the average for
evaluation. `update_bn` recomputes the average's BatchNorm statistics with torch's
`update_bn` on (input, target) batches; the engine calls it before every
evaluation of the SWA model. It runs under a forked RNG, so the training's random
stream does not depend on whether or when it ran.

EMA, from `[ema] decay`: an `AveragedModel` with torch's EMA multi-average
function at the `ema_decay` knob's value of the moment (so the decay can be
scheduled and edited), updated after every optimizer step, buffers included.

All state round-trips through `state_dict` (tensors and plain values). torch only;
must not import textual/rich.
"""

from __future__ import annotations

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn

from schedtui.config.schema import section_defaults
from schedtui.engine.knobs import Holder, Knob
from schedtui.errors import UserError
from schedtui.schedule.bounds import UNIT_OPEN
from schedtui.schedule.timing import Timing


def swa_start_step(swa_cfg: dict, timing: Timing) -> int | None:
    """The step where a preset's SWA starts: `start` epochs (>= 1), or that fraction of the run (< 1)."""
    start = swa_cfg.get("start")
    if start is None:
        return None
    step = round(start * timing.total_steps) if start < 1 else round(start * timing.steps_per_epoch)
    if step > timing.total_steps:
        raise UserError(f"swa.start: epoch {start:g} is past the run's end ({timing.total_steps // timing.steps_per_epoch} epochs)")
    return step


class Averaging:
    def __init__(self, model: torch.nn.Module, cfg: dict, timing: Timing):
        self.model, self.timing = model, timing
        self.swa_cfg = cfg.get("swa") or section_defaults("swa")
        self.swa: AveragedModel | None = None
        self.active = False
        self.started_at: int | None = None
        self._epochs = 0  # epoch ends since SWA started
        self.decay: Holder | None = None
        self.ema: AveragedModel | None = None
        if "ema" in cfg:
            self.decay = Holder(cfg["ema"]["decay"])
            self.ema = AveragedModel(model, multi_avg_fn=self._ema_update, use_buffers=True)

    def knobs(self) -> tuple[dict[str, Knob], dict[str, float]]:
        """The knobs this adds (ema_decay when EMA is on) and their starting values."""
        if self.decay is None:
            return {}, {}
        d = self.decay
        knob = Knob("ema_decay", lambda: d.value, lambda v: setattr(d, "value", v), UNIT_OPEN, "EMA decay per optimizer step")
        return {"ema_decay": knob}, {"ema_decay": d.value}

    def _ema_update(self, averaged: list, current: list, n_averaged) -> None:
        get_ema_multi_avg_fn(self.decay.value)(averaged, current, n_averaged)

    # ---- SWA -----------------------------------------------------------------------------------
    def lr_spec(self, current_lr: float) -> dict:
        """The lr's SWA phase as a schedule spec (SWALR from the current lr)."""
        c = self.swa_cfg
        return {"kind": "SWALR", "swa_lr": c.get("swa_lr", current_lr), "anneal_epochs": c["anneal_epochs"],
                "anneal_strategy": c["anneal_strategy"], "unit": "epoch"}

    def start(self, step: int) -> dict:
        if self.active:
            raise UserError(f"SWA is already averaging (since step {self.started_at})")
        if self.swa is None:
            self.swa = AveragedModel(self.model)
        self.active, self.started_at, self._epochs = True, step, 0
        c = self.swa_cfg
        return {"op": "start", "update_every": c["update_every"], "update_unit": c["update_unit"], "n_averaged": self.n_averaged}

    def stop(self) -> dict:
        if not self.active:
            raise UserError("SWA is not averaging: nothing to stop")
        self.active = False
        return {"op": "stop", "n_averaged": self.n_averaged}

    @property
    def n_averaged(self) -> int:
        return int(self.swa.n_averaged.item()) if self.swa is not None else 0  # one host-device sync (rare)

    def after_update(self, step: int) -> dict | None:
        """After optimizer update `step`: EMA always, SWA when it is due by steps. Returns a swa event's fields."""
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        c = self.swa_cfg
        if self.active and c["update_unit"] == "step" and (step - self.started_at) % c["update_every"] == 0:
            self.swa.update_parameters(self.model)
            return {"op": "update"}
        return None

    def after_epoch(self) -> dict | None:
        c = self.swa_cfg
        if not self.active or c["update_unit"] != "epoch":
            return None
        self._epochs += 1
        if self._epochs % c["update_every"] == 0:
            self.swa.update_parameters(self.model)
            return {"op": "update", "n_averaged": self.n_averaged}
        return None

    def update_bn(self, loader) -> bool:
        """Recompute the SWA model's BatchNorm statistics over `loader`; False when there is nothing to do."""
        if self.swa is None or self.n_averaged == 0:
            return False
        if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in self.swa.modules()):
            return False
        devices = [loader.device] if getattr(loader, "device", torch.device("cpu")).type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            update_bn(loader, self.swa)
        return True

    def models(self) -> dict[str, torch.nn.Module]:
        """The averaged models that can be evaluated now, by name (swa, ema)."""
        out = {}
        if self.swa is not None and self.n_averaged > 0:
            out["swa"] = self.swa
        if self.ema is not None and int(self.ema.n_averaged.item()) > 0:
            out["ema"] = self.ema
        return out

    # ---- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"swa": None if self.swa is None else self.swa.state_dict(), "active": self.active,
                "started_at": self.started_at, "epochs": self._epochs,
                "ema": None if self.ema is None else self.ema.state_dict(),
                "decay": None if self.decay is None else self.decay.value}

    def load_state_dict(self, state: dict) -> None:
        if state.get("swa") is not None:
            if self.swa is None:
                self.swa = AveragedModel(self.model)
            self.swa.load_state_dict(state["swa"])
        self.active, self.started_at, self._epochs = state["active"], state["started_at"], state["epochs"]
        if state.get("ema") is not None and self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if state.get("decay") is not None and self.decay is not None:
            self.decay.value = state["decay"]
