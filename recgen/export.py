"""`recgen export RUN --format onnx`: a trained network as an ONNX graph, checked against PyTorch on real images with
onnxruntime before the file is kept.

- classify (CNN): images in [0, 1] -> class probabilities.
- detect (CenterNet): square images in [0, 1] at the run's canvas -> the top 100 boxes (xyxy, input pixels), scores
  and labels, best first, decoding included (`recgen.detect.centernet.decode_dense`); keep those scoring >= the
  run's score threshold, as `recgen detect predict` does (which also letterboxes images of other sizes).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

from recgen.errors import RecgenError
from recgen.progress import Progress
from recgen.runs import Run, atomic_write, mkstemp_readable, output_file

FORMATS = ("onnx",)


@dataclass
class Graph:
    """What one task exports: the network (inputs in, final outputs out), its names, the images the parity check
    runs on, how to compare ONNX and PyTorch outputs (-> figures for the info file, and the worst error), and what
    the info file says about inputs and outputs."""

    net: nn.Module
    inputs: list[str]
    outputs: list[str]
    images: torch.Tensor
    compare: Callable[[list[np.ndarray], list[np.ndarray]], tuple[dict, float]]
    info: dict = field(default_factory=dict)


def export(run_path: str, format: str = "onnx", out: str | None = None, tolerance: float = 1e-4) -> dict:
    if format not in FORMATS:
        raise RecgenError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    task = Run.open(run_path).config.get("task")
    if task not in GRAPHS:
        raise RecgenError(f"{run_path}: a {task!r} run; recgen export takes a {' or '.join(GRAPHS)} run")
    with Progress(f"export: loading {task} run {run_path} and its parity images"):
        g = GRAPHS[task](run_path)
    dest = output_file(out or run_path, "model.onnx")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = mkstemp_readable(dest.parent, suffix=".onnx.tmp")
    except OSError as e:
        raise RecgenError(f"{dest}: cannot write here ({e.strerror})") from None
    os.close(fd)
    try:
        net = g.net.cpu().eval()
        with Progress("export: tracing the network to ONNX"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
            # The TorchScript-based exporter needs no extra packages; the dynamo one would need onnxscript.
            torch.onnx.export(net, (g.images[:2],), tmp, dynamo=False, input_names=g.inputs, output_names=g.outputs,
                              opset_version=17, dynamic_axes={k: {0: "batch"} for k in g.inputs + g.outputs})
        import onnxruntime as ort

        with Progress(f"export: parity check, onnxruntime vs PyTorch on {len(g.images)} images"):
            sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
            got = sess.run(None, {g.inputs[0]: g.images.numpy()})
            with torch.no_grad():
                want = net(g.images)
        want = [t.numpy() for t in (want if isinstance(want, tuple) else (want,))]
        figures, worst = g.compare(got, want)
        if worst > tolerance:
            raise RecgenError(f"ONNX parity check failed: max |onnx - torch| = {worst:.2e} > {tolerance:.0e}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    info = {"onnx": str(dest), "task": task, **g.info, **figures, "parity_images": len(g.images)}
    # beside the graph as model.onnx.json: with_suffix(".json") was RUN/model.json, the run's own description
    atomic_write(dest.with_name(dest.name + ".json"), json.dumps(info, indent=2))
    return info


def _as_float(x: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float (N, C, H, W) in [0, 1]."""
    return torch.from_numpy(np.asarray(x, np.uint8)).permute(0, 3, 1, 2).float().div(255)


def _classifier(path: str) -> Graph:
    from recgen import classify
    from recgen.data.splits import load_splits

    run = classify.load(path)
    if run.config.model != "cnn":
        raise RecgenError(f"{path}: only CNN runs export to ONNX (this one is {run.config.model}; "
                          "its skops file is already portable)")
    c, h, w = run.input_shape
    _, val, test = load_splits(run.config)  # parity on real images from the run's own evaluation data
    data = test if test is not None else val
    x = run.prepare(data.x[:256]) if data is not None else np.random.default_rng(0).integers(0, 255, (64, h, w, c))

    def compare(got, want):
        diff = float(np.abs(got[0] - want[0]).max())
        agree = float((got[0].argmax(1) == want[0].argmax(1)).mean())
        return {"parity_max_abs_diff": diff, "parity_top1_agreement": agree}, diff

    return Graph(nn.Sequential(run.model, nn.Softmax(dim=1)), ["images"], ["probabilities"], _as_float(x), compare,
                 {"input": f"images float32 (N, {c}, {h}, {w}) in [0, 1]",
                  "output": f"probabilities (N, {len(run.classes)})", "classes": run.classes})


class _DecodedCenterNet(nn.Module):
    def __init__(self, net: nn.Module, top_k: int):
        super().__init__()
        self.net, self.top_k = net, top_k

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from recgen.detect.centernet import decode_dense

        return decode_dense(*self.net(x), self.net.cfg.stride, self.top_k)


def _detector(path: str) -> Graph:
    from recgen import detect

    run = detect.load(path)
    if run.info["family"] != "centernet":
        raise RecgenError(f"{path}: only CenterNet detectors export to ONNX (this one is {run.info['family']})")
    c, s, _ = run.input_shape
    top_k, threshold = run.config.max_detections, run.config.score_threshold
    try:
        x = run.held_out().images[:64]
    except RecgenError:  # no held-out scenes (or their data is gone): random images still test the graph
        x = np.random.default_rng(0).integers(0, 255, (16, s, s, c))

    def compare(got, want):
        (gb, gs, gl), (wb, ws, wl) = got, want
        # Detections are compared as sets, not by rank: equal scores come in any order (on a flat heat map
        # untrained nets score blank regions alike, and rounding can hand a tied peak to the neighbouring cell).
        # Each detection a user keeps is matched to the ONNX one of its label, at most a cell (stride) away and
        # closest in score; those at the top-k cut are skipped, as either side may keep another of the tied ones.
        stride = run.model.cfg.stride
        score_diff, exact, n, matched = 0.0, 0, 0, 0
        for i, j in zip(*np.nonzero((ws >= threshold) & (ws > 0))):
            if ws[i, j] <= gs[i, -1] + 1e-4:
                continue
            n += 1
            box = np.abs(gb[i] - wb[i, j]).max(1)
            near = (gl[i] == wl[i, j]) & (box <= stride + 1e-2)
            if near.any():
                k = np.flatnonzero(near)[np.abs(gs[i][near] - ws[i, j]).argmin()]
                matched, exact = matched + 1, exact + int(box[k] <= 1e-2)
                score_diff = max(score_diff, float(abs(gs[i, k] - ws[i, j])))
        agree = matched / n if n else 1.0
        return ({"parity_max_abs_diff": score_diff, "parity_detection_agreement": agree,
                 "parity_exact_box_share": exact / matched if matched else 1.0, "parity_detections": n},
                max(score_diff, 1.0 - agree))

    return Graph(_DecodedCenterNet(run.model, top_k), ["images"], ["boxes", "scores", "labels"], _as_float(x),
                 compare, {"input": f"images float32 (N, {c}, {s}, {s}) in [0, 1] (letterbox other sizes)",
                           "output": f"boxes (N, {top_k}, 4) xyxy in input pixels, scores (N, {top_k}), labels (N, "
                                     f"{top_k}) int64 into classes; best first: keep scores >= {threshold}",
                           "classes": run.classes, "category_ids": run.category_ids, "score_threshold": threshold})


GRAPHS: dict[str, Callable[[str], Graph]] = {"classify": _classifier, "detect": _detector}  # by run task
