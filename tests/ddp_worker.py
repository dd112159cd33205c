"""Launched by tests/test_ddp.py through torchrun: trains the tiny task on 2 processes."""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from test_train import TinyTask, cfg, data  # noqa: E402

from recgen.runs import Run  # noqa: E402
from recgen.train import Trainer  # noqa: E402

out = sys.argv[1]
rank = int(os.environ["RANK"])
run = Run(os.path.join(out, "run"))
run.path.mkdir(parents=True, exist_ok=True)
task = TinyTask()
hist = Trainer(task, cfg(ema=0.0), run).fit(data())
# every rank dumps its final weights: data parallelism must keep them identical
torch.save({k: v.clone() for k, v in task.modules["model"].state_dict().items() if "running" not in k},
           os.path.join(out, f"rank{rank}.pt"))
