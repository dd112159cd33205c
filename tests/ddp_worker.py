"""Launched by tests/test_ddp.py through torchrun: trains the tiny task on 2 processes."""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from test_train import TinyTask, cfg, data  # noqa: E402

from recgen.runs import Run  # noqa: E402
from recgen.train import Trainer  # noqa: E402

out, kind = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "tiny")
rank = int(os.environ["RANK"])
run = Run(os.path.join(out, "run"))
run.path.mkdir(parents=True, exist_ok=True)
if kind == "gan":  # a manual-optimization step: the task calls grads_ready between backward and step
    from recgen.data.splits import load_splits
    from recgen.config import from_dict
    from recgen.generate.config import FAMILIES, GenerateConfig, arch_config, resolve

    gcfg = resolve(from_dict(GenerateConfig, {"model": "gan", "data": "digits", "limit": 5, "epochs": 2,
                                              "batch_size": 12, "base": 8, "latent_dim": 8, "val_fraction": 0.0,
                                              "threads": 1, "ema": 0.0, "grad_clip": 1.0, "device": "cpu"}))
    train_set, _, _ = load_splits(gcfg)
    arch = arch_config(gcfg, train_set.shape, train_set.num_classes)
    family, _, task_cls = FAMILIES["gan"]
    torch.manual_seed(gcfg.seed)
    task = task_cls(family.build(arch), arch, gcfg, None, train_set.classes, torch.device("cpu"))
    Trainer(task, gcfg, run).fit(train_set.tensors())
else:
    task = TinyTask()
    Trainer(task, cfg(ema=0.0), run).fit(data())
# every rank dumps its final weights: data parallelism must keep them identical
torch.save({f"{name}.{k}": v.clone() for name, m in task.modules.items() for k, v in m.state_dict().items()
            if "running" not in k}, os.path.join(out, f"rank{rank}.pt"))
