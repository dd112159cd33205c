"""The web UI of `recgen serve`: a Gradio app mounted at /ui on the REST app, one tab per task word.

Each tab calls what its REST route calls (the app's `locate` and cached `loaded`, then the task's own
predict / sample / restore_files), so the page and the API cannot disagree. A user mistake (RecgenError, or
the route helpers' HTTPException) comes back as a one-line gr.Error; each click first clears the previous
result, so a failed request never leaves an old image under a new question. Everything is served from the
machine: no analytics, fonts and scripts from gradio's own package.
"""

from __future__ import annotations

import html
import json
import os
import re
import tempfile
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException
from PIL import Image

from recgen.errors import RecgenError

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # read when gradio is imported: no telemetry calls

PATH = "/ui"
N_EXAMPLES = 4
CSS = """
.pixelated img {image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain}
.pixel-gallery img {image-rendering: pixelated}
#recgen-title h1 {margin-bottom: 0} #recgen-title p {margin-top: .2em; opacity: .75}
"""


def mount_ui(app: FastAPI, locate: Callable[[str], Path], loaded: Callable[[str, str], Any],
             list_runs: Callable[[], list[dict]]) -> FastAPI:
    """Mount the UI at /ui on `app`, with the REST app's own run lookup, model cache and run listing."""
    import gradio as gr

    with tempfile.TemporaryDirectory(prefix="recgen-ui-") as tmp:  # gradio copies examples into its cache
        blocks = build(app.state.root, locate, loaded, list_runs, ExampleImages(Path(tmp), app.state.root,
                                                                                list_runs()))
    # root_path: the examples' file URLs are made before any request says where the app is mounted
    return gr.mount_gradio_app(app, blocks, path=PATH, footer_links=[], run_history=False, show_error=True,
                               root_path=PATH,
                               theme=gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"],
                                                    font_mono=["ui-monospace", "monospace"]),
                               css=CSS, mcp_server=False, ssr_mode=False, pwa=False)


def user_errors(fn: Callable) -> Callable:
    """A user mistake -> gr.Error with its one-line message (shown as text in the page, no traceback)."""
    import gradio as gr

    @wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RecgenError as e:
            raise gr.Error(str(e), print_exception=False) from None
        except HTTPException as e:
            raise gr.Error(str(e.detail), print_exception=False) from None
    return wrapped


def build(root: Path, locate: Callable[[str], Path], loaded: Callable[[str, str], Any],
          list_runs: Callable[[], list[dict]], examples: ExampleImages):
    import gradio as gr

    def runs_for(*tasks: str, diffusion: bool = False) -> list[str]:
        """The runs of these tasks, then (restore) the diffusion generators that can restore too."""
        rows = list_runs()
        return [r["run"] for r in rows if r["task"] in tasks] + \
            [r["run"] for r in rows if diffusion and r["task"] == "generate" and r["model"] == "diffusion"]

    with gr.Blocks(title="recgen", analytics_enabled=False) as blocks:
        gr.Markdown("# recgen\nRecognise, generate, restore and detect images with the runs under "
                    f"`{html.escape(root.name)}/`. The REST API and its docs are at [/docs](/docs).",
                    elem_id="recgen-title")
        pickers = {}
        with gr.Tab("Classify", id="classify"):
            pickers["classify"] = classify_tab(locate, loaded, examples)
        with gr.Tab("Generate", id="generate"):
            classes = class_examples(runs_for("generate"), locate, loaded)
            pickers["generate"] = generate_tab(locate, loaded, classes)
        with gr.Tab("Restore", id="restore"):
            pickers["restore"] = restore_tab(locate, loaded, examples)
        with gr.Tab("Detect", id="detect"):
            pickers["detect"] = detect_tab(locate, loaded, examples)
        with gr.Tab("Runs", id="runs"):
            pickers["all"] = runs_tab(locate, list_runs)

        def refresh():
            """Runs trained since the server started appear on reload."""
            lists = {"classify": runs_for("classify"), "generate": runs_for("generate"),
                     "restore": runs_for("restore", diffusion=True), "detect": runs_for("detect"),
                     "all": [r["run"] for r in list_runs()]}
            return [gr.Dropdown(choices=lists[k], value=lists[k][0] if lists[k] else None) for k in pickers]

        blocks.load(refresh, None, list(pickers.values()))
    return blocks


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


# --------------------------------------------------------------------------------------------------- classify
def classify_tab(locate, loaded, examples):
    import gradio as gr

    with gr.Row():
        run = run_picker("classify")
        topk = gr.Slider(1, 10, value=3, step=1, label="top-k")
    with gr.Row(equal_height=True):
        with gr.Column():
            editor = gr.ImageEditor(label="image: upload, paste, or draw with the brush", type="numpy",
                                    image_mode="RGB", sources=["upload", "clipboard"], canvas_size=(280, 280),
                                    brush=gr.Brush(colors=["#ffffff", "#000000", "#808080"], default_size=18),
                                    value=blank(280), layers=False, height=360, elem_id="classify-input")
            go = gr.Button("Classify", variant="primary", elem_id="classify-go")
        with gr.Column():
            label = gr.Label(label="top-k classes", elem_id="classify-label")
            with gr.Row():
                original = gr.Image(label="model input", elem_classes="pixelated", height=200,
                                    interactive=False, elem_id="classify-original")
                cam = gr.Image(label="Grad-CAM", elem_classes="pixelated",
                               height=200, interactive=False, elem_id="classify-cam")
    examples.show("classify", editor)

    @user_errors
    def predict(run_name, value, k):
        image = editor_image(value)
        clf = loaded("classify", str(locate(run_name or "")))
        x = clf.prepare(image[None])
        explain = clf.config.model == "cnn"  # Grad-CAM needs the network's gradients
        with tempfile.TemporaryDirectory() as tmp:
            res = clf.predict(x, topk=int(k), explain=explain, out=tmp)[0]
            overlay = np.asarray(Image.open(res["explanation"]).convert("RGB")) if explain else None
        top = {t["class"]: t["probability"] for t in res["top"]}
        return top, x[0, ..., 0] if x.shape[-1] == 1 else x[0], overlay

    busy(go, [label, original, cam], predict, [run, editor, topk], [label, original, cam])
    return run


# --------------------------------------------------------------------------------------------------- generate
def class_examples(runs: list[str], locate, loaded) -> list[str]:
    """A few class names of the first generator run, to click as examples."""
    try:
        return list(loaded("generate", str(locate(runs[0]))).classes[:N_EXAMPLES]) if runs else []
    except (RecgenError, HTTPException):
        return []


def generate_tab(locate, loaded, classes: list[str]):
    import gradio as gr

    from recgen.generate.diffusion import SAMPLERS

    with gr.Row():
        run = run_picker("generate")
        about = gr.Markdown(elem_id="generate-about")
    with gr.Row():
        with gr.Column(scale=1):
            class_ = gr.Dropdown(label="class", choices=[""] + classes, value="", allow_custom_value=True,
                                 elem_id="generate-class",
                                 info="empty: the classes in turn (class-conditional runs)")
            prompt = gr.Textbox(label="prompt", placeholder="a pair of running shoes",
                                info="free text (text-conditional runs)")
            with gr.Row():
                sampler = gr.Dropdown(label="sampler", choices=list(SAMPLERS), value=None, info="diffusion")
                steps = gr.Slider(1, 1000, value=20, step=1, label="steps", info="diffusion",
                                  elem_id="generate-steps")
            with gr.Row():
                guidance = gr.Slider(0, 10, value=2.0, step=0.25, label="guidance",
                                     info="classifier-free; 1 = none")
                seed = gr.Number(value=0, precision=0, minimum=0, label="seed")
            n = gr.Slider(1, 64, value=16, step=1, label="images")
            go = gr.Button("Sample", variant="primary", elem_id="generate-go")
            if classes:
                gr.Examples([[c, i] for i, c in enumerate(classes)], [class_, seed],
                            label="examples (click one: class, seed)")
        with gr.Column(scale=2):
            gallery = gr.Gallery(label="samples", columns=6, height="auto", object_fit="contain",
                                 elem_classes="pixel-gallery", elem_id="generate-gallery")

    @user_errors
    def describe(run_name):
        if not run_name:
            return "", gr.Dropdown(choices=[]), gr.Dropdown(), gr.Slider(), gr.Slider()
        gen = loaded("generate", str(locate(run_name)))
        diffusion = gen.family == "diffusion"
        cond = gen.arch.cond
        text = f"**{gen.family}**, {'unconditional' if cond == 'none' else cond + '-conditional'}, " \
               f"{'x'.join(map(str, gen.input_shape[1:]))} pixels"
        return (text, gr.Dropdown(choices=[""] + list(gen.classes), value="", interactive=cond != "none"),
                gr.Dropdown(value=gen.config.sampler if diffusion else None, interactive=diffusion),
                gr.Slider(value=gen.config.steps if diffusion else 20, interactive=diffusion),
                gr.Slider(value=gen.config.guidance if gen.guided else 1.0, interactive=gen.guided))

    run.change(describe, run, [about, class_, sampler, steps, guidance])

    @user_errors
    def sample(run_name, cls, text, smp, k, g, s, count, progress=gr.Progress()):
        gen = loaded("generate", str(locate(run_name or "")))
        diffusion = gen.family == "diffusion"
        calls = {"diffusion": int(k), "pixelcnn": int(np.prod(gen.input_shape[1:]))}.get(gen.family)
        with network_progress(gen, calls, progress):
            x, y = gen.sample(int(count), class_=cls or None, prompt=text or None, seed=int(s or 0),
                              sampler=smp if diffusion else None, steps=int(k) if diffusion else None,
                              guidance=float(g) if gen.guided else None)
        images = [im[..., 0] if im.shape[-1] == 1 else im for im in x]
        names = [None] * len(images) if y is None else [gen.classes[int(c)] for c in y]
        return list(zip(images, names))

    busy(go, [gallery], sample, [run, class_, prompt, sampler, steps, guidance, seed, n], [gallery])
    return run


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


# ---------------------------------------------------------------------------------------------------- restore
def restore_tab(locate, loaded, examples):
    import gradio as gr

    with gr.Row():
        run = run_picker("restore")
        task = gr.Radio(["inpaint", "denoise", "superres"], value="inpaint", label="task")
    with gr.Row():
        with gr.Column():
            editor = gr.ImageEditor(label="photo (inpaint: paint the hole)",
                                    type="numpy", sources=["upload", "clipboard"], height=380,
                                    brush=gr.Brush(colors=["#ff00ff"], default_size=6, color_mode="fixed"),
                                    layers=False, transforms=(), elem_id="restore-input")
            with gr.Accordion("options", open=False):
                with gr.Row():
                    mask_kind = gr.Dropdown(["box", "strokes"], value="box",
                                            label="mask when none is painted")
                    ratio = gr.Slider(0.05, 0.9, value=0.25, step=0.05, label="masked fraction")
                with gr.Row():
                    sigma = gr.Slider(0, 1, value=0, step=0.05, label="noise std (denoise; 0 = estimate)")
                    scale = gr.Slider(2, 4, value=2, step=1, label="scale (superres)")
                simulate = gr.Checkbox(label="the photo is clean: corrupt it first, then score the result")
            go = gr.Button("Restore", variant="primary", elem_id="restore-go")
        with gr.Column():
            slider = gr.ImageSlider(label="before / after", type="numpy", elem_classes="pixelated",
                                    elem_id="restore-slider")
            others = gr.Gallery(label="recgen and the classical baselines", columns=4, height="auto",
                                elem_classes="pixel-gallery", elem_id="restore-gallery")
            scores = gr.Dataframe(label="scores (PSNR / SSIM where the truth is known)",
                                  elem_id="restore-table")
    examples.show("restore", editor)

    @user_errors
    def restore(run_name, value, t, kind, r, sg, sc, sim):
        from recgen.restore.files import restore_files

        photo, mask = editor_image(value, keep_layers=True)
        model = loaded("restore", str(locate(run_name or "")))
        with tempfile.TemporaryDirectory() as tmp:
            Image.fromarray(photo).save(Path(tmp) / "photo.png")
            mask_path = None
            if t == "inpaint" and mask is not None:
                mask_path = str(Path(tmp) / "mask.png")
                Image.fromarray(mask).save(mask_path)
            try:
                s = restore_files(model, t, [str(Path(tmp) / "photo.png")], Path(tmp) / "out", mask=mask_path,
                                  mask_kind=kind, ratio=float(r), sigma=float(sg), scale=int(sc),
                                  simulate=bool(sim), seed=0)
            except RecgenError as e:
                raise RecgenError(str(e).replace(f"{tmp}/", "")) from None
            outs = {m: np.asarray(Image.open(paths[0])) for m, paths in s["images"].items()}
        before = value["composite"][..., :3] if mask is not None else photo
        table = [{"method": k, **{m: v for m, v in s["per_image"][0].items() if m.startswith(k + "_")}}
                 for k in outs] if any(k.endswith("_psnr") for k in s["per_image"][0]) else \
            [{"method": k} for k in outs]
        import pandas as pd

        return (before, outs["recgen"]), [(v, k) for k, v in outs.items()], pd.DataFrame(table)

    busy(go, [slider, others, scores], restore, [run, editor, task, mask_kind, ratio, sigma, scale, simulate],
         [slider, others, scores])
    return run


# ----------------------------------------------------------------------------------------------------- detect
def detect_tab(locate, loaded, examples):
    import gradio as gr

    with gr.Row():
        run = run_picker("detect")
        min_score = gr.Slider(0, 1, value=0.3, step=0.05, label="minimum score", elem_id="detect-min-score")
    with gr.Row():
        with gr.Column():
            image = gr.Image(label="image", type="numpy", sources=["upload", "clipboard"], height=360,
                             elem_classes="pixelated",
                             elem_id="detect-input")
            go = gr.Button("Detect", variant="primary", elem_id="detect-go")
        with gr.Column():
            drawn = gr.Image(label="detections", interactive=False, height=360, elem_classes="pixelated",
                             elem_id="detect-drawn")
    boxes = gr.Dataframe(headers=["class", "score", "x1", "y1", "x2", "y2"], label="boxes (input pixels)",
                         elem_id="detect-table")
    examples.show("detect", image)

    @user_errors
    def detect(run_name, im, score):
        if im is None:
            raise RecgenError("no image: upload one first")
        detector = loaded("detect", str(locate(run_name or "")))
        with tempfile.TemporaryDirectory() as tmp:
            res = detector.predict(im[None], min_score=float(score), out=tmp)[0]
            pic = np.asarray(Image.open(res["drawing"]).convert("RGB"))
        rows = [[d["class"], d["score"], *d["box"]] for d in res["detections"]]
        return pic, rows or None

    busy(go, [drawn, boxes], detect, [run, image, min_score], [drawn, boxes])
    return run


# ------------------------------------------------------------------------------------------------------- runs
def runs_tab(locate, list_runs):
    import gradio as gr

    with gr.Row():
        run = run_picker("runs")
    with gr.Row():
        with gr.Column(scale=1):
            card = gr.Dataframe(headers=["metric", "value"], label="metric card", elem_id="runs-card",
                                wrap=True)
        with gr.Column(scale=2):
            report = gr.HTML(elem_id="runs-report")

    @user_errors
    def show(run_name):
        if not run_name:
            return None, ""
        path = locate(run_name)
        rows = metric_card(path)
        page = path / "report.html"
        body = inline_images(page.read_text(), path) if page.is_file() else \
            "<p>no report.html yet (the run has not been evaluated)</p>"
        frame = (f'<iframe title="report" srcdoc="{html.escape(body)}" '
                 'style="width:100%;height:640px;border:1px solid #ddd;border-radius:8px"></iframe>')
        return rows or None, frame

    run.change(show, run, [card, report])
    return run


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


# ---------------------------------------------------------------------------------------------------- helpers
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
