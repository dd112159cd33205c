"""Multi-process training with torchrun (gloo on loopback): gradients averaged, replicas stay identical."""

import os
import subprocess
import sys

import torch


def torchrun(tmp_path, *args):
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        "tests/ddp_worker.py", str(tmp_path), *args],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys() and a
    for k in a:
        assert torch.equal(a[k], b[k]), k
    return tmp_path / "run"


def test_torchrun_two_processes(tmp_path):
    run = torchrun(tmp_path)
    assert (run / "weights" / "last.safetensors").is_file()  # rank 0 checkpoints
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 4  # header + 3 epochs


def test_torchrun_gan_manual_step(tmp_path):
    """The GAN's own optimizer steps are averaged across processes too: both replicas of G and D stay equal."""
    run = torchrun(tmp_path, "gan")
    assert len((run / "metrics.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs


def test_gan_honours_grad_clip(tmp_path, monkeypatch):
    """--grad-clip reaches the GAN's manual step: each of its two optimizer steps clips its own network."""
    from recgen import generate

    real, calls = torch.nn.utils.clip_grad_norm_, []

    def clip(params, max_norm, *a, **kw):
        params = list(params)
        real(params, max_norm, *a, **kw)
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))
        calls.append((len(params), max_norm, float(norm)))

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    run = generate.train(model="gan", data="digits", limit=5, epochs=1, max_steps=2, batch_size=12, base=8,
                         latent_dim=8, val_fraction=0.0, threads=1, grad_clip=0.05, out=str(tmp_path))
    assert len(calls) == 4, calls  # 2 steps x (discriminator, generator)
    assert all(mx == 0.05 and norm <= 0.05 * (1 + 1e-4) for _, mx, norm in calls), calls
    assert [n for n, _, _ in calls[2:]] == [n for n, _, _ in calls[:2]]  # D's parameters, then G's, each step
    assert run.config.grad_clip == 0.05
