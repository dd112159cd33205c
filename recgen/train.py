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
import signal
import sys
import threading
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
from recgen.optim import ema_with_warmup, make_optimizer, make_schedule
from recgen.progress import EpochProgress, format_row
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


class _InterruptLatch:
    """Ctrl-C while a model trains sets a flag that the loop reads between steps, instead of raising wherever the
    main thread happens to be: a KeyboardInterrupt raised inside a finaliser (a `__del__` the garbage collector runs
    mid-checkpoint) is printed as "Exception ignored" and lost, and training would go on to the end. A second Ctrl-C
    raises at once. Nested fits (CAS classifiers inside `generate eval`) share the outer fit's flag. Installed only in
    the main thread of a single-process run: torchrun's ranks must stop at the same step, which a per-rank flag read
    at different moments cannot promise."""

    def __init__(self) -> None:
        self.depth, self.hit, self.previous = 0, False, None

    @contextlib.contextmanager
    def armed(self, enabled: bool):
        enabled = enabled and (self.depth > 0 or threading.current_thread() is threading.main_thread()
                               and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        if not enabled:
            yield
            return
        if self.depth == 0:
            self.hit, self.previous = False, signal.signal(signal.SIGINT, self._on_signal)
        self.depth += 1
        hit = False
        try:
            yield
        finally:
            self.depth -= 1
            if self.depth == 0:  # the flag goes with the handler: a later fit that is not armed must not see it
                signal.signal(signal.SIGINT, self.previous)
                hit, self.hit = self.hit, False
        if hit:  # pressed during the last epoch's close: the command still stops
            raise KeyboardInterrupt

    def _on_signal(self, signum, frame) -> None:
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def check(self) -> None:
        if self.hit:
            raise KeyboardInterrupt


_INTERRUPT = _InterruptLatch()


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


@dataclass
class _FitState:
    """Where a fit stands: sizes of the schedule, the step, the best score and rows so far, the running loss."""

    n: int  # training images
    bs: int  # images per process per step
    per_epoch: int  # optimizer steps per epoch
    total: int  # optimizer steps of the whole schedule
    stop_at: int  # the step this session ends at (--max-steps)
    step: int
    best: float | None
    rows: list[dict[str, Any]]
    before: float  # training seconds of the sessions before a resume
    hist: History
    saved: int | None  # the step of the last committed checkpoint
    closing: bool = False  # between an epoch's last step and its checkpoint (validation, the commit itself)
    seen: int = 0
    loss_sum: float = 0.0
    loss_n: int = 0
    t0: float = field(default_factory=time.perf_counter)

    def clock(self) -> float:
        """Training seconds, the sessions before a resume included."""
        return self.before + time.perf_counter() - self.t0

    @property
    def epochs(self) -> int:
        """Epochs the schedule spans, the last one partial where --train-steps ends it mid-way."""
        return math.ceil(self.total / self.per_epoch)


# --clip-spikes: the running mean of gradient norms is an EMA with this decay (a memory of about 50 steps), and
# the first SPIKE_WARMUP steps only feed it (the first steps' norms are not yet typical)
SPIKE_DECAY, SPIKE_WARMUP = 0.98, 50
BUDGET_SHARE = 0.85  # of a time budget planned for optimizer steps; validation and checkpoints take the rest


def steps_in_budget(task: TrainTask, cfg: TrainConfig, device: torch.device, seconds: float,
                    batch: tuple[torch.Tensor, ...], overhead: float = 1.15) -> int:
    """How many optimizer steps of `task` on batches like `batch` fit in BUDGET_SHARE of `seconds` here: a few
    steps' forward and backward passes timed at the run's precision and thread count, so that a run's schedule
    can be sized to this machine (a slower one trains fewer steps to the end of its schedule instead of being
    cut mid-way by the time budget). No optimizer step is taken; the gradients are dropped. `overhead`: the
    untimed share of a step (optimizer, EMA, the loop), relative to its forward and backward passes."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    for m in task.modules.values():
        m.to(device).train()
    autocast = torch.autocast(device.type, torch.bfloat16, enabled=resolve_precision(cfg.precision, device) == "bf16")
    batch = tuple(t.to(device) for t in batch)
    times = []
    for i in range(8):
        t0 = time.perf_counter()
        with autocast:
            loss = task.training_step(batch, seeded(cfg.seed, i, 7))["loss"]
        loss.backward()
        times.append(time.perf_counter() - t0)
    for m in task.modules.values():
        m.zero_grad(set_to_none=True)
    # The fastest of the steps after the first three (allocations, oneDNN's kernel selection): a process that
    # briefly competes for the cores while the few timed steps run would otherwise size the whole schedule, and a
    # machine that stays as loaded still times its later steps that slow. The budget cuts a run planned too long.
    step = overhead * min(times[3:])
    return max(1, int(BUDGET_SHARE * seconds / step))


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
        self.spikes = {"mean": None, "steps": 0, "clipped": 0}  # --clip-spikes: running norm mean, counts
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
            "spikes": dict(self.spikes),
        }))
        self.run.commit_checkpoint(files, step=step, best=best)

    # -------------------------------------------------------------------------------------------- loop
    def fit(self, data: tuple[torch.Tensor, ...], resume: bool = False) -> History:
        with _INTERRUPT.armed(self.world == 1):
            return self._fit(data, resume)

    def _fit(self, data: tuple[torch.Tensor, ...], resume: bool) -> History:
        cfg, task = self.cfg, self.task
        st = self._start(data, resume)
        progress = EpochProgress(st.total, st.step, bar=self.main and sys.stderr.isatty(), quiet=not self.main)
        log_row = scalar_logger(getattr(cfg, "log", "csv"), self.run.path) if self.main else None
        try:
            while st.step < st.stop_at:
                epoch, start = divmod(st.step, st.per_epoch)
                order = torch.randperm(st.n, generator=seeded(cfg.seed, epoch))
                for m in task.modules.values():
                    m.train()
                for b in range(start, st.per_epoch):
                    _INTERRUPT.check()  # before a step, never between a step and its epoch's close
                    lo = (b * self.world + self.rank) * st.bs
                    idx = order[lo:lo + st.bs]
                    batch = tuple(t[idx].to(self.device, non_blocking=True) for t in data)
                    logs = self._step(batch, seeded(cfg.seed, st.step, 1))
                    st.step += 1
                    loss = float(logs["loss"].detach()) if torch.is_tensor(logs["loss"]) else float(logs["loss"])
                    if not math.isfinite(loss):
                        raise TrainingDiverged(
                            f"loss became {loss} at step {st.step} (epoch {epoch + 1}); training stopped, the last "
                            f"good checkpoint is kept in {self.run.path}/weights (try a lower --lr)")
                    st.loss_sum, st.loss_n = st.loss_sum + loss, st.loss_n + 1
                    st.seen += len(idx) * self.world
                    rate = st.seen / max(time.perf_counter() - st.t0, 1e-9)
                    progress.update(st.step, f"epoch {epoch + 1}/{st.epochs} loss {loss:.4f} "
                                             f"lr {self.optims[0][0].param_groups[0]['lr']:.2e} {rate:.0f} img/s")
                    if cfg.time_budget and time.perf_counter() - st.t0 > cfg.time_budget:
                        st.hist.stopped = "time_budget"
                        break
                    if st.step >= st.stop_at:
                        break
                if st.step % st.per_epoch == 0 or st.hist.stopped != "completed" or st.step >= st.stop_at:
                    self._close_epoch(st, epoch, progress, log_row)
                    _INTERRUPT.check()
                if st.hist.stopped != "completed":
                    break
            if st.step >= st.stop_at and st.stop_at < st.total:
                st.hist.stopped = "max_steps"
        except KeyboardInterrupt:
            self._interrupted(st, progress)
            raise
        finally:
            progress.close()
        st.hist.best, st.hist.seconds = st.best, st.clock()
        return st.hist

    def _start(self, data: tuple[torch.Tensor, ...], resume: bool) -> _FitState:
        """Modules on the device, optimizers, EMA copies and, on resume, the checkpoint's state; the run's notes."""
        cfg, task = self.cfg, self.task
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        n = len(data[0])
        bs = min(cfg.batch_size, n)
        per_epoch = max(1, n // (bs * self.world))
        total = cfg.train_steps or per_epoch * cfg.epochs
        for m in task.modules.values():
            m.to(self.device)
        if cfg.clip_spikes and task.manual_optimization:  # its steps interleave networks with other norms
            raise RecgenError("clip_spikes: a GAN steps its networks itself; leave it 0 (use --grad-clip)")
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
                check_steps(cfg.epochs, bs * self.world, n, f"{written.get('task', '')} train".strip(),
                            cfg.train_steps)
        return _FitState(n=n, bs=bs, per_epoch=per_epoch, total=total, step=step, best=best, rows=rows,
                         before=before, stop_at=min(total, cfg.max_steps) if cfg.max_steps else total,
                         hist=History(rows=rows, best=best), saved=step if resume else None)

    def _close_epoch(self, st: _FitState, epoch: int, progress: EpochProgress, log_row) -> None:
        """The epoch's metrics row (training loss, validation), the best weights so far, and a checkpoint."""
        task = self.task
        st.closing = True
        row = {"epoch": round(st.step / st.per_epoch, 3), "step": st.step,
               "train_loss": round(st.loss_sum / max(st.loss_n, 1), 5),
               "lr": self.optims[0][0].param_groups[0]["lr"],
               "seconds": round(st.clock(), 2),
               "images_per_s": round(st.seen / max(time.perf_counter() - st.t0, 1e-9), 1)}
        if self.cfg.clip_spikes:
            row["spikes_clipped"] = self.spikes["clipped"]
        st.loss_sum = st.loss_n = 0
        metrics = task.validate(self.eval_modules()) if self.main else {}
        row.update(metrics)
        st.rows.append(row)
        if log_row is not None:
            log_row(row)
        # at most about LOG_LINES epoch lines: a CAS classifier on 100 images runs 800 "epochs"
        stride = math.ceil(st.epochs / LOG_LINES)
        if round(st.step / st.per_epoch) % stride == 0 or st.step >= st.stop_at or st.hist.stopped != "completed":
            progress.log(format_row(row))
        better = self._is_better(metrics.get(task.monitor), st.best)
        if better:
            st.best = metrics.get(task.monitor, st.best)
        self._checkpoint(st.step, st.rows, st.best, better, st.clock())
        st.saved, st.closing = st.step, False
        if self.main:
            task.on_epoch_end(epoch, self.eval_modules(), self.run)

    def _interrupted(self, st: _FitState, progress: EpochProgress) -> None:
        """Checkpoint, then let the interrupt end the whole command: a caller that trains several models (generate
        eval's CAS classifiers, augment's recognizers) must not go on with a truncated one. While an epoch closes,
        its row is not in metrics.csv yet: keep the previous checkpoint, so that a resume replays the epoch and
        writes its row, rather than commit a step whose row would never be written."""
        if not st.closing and st.saved != st.step:
            self._checkpoint(st.step, st.rows, st.best, False, st.clock())
            st.saved = st.step
        elif self.main:  # the epoch's own commit may have completed just before the interrupt
            st.saved = (self.run.checkpoint_manifest() or {}).get("step", st.saved)
        if self.main and (self.run.path / "config.yaml").is_file():
            self.run.update_config(stopped="interrupted", train_seconds=round(st.clock(), 2))
        where = self.run.path
        if not _NESTED.get():
            progress.log(f"interrupted at step {st.step}: " + (
                "before the first checkpoint, nothing to resume" if st.saved is None else
                f"checkpoint of step {st.saved} in {where}; continue with --resume {where}"))

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
        if self.cfg.clip_spikes:
            self._clip_spikes(params)

    def _clip_spikes(self, params: list[nn.Parameter]) -> None:
        """Clip the gradient to clip_spikes x the running mean of recent norms. Adam divides each gradient by a
        running RMS of its past ones, so a gradient many times the recent ones moves the weights many times
        further than usual; the move can land where gradients grow further and the run collapses. The clipped
        norm is what enters the mean, so a burst cannot raise its own ceiling."""
        params = [p for p in params if p.grad is not None]
        norm = float(nn.utils.get_total_norm([p.grad for p in params]))
        if not math.isfinite(norm):
            return  # the loss check stops a diverged run; a NaN must not enter the mean
        sp, limit = self.spikes, self.cfg.clip_spikes * (self.spikes["mean"] or 0.0)
        if sp["steps"] >= SPIKE_WARMUP and norm > limit:
            nn.utils.clip_grads_with_norm_(params, limit, torch.tensor(norm))
            norm, sp["clipped"] = limit, sp["clipped"] + 1
        sp["mean"] = norm if sp["mean"] is None else SPIKE_DECAY * sp["mean"] + (1 - SPIKE_DECAY) * norm
        sp["steps"] += 1

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
        self.spikes.update(state.get("spikes", {}))
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


BUCKET_BYTES = 25 << 20  # gradients per all-reduce (DistributedDataParallel's default bucket_cap_mb)
LOG_LINES = 50  # epoch lines a training run prints at most (every k-th epoch for long runs; metrics.csv has all)
