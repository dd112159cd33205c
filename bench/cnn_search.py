"""Fashion-MNIST CNN recipe search: train one recipe under a time budget on the 60k images, print JSON.

Self-contained on purpose (its own minimal loop), so recipes can be compared before the shared training loop
exists. Every recipe knob is a flag; the JSON line carries the recipe back with the figures:

    flock /tmp/recgen-bench.lock python bench/cnn_search.py --epochs 12 --lr 0.4 --augment flip+crop

Clock: `train_s` counts only training steps (data indexing, augmentation, forward, backward, update); the
per-epoch test evaluation used for time-to-93 % is timed separately (`eval_s`) and excluded. `train_cpu_s` is
process CPU time / threads; on a shared machine it is NOT a clean estimate of uncontended time (OpenMP
spin-waits are CPU time too: a contended run showed 2x the clean figure), so compare recipes at fixed --epochs
and convert to time with a clean throughput measurement. The learning-rate schedule runs on
progress = max(step / total_steps, used / budget) with `used` from --clock, so a slower-than-planned run still
anneals to zero by the budget instead of being cut off at a high learning rate.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from recgen.classify.cnn import CNNConfig, build_cnn
from recgen.data import build_augment, load_dataset


def ints(s: str) -> tuple[int, ...]:
    return tuple(int(v) for v in s.split(",") if v)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a = p.add_argument
    # network (CNNConfig fields)
    a("--stem-width", type=int, default=CNNConfig.stem_width)
    a("--widths", type=ints, default=CNNConfig.widths)
    a("--blocks", type=ints, default=CNNConfig.blocks)
    a("--dropout", type=float, default=CNNConfig.dropout)
    a("--logit-scale", type=float, default=CNNConfig.logit_scale)
    # optimisation
    a("--opt", choices=["sgd", "adamw"], default="sgd")
    a("--lr", type=float, default=0.4, help="peak learning rate")
    a("--momentum", type=float, default=0.9, help="SGD momentum (nesterov) / AdamW beta1")
    a("--wd", type=float, default=5e-4, help="weight decay (SGD: L2 coefficient; AdamW: decoupled)")
    a("--bs", type=int, default=256, help="batch size")
    a("--epochs", type=float, default=10, help="planned epochs (schedule length); budget may stop earlier")
    a("--budget", type=float, default=600, help="training budget, seconds of --clock")
    a("--clock", choices=["wall", "cpu"], default="wall",
      help="cpu: process CPU time / threads, i.e. uncontended 2-core wall time when others share the machine")
    a("--warmup", type=float, default=0.15, help="fraction of training spent warming up linearly")
    a("--schedule", choices=["linear", "cos"], default="linear", help="decay shape after warmup, to 0")
    a("--ls", type=float, default=0.1, help="label smoothing")
    a("--augment", default="flip+crop", help="build_augment spec")
    a("--aug-off", type=float, default=1.0, help="progress after which augmentation is switched off")
    a("--low-res", type=int, default=0, help="progressive resizing: train at this side length (0 = off) ...")
    a("--low-until", type=float, default=0.5, help="... until this fraction of progress, then at full size")
    a("--ema", type=float, default=0.0, help="EMA decay per update (0 = off)")
    a("--ema-every", type=int, default=5, help="steps between EMA updates")
    # execution
    a("--threads", type=int, default=2)
    a("--interop", type=int, default=1)
    a("--channels-last", type=int, default=1)
    a("--compile", type=int, default=0)
    a("--eval-every", type=float, default=1.0, help="epochs between test evaluations (0 = only at the end)")
    a("--seed", type=int, default=0)
    a("--tag", default="")
    return p.parse_args(argv)


def lr_at(progress: float, args) -> float:
    """Peak-normalised lr: linear warmup over `warmup`, then linear or cosine decay to 0 at progress 1."""
    if progress < args.warmup:
        return progress / args.warmup
    q = (progress - args.warmup) / max(1e-8, 1 - args.warmup)
    return max(0.0, 1 - q) if args.schedule == "linear" else 0.5 * (1 + math.cos(math.pi * min(1.0, q)))


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cl: bool, tta: bool = True,
             bs: int = 1000) -> dict:
    """Accuracy without and with flip test-time augmentation (mean of softmax over x and its mirror)."""
    model.eval()
    hit = hit_tta = 0
    t0 = time.perf_counter()
    for i in range(0, len(x), bs):
        xb, yb = x[i:i + bs], y[i:i + bs]
        xb = xb.contiguous(memory_format=torch.channels_last) if cl else xb
        p = model(xb).softmax(1)
        hit += (p.argmax(1) == yb).sum().item()
        if tta:
            hit_tta += ((p + model(xb.flip(-1)).softmax(1)).argmax(1) == yb).sum().item()
    dt = time.perf_counter() - t0
    model.train()
    return {"acc": hit / len(x), "acc_tta": hit_tta / len(x) if tta else None,
            "infer_ips": (1 + tta) * len(x) / dt}


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.interop)
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)

    xtr, ytr = load_dataset("fashion-mnist", "train").tensors()  # (60000, 1, 28, 28) in [0, 1]
    xte, yte = load_dataset("fashion-mnist", "test").tensors()
    cfg = CNNConfig(in_channels=1, num_classes=10, stem_width=args.stem_width, widths=args.widths,
                    blocks=args.blocks, dropout=args.dropout, logit_scale=args.logit_scale)
    model = build_cnn(cfg)
    cl = bool(args.channels_last)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    params = sum(p.numel() for p in model.parameters())
    ema = copy.deepcopy(model).eval() if args.ema > 0 else None
    net = torch.compile(model) if args.compile else model

    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]  # BN affine: no weight decay
    groups = [{"params": decay, "weight_decay": args.wd}, {"params": no_decay, "weight_decay": 0.0}]
    if args.opt == "sgd":
        opt = torch.optim.SGD(groups, lr=args.lr, momentum=args.momentum, nesterov=True)
    else:
        opt = torch.optim.AdamW(groups, lr=args.lr, betas=(args.momentum, 0.999))
    augment = build_augment(args.augment)

    n = len(xtr)
    steps_per_epoch = n // args.bs
    total_steps = int(args.epochs * steps_per_epoch)
    eval_every = max(1, int(args.eval_every * steps_per_epoch)) if args.eval_every > 0 else None
    train_s = train_cpu_s = eval_s = 0.0
    step, curve, t93 = 0, [], None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    perm = torch.randperm(n, generator=g)
    pos = 0
    while True:
        used = train_s if args.clock == "wall" else train_cpu_s
        progress = max(step / total_steps, used / args.budget)
        if progress >= 1:
            break
        t0, c0 = time.perf_counter(), time.process_time()
        for group in opt.param_groups:
            group["lr"] = args.lr * lr_at(progress, args)
        if pos + args.bs > n:
            perm, pos = torch.randperm(n, generator=g), 0
        idx = perm[pos:pos + args.bs]
        pos += args.bs
        xb, yb = xtr[idx], ytr[idx]
        if progress < args.aug_off:
            xb = augment(xb, g)
        if args.low_res and progress < args.low_until:
            xb = F.interpolate(xb, size=(args.low_res, args.low_res), mode="bilinear", antialias=True)
        if cl:
            xb = xb.contiguous(memory_format=torch.channels_last)
        loss = F.cross_entropy(net(xb), yb, label_smoothing=args.ls)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if ema is not None and step % args.ema_every == 0:
            # warm start: a short run cannot wait ~1/(1-decay) updates for the average to forget the init
            d = min(args.ema, (1 + step / args.ema_every) / (10 + step / args.ema_every))
            with torch.no_grad():
                for e, m in zip(ema.state_dict().values(), model.state_dict().values()):
                    e.lerp_(m, 1 - d) if e.dtype.is_floating_point else e.copy_(m)
        train_s += time.perf_counter() - t0
        train_cpu_s += (time.process_time() - c0) / args.threads
        if not math.isfinite(loss.item()):
            raise SystemExit(f"loss diverged at step {step}")
        if eval_every and step % eval_every == 0:
            t0 = time.perf_counter()
            r = evaluate(model, xte, yte, cl, tta=False)  # curve: plain accuracy, half the cost
            eval_s += time.perf_counter() - t0
            curve.append((round(step / steps_per_epoch, 2), round(train_s), round(train_cpu_s), r["acc"]))
            if t93 is None and r["acc"] >= 0.93:
                t93 = (round(train_s, 1), round(train_cpu_s, 1))
            print(f"# ep {step / steps_per_epoch:.2f} t {train_s:.0f}s loss {loss.item():.3f} "
                  f"acc {r['acc']:.4f}", file=sys.stderr, flush=True)
    cpu_util = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    final = evaluate(model, xte, yte, cl)
    out = {
        "tag": args.tag, "acc": final["acc"], "acc_tta": final["acc_tta"],
        "time_to_93_s": t93, "train_s": round(train_s, 1), "train_cpu_s": round(train_cpu_s, 1),
        "eval_s": round(eval_s, 1),
        "epochs": round(step / steps_per_epoch, 2), "train_ips": round(step * args.bs / train_s),
        "train_ips_cpu": round(step * args.bs / train_cpu_s),
        "infer_ips": round(final["infer_ips"]), "params": params, "cpu_util": round(cpu_util, 2),
    }
    if ema is not None:
        r = evaluate(ema, xte, yte, cl)
        out.update(ema_acc=r["acc"], ema_acc_tta=r["acc_tta"])
    out["curve"] = curve
    out["args"] = {k: v for k, v in vars(args).items()}
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main()
