"""`recgen export RUN --format onnx`: a classifier CNN as an ONNX graph (images in [0, 1] -> class probabilities),
checked against PyTorch on real images with onnxruntime before the file is kept."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from recgen.errors import RecgenError
from recgen.runs import mkstemp_readable

FORMATS = ("onnx",)


def export(run_path: str, format: str = "onnx", out: str | None = None, tolerance: float = 1e-4) -> dict:
    from recgen import classify
    from recgen.classify.api import load_splits

    if format not in FORMATS:
        raise RecgenError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    run = classify.load(run_path)
    if run.config.model != "cnn":
        raise RecgenError(f"{run_path}: only CNN runs export to ONNX (this one is {run.config.model}; "
                          "its skops file is already portable)")
    net = nn.Sequential(run.model, nn.Softmax(dim=1)).cpu().eval()
    c, h, w = run.input_shape
    dest = Path(out) if out else run.path / "model.onnx"
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = mkstemp_readable(dest.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
            # The TorchScript-based exporter needs no extra packages; the dynamo one would need onnxscript.
            torch.onnx.export(net, (torch.rand(2, c, h, w),), tmp, dynamo=False, input_names=["images"],
                              output_names=["probabilities"], opset_version=17,
                              dynamic_axes={"images": {0: "batch"}, "probabilities": {0: "batch"}})
        # parity on real images from the run's own evaluation data
        _, val, test = load_splits(run.config)
        data = test if test is not None else val
        x = run.prepare(data.x[:256]) if data is not None else np.random.default_rng(0).integers(0, 255, (64, h, w, c))
        xt = torch.from_numpy(np.asarray(x, np.uint8)).permute(0, 3, 1, 2).float().div(255)
        import onnxruntime as ort

        sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        got = sess.run(None, {"images": xt.numpy()})[0]
        with torch.no_grad():
            want = net(xt).numpy()
        diff = float(np.abs(got - want).max())
        agree = float((got.argmax(1) == want.argmax(1)).mean())
        if diff > tolerance:
            raise RecgenError(f"ONNX parity check failed: max |onnx - torch| = {diff:.2e} > {tolerance:.0e}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    info = {"onnx": str(dest), "input": f"images float32 (N, {c}, {h}, {w}) in [0, 1]",
            "output": f"probabilities (N, {len(run.classes)})", "classes": run.classes,
            "parity_max_abs_diff": diff, "parity_top1_agreement": agree, "parity_images": len(xt)}
    (dest.with_suffix(".json")).write_text(json.dumps(info, indent=2))
    return info
