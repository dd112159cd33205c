"""Multi-process training with torchrun (gloo on loopback): gradients averaged, replicas stay identical."""

import os
import subprocess
import sys

import torch


def test_torchrun_two_processes(tmp_path):
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        "tests/ddp_worker.py", str(tmp_path)],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    run = tmp_path / "run"
    assert (run / "weights" / "last.safetensors").is_file()  # rank 0 checkpoints
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 4  # header + 3 epochs
