"""Pieces of the web UI (recgen/serve/ui.py): error and busy handling, run pickers, sampling progress, the
editor's image and mask, example images, and the Runs tab's metric card and report."""

from __future__ import annotations

import html
import json
import re
import warnings
from collections.abc import Callable
from functools import wraps
from pathlib import Path

import numpy as np
from fastapi import HTTPException
from PIL import Image

from recgen.errors import RecgenError
from recgen.sanity import RecgenWarning

N_EXAMPLES = 4  # example images (or classes) offered per tab

def user_errors(fn: Callable) -> Callable:
    """A user mistake -> gr.Error with its one-line message (shown as text in the page, no traceback); each
    RecgenWarning on the way (a prompt far from every class, an input unlike the training images) -> gr.Warning,
    the page's notice, since the command line's `warning:` line has no reader here."""
    import gradio as gr

    @wraps(fn)
    def wrapped(*args, **kwargs):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always", RecgenWarning)
            try:
                out = fn(*args, **kwargs)
            except RecgenError as e:
                raise gr.Error(str(e), print_exception=False) from None
            except HTTPException as e:
                raise gr.Error(str(e.detail), print_exception=False) from None
        for w in rec:
            if issubclass(w.category, RecgenWarning):
                gr.Warning(str(w.message))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return out
    return wrapped


def run_picker(tab: str):
    import gradio as gr

    return gr.Dropdown(label="run", choices=[], allow_custom_value=False, scale=2, elem_id=f"{tab}-run",
                       info="a run folder under the server's runs root")


def busy(button, clear: list, fn: Callable, inputs: list, outputs: list, **kw):
    """Click -> clear the old results, grey the button, run `fn`, give the button back (also on error)."""
    import gradio as gr

    def ready():
        return gr.Button(interactive=True, value=label)

    label = button.value
    job = button.click(lambda: [gr.Button(interactive=False, value="working…")] + [None] * len(clear), None,
                       [button] + clear, queue=False).then(fn, inputs, outputs, **kw)
    job.success(ready, None, button, queue=False)
    job.failure(ready, None, button, queue=False)


class network_progress:
    """Progress while sampling, without touching the samplers: count the forward calls of the run's networks
    (one per diffusion step, one per pixel for PixelCNN) against the number expected."""

    def __init__(self, gen, expected: int | None, progress):
        self.gen, self.expected, self.progress, self.calls, self.hooks = gen, expected, progress, 0, []

    def __enter__(self):
        self.progress(0, desc="sampling")
        if self.expected:
            for m in self.gen.modules.values():
                self.hooks.append(m.register_forward_hook(self._step))
        return self

    def _step(self, *_):
        self.calls += 1
        self.progress(min(self.calls / self.expected, 0.99), desc=f"sampling: step {self.calls}")

    def __exit__(self, *exc):
        for h in self.hooks:
            h.remove()


def metric_card(path: Path) -> list[list[str]]:
    """The run's headline figures: the scalars of each eval*.json (named by file when there are several), then
    the judge's metric card where one was written; server paths left out."""
    files = sorted(path.glob("eval*.json"))
    rows = []
    for f in files:
        try:
            doc = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        head = f"{f.stem.removeprefix('eval-')}: " if len(files) > 1 else ""
        rows += [[head + k, f"{v:.4g}" if isinstance(v, float) else str(v)] for k, v in doc.items()
                 if isinstance(v, (int, float, str)) and k != "run"]
        rows += [[f"card: {k}", str(v)] for k, v in (doc.get("card") or {}).items() if "/" not in str(v)]
    return rows


def inline_images(page: str, run: Path) -> str:
    """report.html with its run-relative <img> sources inlined, so it renders inside the UI's frame."""
    import base64

    def data_uri(m: re.Match) -> str:
        p = (run / html.unescape(m.group(1))).resolve()
        if run.resolve() not in p.parents or not p.is_file():
            return m.group(0)
        return f'src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}"'
    return re.sub(r'src="([^":]+)"', data_uri, page)


def blank(side: int) -> np.ndarray:
    """A black canvas: the datasets draw light objects on a dark ground."""
    return np.zeros((side, side, 3), np.uint8)


def editor_image(value: dict | None, keep_layers: bool = False):
    """An ImageEditor value -> uint8 image (H, W, C); with `keep_layers` -> (background, white-on-black mask
    of the painted pixels, None when nothing is painted)."""
    image = None if value is None else (value.get("background") if keep_layers else value.get("composite"))
    if image is None or not np.asarray(image).size:
        raise RecgenError("no image: upload one (or draw on the canvas) first")
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    if not keep_layers:
        return image
    painted = [np.asarray(layer)[..., 3] > 0 for layer in value.get("layers") or []
               if layer is not None and np.asarray(layer).ndim == 3 and np.asarray(layer).shape[-1] == 4]
    mask = np.any(painted, axis=0) if painted else None
    if mask is not None and not mask.any():
        mask = None
    return image, None if mask is None else (mask * 255).astype(np.uint8)


class ExampleImages:
    """A few test images of the data the served runs were trained on, written once as PNGs to click on."""

    def __init__(self, folder: Path, root: Path, runs: list[dict]):
        self.folder = folder
        self.by_task: dict[str, list[str]] = {}
        for task in ("classify", "restore", "detect"):
            for r in runs:
                if r["task"] != task or not r["data"]:
                    continue
                try:
                    images = self._images(task, root / r["run"], r["data"])
                except (RecgenError, OSError, ValueError):
                    continue  # a run on data this machine lacks: no examples from it
                self.by_task[task] = [self._write(f"{task}-{i}", im) for i, im in enumerate(images)]
                break

    @staticmethod
    def _images(task: str, run: Path, data: str) -> list[np.ndarray]:
        if task == "detect":  # the detector's own held-out scenes
            from recgen import detect
            from recgen.detect.api import load_test

            test = load_test(detect.load(run).config)
            return [] if test is None else list(test.images[:N_EXAMPLES])
        from recgen.data import load_dataset

        test = load_dataset(data, "test")
        first = [int(np.flatnonzero(test.y == c)[0]) for c in np.unique(test.y)[:N_EXAMPLES]]
        return [test.x[i] for i in first]

    def _write(self, name: str, im: np.ndarray) -> str:
        path = self.folder / f"{name}.png"
        Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(path)
        return str(path)

    def show(self, task: str, component) -> None:
        import gradio as gr

        paths = self.by_task.get(task)
        if not paths:
            return
        target = component
        if isinstance(component, gr.ImageEditor):  # an example lands in a hidden image, then on the canvas
            target = gr.Image(type="numpy", visible="hidden")
            target.change(lambda im: None if im is None else
                          {"background": im, "layers": [], "composite": im}, target, component)
        gr.Examples([[p] for p in paths], [target], label="examples (click one)")
