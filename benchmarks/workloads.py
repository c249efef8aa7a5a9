"""The overhead benchmark's two workloads, each as a schedtui config and as the same training in a bare loop.

- `moons`: the shipped `moons` preset (an MLP on two half-moons, Adam, a cosine lr per
  step, dropout milestones, a linear weight decay, one intra-op thread), longer: Python
  overhead dominates, the hard case for a monitor.
- `cnn`: a small CIFAR-shaped CNN (the preset's ResNet-9 at width 8 on 32x32x3 images
  of random pixels written in CIFAR's own format: no download), SGD nesterov with a
  one-cycle lr, label smoothing, BatchNorm momentum following the lr, a dropout ramp,
  a linear weight decay, the device-resident crop/flip: kernels dominate.

`bare_*` is the honest baseline: the same training hand-written in plain PyTorch, as
a person would write it without schedtui. Same seed, data (the same tensors on the same
device, batched in the same order), model (built by the same function), optimizer,
per-step schedules, thread count, per-epoch validation (in the same batch size), and a
checkpoint of model and optimizer at the end (the engine writes one when a run ends).
It trains to the same weights as the engine, bit for bit: `weights` (a hash of the
final parameters) says so. The bare loop reports its own training time; the engine's
is timed by `Stopwatch` from `engine.start()` to the end of its thread.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import os
import random
import threading
import time
from pathlib import Path

CNN_PRESET = """
description = "benchmark: a small CIFAR-shaped CNN on the CPU"
seed = 0
epochs = {epochs}
device = "cpu"

[data]
kind = "cifar10"
batch_size = {batch}
download = false
verify = false

[model]
kind = "resnet9"
width = {width}
dropout = 0.0
bn_momentum = 0.1

[optimizer]
kind = "SGD"
lr = 0.4
momentum = 0.9
nesterov = true
weight_decay = 5e-4

[loss]
label_smoothing = 0.2

[schedules.lr]
kind = "OneCycleLR"
max_lr = 0.4
pct_start = 0.2
anneal_strategy = "linear"
div_factor = 20.0
final_div_factor = 200.0
cycle_momentum = false
unit = "step"

[schedules.weight_decay]
kind = "linear"
end = 2.5e-4
unit = "epoch"

[schedules.dropout]
kind = "piecewise"
points = [[0, 0.0], [12, 0.1], [24, 0.1]]
unit = "epoch"

[schedules.bn_momentum]
kind = "follow"
knob = "lr"
factor = 0.25
"""


def config(workload: str, opts, tmp: Path) -> dict:
    """The resolved schedtui config of a workload (`opts`: epochs, width, batch)."""
    from schedtui.config import load_config

    if workload == "moons":
        cfg, _ = load_config("moons", [f"epochs={opts.epochs}"])
    else:
        preset = Path(tmp) / "bench-cnn.toml"
        preset.write_text(CNN_PRESET.format(epochs=opts.cnn_epochs, batch=opts.cnn_batch, width=opts.cnn_width))
        cfg, _ = load_config(str(preset), [])
    return cfg


def weights_hash(model) -> str:
    h = hashlib.sha1()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _need(cfg: dict, knob: str, kind: str, unit: str) -> dict:
    spec = cfg["schedules"].get(knob, {})
    if spec.get("kind") != kind or spec.get("unit", "epoch") != unit:
        raise SystemExit(f"the bare loop implements {knob} as {kind} ({unit}); the preset now has {spec}: update workloads.py")
    return spec


def _linear(start: float, end: float, k: int, spe: int, total: int) -> float:
    """A native `linear` schedule over the whole run in epochs, as schedtui computes it."""
    return start + (end - start) * min(max((k / spe) / (total / spe), 0.0), 1.0)


def _threads(cfg: dict) -> None:
    import torch

    if cfg["engine"]["threads"]:
        torch.set_num_threads(cfg["engine"]["threads"])


def bare_moons(cfg: dict, data_dir: Path, out_dir: Path) -> dict:
    import torch
    import torch.nn.functional as F

    from schedtui.engine.loader import epoch_seed
    from schedtui.engine.models import build_model
    from schedtui.engine.moons import make_moons

    d, o, seed, epochs = cfg["data"], cfg["optimizer"], cfg["seed"], cfg["epochs"]
    lr_spec = _need(cfg, "lr", "CosineAnnealingLR", "step")
    drop_spec = _need(cfg, "dropout", "milestones", "epoch")
    wd_spec = _need(cfg, "weight_decay", "linear", "epoch")
    _threads(cfg)
    random.seed(seed)
    torch.manual_seed(seed)
    x, y = make_moons(d["n_samples"], d["noise"], seed)
    n_val = max(1, round(d["n_samples"] * d["val_fraction"]))
    n = d["n_samples"] - n_val
    xt, yt, xv, yv = x[:n], y[:n], x[n:], y[n:]
    model = build_model(cfg["model"], (2,), 1)
    opt = torch.optim.Adam(model.parameters(), lr=o["lr"], betas=(o["momentum"], o["beta2"]), eps=o["eps"],
                           weight_decay=o["weight_decay"])
    bs = d["batch_size"]
    ebs = d.get("eval_batch_size") or 2 * bs
    spe = (n + bs - 1) // bs
    total = spe * epochs
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=lr_spec["eta_min"])
    times = sorted(float(t) for t in drop_spec["values"])
    drops = [drop_spec["values"][t] for t in sorted(drop_spec["values"], key=float)]
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    wd0, wd1 = o["weight_decay"], wd_spec["end"]

    t0 = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        i = bisect.bisect_right(times, epoch)
        for m in dropouts:
            m.p = cfg["model"]["dropout"] if i == 0 else drops[i - 1]
        gen = torch.Generator()
        gen.manual_seed(epoch_seed(seed, epoch, 0))
        perm = torch.randperm(n, generator=gen)
        model.train()
        losses = []
        for b in range(spe):
            idx = perm[b * bs:(b + 1) * bs]
            xb, yb = xt.index_select(0, idx), yt.index_select(0, idx)
            opt.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(model(xb).reshape(-1), yb)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            for g in opt.param_groups:
                g["weight_decay"] = _linear(wd0, wd1, step, spe, total)
            losses.append(loss.detach())
        train_loss = torch.stack(losses).mean().item()
        model.eval()
        with torch.no_grad():
            tot = hits = 0.0
            for lo in range(0, n_val, ebs):
                logits = model(xv[lo:lo + ebs]).reshape(-1)
                tot = tot + F.binary_cross_entropy_with_logits(logits, yv[lo:lo + ebs]) * logits.shape[0]
                hits = hits + ((logits > 0).float() == yv[lo:lo + ebs]).sum()
            val_loss, val_acc = (v / n_val for v in torch.stack([tot, hits]).tolist())
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, Path(out_dir) / "bare.pt")
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "steps": step, "final_loss": losses[-1].item(), "train_loss": train_loss,
            "val_loss": val_loss, "val_acc": val_acc, "weights": weights_hash(model)}


def bare_cnn(cfg: dict, data_dir: Path, out_dir: Path) -> dict:
    import torch
    import torch.nn.functional as F

    from schedtui.engine.cifar import cifar_augment, cifar_normalize, load_cifar10
    from schedtui.engine.loader import epoch_seed
    from schedtui.engine.models import build_model

    d, o, seed, epochs = cfg["data"], cfg["optimizer"], cfg["seed"], cfg["epochs"]
    lr_spec = _need(cfg, "lr", "OneCycleLR", "step")
    wd_spec = _need(cfg, "weight_decay", "linear", "epoch")
    drop_spec = _need(cfg, "dropout", "piecewise", "epoch")
    bn_spec = _need(cfg, "bn_momentum", "follow", "epoch")
    _threads(cfg)
    random.seed(seed)
    torch.manual_seed(seed)
    x, y, xv, yv = load_cifar10(data_dir, "cpu", download=False, verify=False)
    model = build_model(cfg["model"], (3, 32, 32), 10)
    opt = torch.optim.SGD(model.parameters(), lr=o["lr"], momentum=o["momentum"], nesterov=o["nesterov"],
                          weight_decay=o["weight_decay"])
    bs = d["batch_size"]
    ebs = d.get("eval_batch_size") or 2 * bs
    n, n_val = x.shape[0], xv.shape[0]
    spe = n // bs  # the last partial batch is dropped
    total = spe * epochs
    args = {k: v for k, v in lr_spec.items() if k not in ("kind", "unit")}
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, total_steps=total, **args)
    augment = cifar_augment(d.get("crop_padding", 4), d.get("flip", True))
    (t0_, v0), (t1_, v1) = drop_spec["points"][0], drop_spec["points"][1]
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    wd0, wd1 = o["weight_decay"], wd_spec["end"]
    smoothing = cfg["loss"]["label_smoothing"]

    def set_knobs(k: int) -> None:  # the values for update k+1
        lr = opt.param_groups[0]["lr"]
        for m in norms:
            m.momentum = bn_spec["factor"] * lr
        for g in opt.param_groups:
            g["weight_decay"] = _linear(wd0, wd1, k, spe, total)
        for m in dropouts:
            m.p = v0 + (v1 - v0) * (k / spe - t0_) / (t1_ - t0_)

    t0 = time.perf_counter()
    step = 0
    set_knobs(0)
    for epoch in range(epochs):
        gen = torch.Generator()
        gen.manual_seed(epoch_seed(seed, epoch, 0))
        perm = torch.randperm(n, generator=gen)
        agen = torch.Generator()
        agen.manual_seed(epoch_seed(seed, epoch, 1))
        model.train()
        losses = []
        for b in range(spe):
            idx = perm[b * bs:(b + 1) * bs]
            xb, yb = augment(x.index_select(0, idx), agen), y.index_select(0, idx)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb).float(), yb, label_smoothing=smoothing)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            set_knobs(step)
            losses.append(loss.detach())
        train_loss = torch.stack(losses).mean().item()
        model.eval()
        with torch.no_grad():
            tot = hits = 0.0
            for lo in range(0, n_val, ebs):
                logits = model(cifar_normalize(xv[lo:lo + ebs]))
                tot = tot + F.cross_entropy(logits.float(), yv[lo:lo + ebs]) * logits.shape[0]
                hits = hits + (logits.argmax(-1) == yv[lo:lo + ebs]).sum()
            val_loss, val_acc = (v / n_val for v in torch.stack([tot, hits]).tolist())
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, Path(out_dir) / "bare.pt")
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "steps": step, "final_loss": losses[-1].item(), "train_loss": train_loss,
            "val_loss": val_loss, "val_acc": val_acc, "weights": weights_hash(model)}


BARE = {"moons": bare_moons, "cnn": bare_cnn}


def run_bare(workload: str, cfg: dict, data_dir: Path, out_dir: Path, on_thread: bool = False) -> dict:
    """The bare loop on this (main) thread, or on a fresh thread that this one waits for."""
    if not on_thread:
        return BARE[workload](cfg, data_dir, out_dir)
    box: dict = {}

    def target():
        try:
            box["result"] = BARE[workload](cfg, data_dir, out_dir)
        except BaseException as e:  # noqa: BLE001 - reported by the caller
            box["error"] = e

    t = threading.Thread(target=target, name="bare-loop")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


def thread_cpu() -> dict:
    """CPU seconds (user + system) of each live thread of this process, by Python thread name ("other": the
    threads Python did not start, e.g. OpenMP's workers). Linux only ({} elsewhere)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out: dict = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        name = names.get(int(tid), "other")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


class Stopwatch:
    """Times a run from `engine.start()` to the end of the engine's thread (a watcher joins it), and the CPU
    time the process spent meanwhile: in all (`cpu_s`) and by the threads that outlive the run."""

    def __init__(self, engine):
        self.engine = engine
        self.t0 = self.t1 = math.nan
        self.cpu: dict = {}
        self.done = threading.Event()

    def start(self) -> None:
        self._cpu0, self._threads0 = time.process_time(), thread_cpu()
        self.t0 = time.perf_counter()
        self.engine.start()
        threading.Thread(target=self._watch, name="stopwatch", daemon=True).start()

    def _watch(self) -> None:
        self.engine.join()
        self.t1 = time.perf_counter()
        total = time.process_time() - self._cpu0
        after = thread_cpu()
        self.cpu = {"process": round(total, 3), **{k: round(v - self._threads0.get(k, 0.0), 3) for k, v in after.items()
                                                    if k != "other"}}
        self.done.set()

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0


def engine_result(clock: Stopwatch, run_dir: Path) -> dict:
    """What the engine's run gives to compare with the bare loop's result."""
    from schedtui.events import read_log

    e = clock.engine
    log = read_log(Path(run_dir) / "events.jsonl")
    steps = [ev for ev in log.events if ev["type"] == "step"]
    evals = [ev for ev in log.events if ev["type"] == "eval"]
    return {"seconds": clock.seconds, "cpu_s": clock.cpu, "steps": e.step, "status": e.status, "final_loss": steps[-1]["loss"] if steps else None,
            "val_acc": evals[-1]["acc"] if evals else None, "weights": weights_hash(e.parts.model)}
