"""The one training loop for every PyTorch model in recgen.

A model family contributes a `TrainTask`: its modules, its training step and its validation. The loop owns the
rest, once: data order, optimizer and schedule, EMA, progress, per-epoch validation, best/last checkpoints, exact
resume, NaN detection, Ctrl-C, time budgets and multi-process (torchrun) gradient averaging.

Randomness is derived, not carried: the data order of epoch e comes from a generator seeded with (seed, e) and the
augmentation stream of step s from (seed, s), so a resumed run replays exactly what an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.optim.swa_utils import AveragedModel

from recgen.config import TrainConfig
from recgen.defaults import announce
from recgen.device import resolve_device, resolve_precision  # noqa: F401 (re-exported)
from recgen.errors import RecgenError
from recgen.runs import Run, load_module, tensor_bytes
from recgen.sanity import check_steps
from recgen.tblog import scalar_logger

_NESTED = contextvars.ContextVar("recgen_nested_training", default=False)


@contextlib.contextmanager
def nested_training():
    """Runs trained inside another command (CAS classifiers, augment's recognizers) are its working files: on Ctrl-C
    they are still checkpointed, but no one resumes them by hand, so the loop prints no `--resume` hint for them."""
    token = _NESTED.set(True)
    try:
        yield
    finally:
        _NESTED.reset(token)


class TrainingDiverged(RecgenError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 1


class TrainTask:
    """What a model family hands the loop. Subclasses set `modules` and implement `training_step`."""

    monitor: str = "val_loss"  # metric that picks the best checkpoint
    monitor_mode: str = "min"  # min | max
    manual_optimization: bool = False  # True: training_step does its own backward/step (GANs)
    ema_modules: tuple[str, ...] = ("model",)  # which modules get an EMA copy when cfg.ema > 0

    def __init__(self):
        self.modules: dict[str, nn.Module] = {}

    def configure_optimizers(self, cfg: TrainConfig, total_steps: int) -> list[tuple[torch.optim.Optimizer, Any]]:
        params = [p for m in self.modules.values() for p in m.parameters() if p.requires_grad]
        opt = make_optimizer(params, cfg)
        return [(opt, make_schedule(opt, cfg, total_steps))]

    def training_step(self, batch: tuple[torch.Tensor, ...], g: torch.Generator) -> dict[str, torch.Tensor]:
        """Return {'loss': scalar tensor, ...}; other entries are logged."""
        raise NotImplementedError

    def grads_ready(self, params: Iterable[nn.Parameter]) -> None:
        """A manual step (manual_optimization) calls this between its backward and its optimizer step, once per
        optimizer, so that the loop averages the gradients across torchrun processes and clips them (--grad-clip)
        as it does for every automatic step. The Trainer installs the hook; outside a Trainer it does nothing."""
        hook = getattr(self, "_grads_hook", None)
        if hook is not None:
            hook(list(params))

    def validate(self, modules: dict[str, nn.Module]) -> dict[str, float]:
        """Metrics after each epoch, computed with `modules` (EMA copies where kept)."""
        return {}

    def on_epoch_end(self, epoch: int, modules: dict[str, nn.Module], run: Run) -> None:
        """Hook for per-epoch artefacts (sample grids)."""


def make_optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on biases and normalisation gains: decaying them only hurts (arXiv 1706.05350).
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99))
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    raise RecgenError(f"optimizer must be adamw or sgd, got {cfg.optimizer!r}")


def make_schedule(opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int):
    sched = torch.optim.lr_scheduler
    warm = max(1, int(cfg.warmup * total_steps))
    if cfg.schedule == "onecycle":  # arXiv 1708.07120
        total = max(total_steps, 4)  # OneCycleLR needs each phase to span at least one step
        return sched.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=min(0.5, max(cfg.warmup, 2 / total)),
                                cycle_momentum=cfg.optimizer == "sgd", div_factor=25.0, final_div_factor=1e3)
    if cfg.schedule == "cosine":  # arXiv 1608.03983, one cycle without restarts, after linear warmup
        return sched.SequentialLR(opt, [sched.LinearLR(opt, 1e-3, 1.0, total_iters=warm),
                                        sched.CosineAnnealingLR(opt, T_max=max(1, total_steps - warm))],
                                  milestones=[warm])
    if cfg.schedule == "linear":  # linear warmup then linear decay to zero (the airbench / ResNet-9 shape)
        return sched.SequentialLR(opt, [sched.LinearLR(opt, 1e-3, 1.0, total_iters=warm),
                                        sched.LinearLR(opt, 1.0, 0.0, total_iters=max(1, total_steps - warm))],
                                  milestones=[warm])
    if cfg.schedule == "constant":
        return sched.LinearLR(opt, 1e-3, 1.0, total_iters=warm)
    raise RecgenError(f"schedule must be onecycle, cosine, linear or constant, got {cfg.schedule!r}")


def epochs_for_steps(steps: int, batch_size: int, n: int) -> int:
    """Epochs over n images that give at least `steps` optimizer steps (the loop drops the last partial batch)."""
    return max(1, math.ceil(steps / max(1, n // batch_size)))


def seeded(*parts: int) -> torch.Generator:
    """A CPU generator seeded from several integers (seed, epoch) or (seed, step), mixed so neighbours differ."""
    s = 0x9E3779B97F4A7C15
    for p in parts:
        s = (s * 6364136223846793005 + int(p) + 1442695040888963407) % (1 << 63)
    return torch.Generator().manual_seed(s)


@dataclass
class History:
    rows: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = "completed"  # completed | time_budget | max_steps | interrupted
    best: float | None = None
    seconds: float = 0.0


def ema_with_warmup(decay: float):
    """EMA update for AveragedModel whose decay ramps up as min(decay, (1 + n) / (10 + n)) over the first updates
    (n = updates so far), the warm-up of diffusers' EMAModel. A plain EMA of 0.999 remembers ~1000 steps, so
    after a short run its weights were still mostly the random initial ones (a one-epoch GAN's EMA generator
    drew unrecognizable samples)."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        n = float(n_averaged)
        d = min(decay, (1 + n) / (10 + n))
        if torch.is_floating_point(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1 - d)
        else:  # integer buffers (BatchNorm's step count) cannot be lerped
            for a, c in zip(averaged, current, strict=True):
                a.copy_(a * d + c * (1 - d))

    return update


class Trainer:
    def __init__(self, task: TrainTask, cfg: TrainConfig, run: Run, device: torch.device | None = None):
        self.task, self.cfg, self.run = task, cfg, run
        self.device = device or resolve_device(cfg.device)
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not dist.is_initialized():  # launched by torchrun
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.main = self.rank == 0
        self.ema: dict[str, AveragedModel] = {}
        self.precision = resolve_precision(cfg.precision, self.device)

    # ------------------------------------------------------------------------------------------- state
    def weights(self) -> dict[str, torch.Tensor]:
        out = {}
        for name, m in self.task.modules.items():
            out.update({f"{name}.{k}": v for k, v in m.state_dict().items()})
        for name, e in self.ema.items():
            out.update({f"ema.{name}.{k}": v for k, v in e.module.state_dict().items()})
        return out

    def eval_modules(self) -> dict[str, nn.Module]:
        return {n: (self.ema[n].module if n in self.ema else m) for n, m in self.task.modules.items()}

    def _checkpoint(self, step: int, rows: list, best: float | None, new_best: bool, seconds: float) -> None:
        """Last weights, state, metrics and (when `new_best`) best weights of this step, committed as one."""
        if not self.main:
            return
        weights = tensor_bytes(self.weights())
        files = {"weights/last.safetensors": weights, "metrics.csv": self.run.metrics_text(rows)}
        if new_best:  # the best weights are the current ones
            files["weights/best.safetensors"] = weights
        files.update(self.run.state_files({
            "step": step, "best": best, "torch_rng": torch.get_rng_state(), "seconds": seconds,
            "optimizers": [o.state_dict() for o, _ in self.optims],
            "schedules": [s.state_dict() if s is not None else None for _, s in self.optims],
            "ema_n": [int(e.n_averaged) for e in self.ema.values()],
        }))
        self.run.commit_checkpoint(files, step=step, best=best)

    # -------------------------------------------------------------------------------------------- loop
    def fit(self, data: tuple[torch.Tensor, ...], resume: bool = False) -> History:
        cfg, task = self.cfg, self.task
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        n = len(data[0])
        bs = min(cfg.batch_size, n)
        steps_per_epoch = max(1, n // (bs * self.world))
        total = steps_per_epoch * cfg.epochs
        for m in task.modules.values():
            m.to(self.device)
        self.optims = task.configure_optimizers(cfg, total)
        task._grads_hook = self._grads_ready
        if cfg.ema > 0:
            for name in task.ema_modules:
                self.ema[name] = AveragedModel(task.modules[name], multi_avg_fn=ema_with_warmup(cfg.ema),
                                               use_buffers=True)
        step, best, rows, before = 0, None, [], 0.0
        if resume:
            step, best, rows, before = self._restore()
        if self.main and (self.run.path / "config.yaml").is_file():
            self.run.update_config(precision=self.precision)  # what auto resolved to on this machine
            if not resume:  # what recgen.defaults sized to the data, and whether the schedule has room
                written = self.run.config  # config.yaml, read once
                announce(written.get("resolved", ""))
                check_steps(cfg.epochs, bs * self.world, n, f"{written.get('task', '')} train".strip())
        hist = History(rows=rows, best=best)
        stop_at = min(total, cfg.max_steps) if cfg.max_steps else total
        t0, seen, loss_sum, loss_n = time.perf_counter(), 0, 0.0, 0
        saved = step if resume else None  # the step of the last committed checkpoint
        closing = False  # between an epoch's last step and its checkpoint (validation, the commit itself)

        def clock() -> float:  # training seconds, the sessions before a resume included
            return before + time.perf_counter() - t0

        progress = _Progress(total, step, bar=self.main and sys.stderr.isatty(), quiet=not self.main)
        log_row = scalar_logger(getattr(cfg, "log", "csv"), self.run.path) if self.main else None
        try:
            while step < stop_at:
                epoch, start = divmod(step, steps_per_epoch)
                order = torch.randperm(n, generator=seeded(cfg.seed, epoch))
                for m in task.modules.values():
                    m.train()
                for b in range(start, steps_per_epoch):
                    idx = order[(b * self.world + self.rank) * bs:(b * self.world + self.rank + 1) * bs]
                    batch = tuple(t[idx].to(self.device, non_blocking=True) for t in data)
                    logs = self._step(batch, seeded(cfg.seed, step, 1))
                    step += 1
                    loss = float(logs["loss"].detach()) if torch.is_tensor(logs["loss"]) else float(logs["loss"])
                    if not math.isfinite(loss):
                        raise TrainingDiverged(
                            f"loss became {loss} at step {step} (epoch {epoch + 1}); training stopped, the last good "
                            f"checkpoint is kept in {self.run.path}/weights (try a lower --lr)")
                    loss_sum, loss_n, seen = loss_sum + loss, loss_n + 1, seen + len(idx) * self.world
                    rate = seen / max(time.perf_counter() - t0, 1e-9)
                    progress.update(step, f"epoch {epoch + 1}/{cfg.epochs} loss {loss:.4f} "
                                          f"lr {self.optims[0][0].param_groups[0]['lr']:.2e} {rate:.0f} img/s")
                    if cfg.time_budget and time.perf_counter() - t0 > cfg.time_budget:
                        hist.stopped = "time_budget"
                        break
                    if step >= stop_at:
                        break
                epoch_done = step % steps_per_epoch == 0 or hist.stopped != "completed" or step >= stop_at
                if epoch_done:
                    closing = True
                    row = {"epoch": round(step / steps_per_epoch, 3), "step": step,
                           "train_loss": round(loss_sum / max(loss_n, 1), 5),
                           "lr": self.optims[0][0].param_groups[0]["lr"],
                           "seconds": round(clock(), 2),
                           "images_per_s": round(seen / max(time.perf_counter() - t0, 1e-9), 1)}
                    loss_sum = loss_n = 0
                    metrics = task.validate(self.eval_modules()) if self.main else {}
                    row.update(metrics)
                    rows.append(row)
                    if log_row is not None:
                        log_row(row)
                    # at most about LOG_LINES epoch lines: a CAS classifier on 100 images runs 800 "epochs"
                    stride = math.ceil(cfg.epochs / LOG_LINES)
                    if round(step / steps_per_epoch) % stride == 0 or step >= stop_at or hist.stopped != "completed":
                        progress.log(_fmt_row(row))
                    better = self._is_better(metrics.get(task.monitor), best)
                    if better:
                        best = metrics.get(task.monitor, best)
                    self._checkpoint(step, rows, best, better, clock())
                    saved, closing = step, False
                    if self.main:
                        task.on_epoch_end(epoch, self.eval_modules(), self.run)
                if hist.stopped != "completed":
                    break
            if step >= stop_at and stop_at < total:
                hist.stopped = "max_steps"
        except KeyboardInterrupt:
            # Checkpoint, then let the interrupt end the whole command: a caller that trains several models
            # (generate eval's CAS classifiers, augment's recognizers) must not go on with a truncated one. While
            # an epoch closes, its row is not in metrics.csv yet: keep the previous checkpoint, so that a resume
            # replays the epoch and writes its row, rather than commit a step whose row would never be written.
            if not closing:
                self._checkpoint(step, rows, best, False, clock())
                saved = step
            if self.main and (self.run.path / "config.yaml").is_file():
                self.run.update_config(stopped="interrupted", train_seconds=round(clock(), 2))
            where = self.run.path
            if not _NESTED.get():
                progress.log(f"interrupted at step {step}: " + (
                    "before the first checkpoint, nothing to resume" if saved is None else
                    f"checkpoint of step {saved} in {where}; continue with --resume {where}"))
            raise
        finally:
            progress.close()
        hist.best, hist.seconds = best, clock()
        return hist

    def _step(self, batch, g) -> dict[str, torch.Tensor]:
        task = self.task
        # Forward passes in bf16 where chosen; backward follows the forward's dtypes, the loss and the weights stay
        # fp32 (no loss scaling needed: bf16 has fp32's exponent range). A manual step (GAN) runs its own backward
        # inside, where autocast leaves it alone.
        autocast = torch.autocast(self.device.type, torch.bfloat16, enabled=self.precision == "bf16")
        if task.manual_optimization:
            with autocast:
                logs = task.training_step(batch, g)
        else:
            opt, sched = self.optims[0]
            opt.zero_grad(set_to_none=True)
            with autocast:
                logs = task.training_step(batch, g)
            loss = logs["loss"]
            if not torch.isfinite(loss):
                return logs
            loss.backward()
            self._grads_ready([p for m in task.modules.values() for p in m.parameters()])
            opt.step()
            if sched is not None:
                sched.step()
        for name, e in self.ema.items():
            e.update_parameters(task.modules[name])
        return logs

    def _grads_ready(self, params: list[nn.Parameter]) -> None:
        """Between backward and optimizer step, automatic or manual: average across processes, then clip."""
        if self.world > 1:
            self._average_grads(params)
        if self.cfg.grad_clip:
            nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)

    def _average_grads(self, params: list[nn.Parameter]) -> None:
        """Data parallelism across torchrun processes: each rank saw its own shard; average the gradients. Like
        DistributedDataParallel, in buckets of about BUCKET_BYTES flattened into one all-reduce each, not one
        collective per parameter (whose latency dominates small networks). DDP itself is not used because the
        GAN's step runs the discriminator several times per backward and calls the optimizers itself."""
        grads = [p.grad for p in params if p.grad is not None]
        bucket: list[torch.Tensor] = []
        size = 0
        for i, g in enumerate(grads):
            bucket.append(g)
            size += g.numel() * g.element_size()
            if size >= BUCKET_BYTES or i == len(grads) - 1 or grads[i + 1].dtype != g.dtype:
                flat = torch.cat([t.reshape(-1) for t in bucket])
                dist.all_reduce(flat, op=dist.ReduceOp.SUM)
                flat /= self.world
                for t, avg in zip(bucket, flat.split([t.numel() for t in bucket]), strict=True):
                    t.copy_(avg.view_as(t))
                bucket, size = [], 0

    def _is_better(self, value, best) -> bool:
        if value is None:  # no validation metric this epoch: the latest weights are the best we know
            return True
        if best is None:
            return True
        return value < best if self.task.monitor_mode == "min" else value > best

    def _restore(self) -> tuple[int, float | None, list, float]:
        if self.main:
            self.run.recover_checkpoint()
        if self.world > 1:
            dist.barrier()  # the other ranks read what rank 0 recovered
        state = self.run.load_state()
        w, source = self.run.load_weights("last"), self.run.weights_path("last")
        for name, m in self.task.modules.items():
            load_module(m, {k[len(name) + 1:]: v for k, v in w.items() if k.startswith(name + ".")}, source)
        for name, e in self.ema.items():
            prefix = f"ema.{name}."
            load_module(e.module, {k[len(prefix):]: v for k, v in w.items() if k.startswith(prefix)}, source)
        for e, n_avg in zip(self.ema.values(), state.get("ema_n", [])):
            e.n_averaged.fill_(n_avg)
        try:
            for (o, s), os_, ss in zip(self.optims, state["optimizers"], state["schedules"], strict=True):
                o.load_state_dict(os_)
                if s is not None and ss is not None:
                    s.load_state_dict(ss)
            torch.set_rng_state(state["torch_rng"])
            step, best = int(state["step"]), state["best"]
        except (KeyError, ValueError, TypeError, RuntimeError) as e:
            raise RecgenError(f"{self.run.path / 'state'}: this training state does not fit the run "
                              f"({type(e).__name__}: {str(e)[:200]})") from None
        rows = [r for r in self.run.read_metrics() if r.get("step", 0) <= step]
        # a run from before `seconds` was kept in the state: its last metrics row has the clock of that step
        seconds = float(state.get("seconds", rows[-1].get("seconds", 0.0) if rows else 0.0))
        return step, best, rows, seconds


def _fmt_row(row: dict[str, Any]) -> str:
    parts = []
    for k, v in row.items():
        parts.append(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}")
    return "  ".join(parts)


BUCKET_BYTES = 25 << 20  # gradients per all-reduce (DistributedDataParallel's default bucket_cap_mb)
LOG_LINES = 50  # epoch lines a training run prints at most (every k-th epoch for long runs; metrics.csv has all)


class _Progress:
    """A rich progress bar on a terminal; one line per epoch otherwise (CI logs, pipes). Training's own: its lines
    are the epoch rows, where recgen.progress (every other long phase) prints a status line every few seconds."""

    def __init__(self, total: int, done: int, bar: bool, quiet: bool = False):
        self.bar, self.quiet = None, quiet
        if bar:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                TextColumn("{task.fields[info]}"), transient=False)
            self.bar.start()
            self.id = self.bar.add_task("train", total=total, completed=done, info="")

    def update(self, step: int, info: str) -> None:
        if self.bar is not None:
            self.bar.update(self.id, completed=step, info=info)

    def log(self, line: str) -> None:
        if self.bar is not None:
            self.bar.console.print(line)
        elif not self.quiet:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
