"""The shared training loop: exact resume, determinism, NaN handling, atomic checkpoints, bad config."""

import math
import os
import signal

import pytest
import torch
from torch import nn

from recgen.config import TrainConfig, from_dict
from recgen.errors import RecgenError
from recgen.runs import Run
from recgen.train import Trainer, TrainingDiverged, TrainTask


class TinyTask(TrainTask):
    monitor, monitor_mode = "val_loss", "min"

    def __init__(self, bad_after: int | None = None):
        super().__init__()
        torch.manual_seed(0)
        self.modules = {"model": nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2),
                                               nn.Linear(16, 3))}
        self.bad_after, self.calls = bad_after, 0
        g = torch.Generator().manual_seed(5)
        self.val = (torch.randn(40, 6, generator=g), torch.randint(0, 3, (40,), generator=g))

    def training_step(self, batch, g):
        x, y = batch
        x = x + 0.1 * torch.randn(x.shape, generator=g)  # stands in for augmentation drawn from the step's stream
        loss = nn.functional.cross_entropy(self.modules["model"](x), y)
        self.calls += 1
        if self.bad_after is not None and self.calls > self.bad_after:
            loss = loss * math.nan
        return {"loss": loss}

    def validate(self, modules):
        m = modules["model"].eval()
        with torch.no_grad():
            return {"val_loss": nn.functional.cross_entropy(m(self.val[0]), self.val[1]).item()}


def data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(200, 6, generator=g), torch.randint(0, 3, (200,), generator=g)


def cfg(**kw):
    return TrainConfig(**{"epochs": 3, "batch_size": 32, "lr": 1e-2, "ema": 0.9, **kw})


def weights(run, which="last"):
    return run.load_weights(which)


@pytest.mark.parametrize("schedule,optimizer", [("onecycle", "adamw"), ("cosine", "sgd"), ("linear", "sgd"),
                                                ("constant", "adamw")])
def test_resume_is_exact(tmp_path, schedule, optimizer):
    full = Run.create("t", "full", tmp_path)
    Trainer(TinyTask(), cfg(schedule=schedule, optimizer=optimizer), full).fit(data())
    part = Run.create("t", "part", tmp_path)
    h = Trainer(TinyTask(), cfg(schedule=schedule, optimizer=optimizer, max_steps=8), part).fit(data())
    assert h.stopped == "max_steps"  # stopped mid-epoch 2 (6 steps per epoch)
    h2 = Trainer(TinyTask(), cfg(schedule=schedule, optimizer=optimizer), part).fit(data(), resume=True)
    assert h2.stopped == "completed"
    a, b = weights(full), weights(part)
    assert a.keys() == b.keys() and any(k.startswith("ema.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_same_seed_same_metrics(tmp_path):
    r1, r2 = Run.create("t", "a", tmp_path), Run.create("t", "a", tmp_path)
    assert r1.path != r2.path
    Trainer(TinyTask(), cfg(), r1).fit(data())
    Trainer(TinyTask(), cfg(), r2).fit(data())
    m1 = [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in r1.read_metrics()]
    m2 = [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in r2.read_metrics()]
    assert m1 == m2 and len(m1) == 3


def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path):
    run = Run.create("t", "nan", tmp_path)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 8 \(epoch 2\).*last good checkpoint"):
        Trainer(TinyTask(bad_after=7), cfg(), run).fit(data())
    w = weights(run)  # written after epoch 1 (step 6), before the NaN
    assert all(torch.isfinite(v.float()).all() for v in w.values())
    assert run.load_state()["step"] == 6
    leftovers = [p for p in run.path.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_interrupt_checkpoints(tmp_path):
    class Interrupting(TinyTask):
        def training_step(self, batch, g):
            if self.calls == 4:
                raise KeyboardInterrupt
            return super().training_step(batch, g)

    run = Run.create("t", "int", tmp_path)
    with pytest.raises(KeyboardInterrupt):  # the checkpoint is written, then the interrupt ends the command
        Trainer(Interrupting(), cfg(), run).fit(data())
    assert run.load_state()["step"] == 4
    resumed = Run.create("t", "full", tmp_path)
    Trainer(TinyTask(), cfg(), resumed).fit(data())
    Trainer(TinyTask(), cfg(), run).fit(data(), resume=True)
    a, b = weights(resumed), weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ctrl_c_inside_a_finaliser_still_stops_training(tmp_path):
    """A real SIGINT that lands while a `__del__` runs: Python prints "Exception ignored" for a KeyboardInterrupt
    raised there and goes on, so the loop must act on the signal itself, at the next step."""
    class Finalised:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(1000))  # bytecode after the signal, where the default handler would raise

    class Signalling(TinyTask):
        def training_step(self, batch, g):
            if self.calls == 4:
                Finalised()  # collected at once, inside the step
            return super().training_step(batch, g)

    run = Run.create("t", "sig", tmp_path)
    # as in a terminal: a shell's background job starts with SIGINT ignored, which the loop leaves alone
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            Trainer(Signalling(), cfg(), run).fit(data())
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert run.load_state()["step"] == 5  # the step in which the signal came was finished, then checkpointed
    # the interrupt is spent: a later fit that does not handle SIGINT (here, outside the main thread) runs through
    import threading

    done = []
    t = threading.Thread(target=lambda: done.append(Trainer(TinyTask(), cfg(), Run.create("t", "after", tmp_path))
                                                    .fit(data()).stopped))
    t.start()
    t.join(60)
    assert done == ["completed"]


def test_interrupt_while_an_epoch_closes_keeps_its_row(tmp_path):
    """Ctrl-C during validation: the previous checkpoint is kept, so the resume replays the epoch and its row."""
    class InterruptedValidation(TinyTask):
        def validate(self, modules):
            if self.calls == 12:  # the end of epoch 2
                raise KeyboardInterrupt
            return super().validate(modules)

    full, run = Run.create("t", "full", tmp_path), Run.create("t", "int", tmp_path)
    Trainer(TinyTask(), cfg(), full).fit(data())
    with pytest.raises(KeyboardInterrupt):
        Trainer(InterruptedValidation(), cfg(), run).fit(data())
    assert run.load_state()["step"] == 6
    Trainer(TinyTask(), cfg(), run).fit(data(), resume=True)
    assert [r["step"] for r in run.read_metrics()] == [6, 12, 18]
    a, b = weights(full), weights(run)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_best_checkpoint_and_metrics_file(tmp_path):
    run = Run.create("t", "best", tmp_path)
    h = Trainer(TinyTask(), cfg(), run).fit(data())
    rows = run.read_metrics()
    assert h.best == min(r["val_loss"] for r in rows)
    assert (run.path / "weights" / "best.safetensors").is_file()


def test_unknown_option_suggests():
    with pytest.raises(RecgenError, match="unknown option 'weight_decy'.*did you mean weight_decay"):
        from_dict(TrainConfig, {"weight_decy": 1})
    with pytest.raises(RecgenError, match="unknown option 'epoch' for TrainConfig; did you mean epochs"):
        from_dict(TrainConfig, {"epoch": 1})


def test_ema_warms_up_before_reaching_its_decay():
    import torch

    from recgen.train import ema_with_warmup

    update = ema_with_warmup(0.999)
    avg = [torch.zeros(3)]
    update(avg, [torch.ones(3)], torch.tensor(0))  # first update: decay 1/10, mostly the new weights
    assert torch.allclose(avg[0], torch.full((3,), 0.9))
    avg = [torch.zeros(3)]
    update(avg, [torch.ones(3)], torch.tensor(100_000))  # late: the full decay
    assert torch.allclose(avg[0], torch.full((3,), 0.001))
    steps = [torch.zeros(2, dtype=torch.int64)]
    update(steps, [torch.full((2,), 10, dtype=torch.int64)], torch.tensor(0))  # integer buffers still update
    assert steps[0].tolist() == [9, 9]


class DtypeTask(TinyTask):
    """Records the dtype the first linear layer computed in."""

    def training_step(self, batch, g):
        self.seen = self.modules["model"][0](batch[0]).dtype
        return super().training_step(batch, g)


@pytest.mark.parametrize("precision,dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_precision_sets_the_forward_dtype_and_is_recorded(tmp_path, precision, dtype):
    run = Run.create("t", "p", tmp_path)
    run.write_config("t", {})
    task = DtypeTask()
    Trainer(task, cfg(precision=precision, epochs=1), run).fit(data())
    assert task.seen == dtype
    assert run.config["precision"] == precision
    w = run.load_weights("last")
    assert all(v.dtype == torch.float32 for k, v in w.items() if v.is_floating_point())  # weights stay fp32


def test_bf16_resume_is_exact_and_deterministic(tmp_path):
    full = Run.create("t", "full", tmp_path)
    Trainer(TinyTask(), cfg(precision="bf16"), full).fit(data())
    part = Run.create("t", "part", tmp_path)
    Trainer(TinyTask(), cfg(precision="bf16", max_steps=8), part).fit(data())
    Trainer(TinyTask(), cfg(precision="bf16"), part).fit(data(), resume=True)
    a, b = weights(full), weights(part)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_precision_auto_follows_the_environment_and_bad_values_are_refused(monkeypatch):
    from recgen.train import resolve_precision

    cpu = torch.device("cpu")
    monkeypatch.setenv("RECGEN_PRECISION", "fp32")
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("bf16", cpu) == "bf16"  # an explicit choice beats the environment
    monkeypatch.setenv("RECGEN_PRECISION", "fp16")
    with pytest.raises(RecgenError, match="RECGEN_PRECISION"):
        resolve_precision("auto", cpu)
    monkeypatch.delenv("RECGEN_PRECISION")
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # AMX or AVX-512 BF16: native bf16
    native = any(getattr(torch.cpu, p, lambda: False)() for p in probes)
    assert resolve_precision("auto", cpu) == ("bf16" if native else "fp32")
    with pytest.raises(RecgenError, match="precision must be one of auto, fp32, bf16, got 'half'"):
        resolve_precision("half", cpu)


@pytest.mark.parametrize("amx,avx512_bf16,expected", [(True, False, "bf16"), (False, True, "bf16"),
                                                       (False, False, "fp32")])
def test_precision_auto_is_bf16_on_either_kind_of_native_cpu_bf16(monkeypatch, amx, avx512_bf16, expected):
    from recgen.train import resolve_precision

    monkeypatch.delenv("RECGEN_PRECISION", raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert resolve_precision("auto", torch.device("cpu")) == expected


def test_published_files_get_the_umask_mode_not_mkstemps_0600(tmp_path):
    """Checkpoints, records and skops models are written to a temporary file and renamed; mkstemp makes that file
    0600, which used to leave every run file unreadable to the group."""
    import os
    import stat

    import numpy as np

    from recgen.classify.classical import build_classical, save_classical
    from recgen.runs import FILE_MODE, atomic_write, save_tensors

    atomic_write(tmp_path / "a.json", "{}")
    save_tensors({"w": torch.zeros(2)}, tmp_path / "w.safetensors")
    x, y = np.random.default_rng(0).integers(0, 255, (20, 8, 8), dtype=np.uint8), np.arange(20) % 2
    save_classical(build_classical("rf", "pixels", n_estimators=2).fit(x, y), tmp_path / "m.skops")
    for name in ("a.json", "w.safetensors", "m.skops"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == FILE_MODE, name


def test_long_runs_print_a_bounded_number_of_epoch_lines(tmp_path, npz_file):
    from conftest import cli

    from recgen.train import LOG_LINES

    r = cli("classify", "train", "--data", npz_file, "--out", tmp_path, "--epochs", "120", "--batch-size", "16",
            "--stem-width", "4", "--widths", "8", "--blocks", "0", "--threads", "1")
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.output.splitlines() if ln.startswith("epoch ")]
    assert LOG_LINES // 2 <= len(lines) <= LOG_LINES + 1 and lines[-1].startswith("epoch 120 "), lines[-3:]
    assert len((tmp_path / "classify" / "cnn-1" / "metrics.csv").read_text().splitlines()) == 121  # all kept there


class SpikeTask(TinyTask):
    """TinyTask whose steps from `spike_at` on, `length` of them, have gradients 1,000 times the others; it
    records the gradient norm each optimizer step is handed."""

    def __init__(self, spike_at: int, length: int = 3):
        super().__init__()
        self.spike_at, self.length, self.norms = spike_at, length, []

    def configure_optimizers(self, cfg, total_steps):
        out = super().configure_optimizers(cfg, total_steps)

        def record(opt, args, kwargs):
            grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
            self.norms.append(float(torch.nn.utils.get_total_norm(grads)))

        out[0][0].register_step_pre_hook(record)
        return out

    def training_step(self, batch, g):
        loss = super().training_step(batch, g)["loss"]
        return {"loss": loss * 1000 if 0 <= self.calls - self.spike_at < self.length else loss}


def test_clip_spikes_clips_outlier_gradients_and_resumes_exactly(tmp_path):
    """--clip-spikes 4: after the warm-up, a gradient above 4x the running mean of recent norms reaches the
    optimizer at that bound (the metrics count the clipped steps); without it the 1,000x gradients pass. Resume is
    exact with the running mean in the state. A factor of 1 or less is refused."""
    from recgen.train import SPIKE_WARMUP

    long = dict(epochs=12, lr=1e-3, ema=0.0, schedule="constant", warmup=0.0)  # 6 steps an epoch: 72 steps
    at = SPIKE_WARMUP + 10
    norms = {}
    for clip in (0.0, 4.0):
        task = SpikeTask(at)
        run = Run.create("t", f"clip{clip}", tmp_path)
        Trainer(task, cfg(**long, clip_spikes=clip), run).fit(data())
        norms[clip] = task.norms
    before = norms[4.0][at - 12:at - 1]  # the calls counter is 1-based: step `at` is norms[at - 1]
    burst = norms[4.0][at - 1:at + 2]
    assert max(burst) <= 4.0 * max(before) * 1.001 and min(norms[0.0][at - 1:at + 2]) > 100 * max(before)
    assert norms[4.0][:at - 1] == norms[0.0][:at - 1]  # nothing was clipped before the burst
    assert run.read_metrics()[-1]["spikes_clipped"] == 3

    full = Run.create("t", "full", tmp_path)
    Trainer(SpikeTask(at), cfg(**long, clip_spikes=4.0), full).fit(data())
    part = Run.create("t", "part", tmp_path)
    Trainer(SpikeTask(at), cfg(**long, clip_spikes=4.0, max_steps=at), part).fit(data())
    task = SpikeTask(at)
    task.calls = at  # the burst is keyed on the task's step counter: continue it where the session stopped
    Trainer(task, cfg(**long, clip_spikes=4.0), part).fit(data(), resume=True)
    a, b = weights(full), weights(part)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    with pytest.raises(RecgenError, match="clip_spikes"):
        from_dict(TrainConfig, {"clip_spikes": 1.0})
