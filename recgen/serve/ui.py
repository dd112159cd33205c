"""The web UI of `recgen serve`: a Gradio app mounted at /ui on the REST app, one tab per task word.

Each tab calls what its REST route calls (the app's `locate` and cached `loaded`, then the task's own
predict / sample / restore_files), so the page and the API cannot disagree. A user mistake (RecgenError, or
the route helpers' HTTPException) comes back as a one-line gr.Error; each click first clears the previous
result, so a failed request never leaves an old image under a new question. Everything is served from the
machine: no analytics, fonts and scripts from gradio's own package.
"""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException
from PIL import Image

from recgen.errors import RecgenError
from recgen.serve.ui_parts import (
    N_EXAMPLES,
    ExampleImages,
    blank,
    busy,
    editor_image,
    inline_images,
    metric_card,
    network_progress,
    run_picker,
    user_errors,
)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # read when gradio is imported: no telemetry calls

PATH = "/ui"
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
        diffusion = gen.impl.takes_sampler  # sampler and steps apply
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
        diffusion = gen.impl.takes_sampler  # sampler and steps apply
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


# ---------------------------------------------------------------------------------------------------- restore
def restore_tab(locate, loaded, examples):
    import gradio as gr

    from recgen.restore.config import TASKS

    with gr.Row():
        run = run_picker("restore")
        task = gr.Radio(list(TASKS), value=TASKS[0], label="task", elem_id="restore-task")
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
                with gr.Row():
                    quality = gr.Slider(1, 100, value=20, step=1, elem_id="restore-quality",
                                        label="quality (jpeg: what simulate compresses at)")
                    seed = gr.Number(value=0, precision=0, minimum=0, label="seed (masks, simulated damage)")
                ensemble = gr.Dropdown([1, 2, 4, 8], value=1, elem_id="restore-ensemble",
                                       label="self-ensemble (restorer runs: flips and rotations averaged; slower)")
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
    def restore(run_name, value, t, kind, r, sg, sc, q, sd, sim, ens=1):
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
                                  quality=int(q), simulate=bool(sim), seed=int(sd or 0), ensemble=int(ens or 1))
            except RecgenError as e:
                raise RecgenError(str(e).replace(f"{tmp}/", "")) from None
            outs = {m: np.asarray(Image.open(paths[0])) for m, paths in s["images"].items()}
        before = value["composite"][..., :3] if mask is not None else photo
        table = [{"method": k, **{m: v for m, v in s["per_image"][0].items() if m.startswith(k + "_")}}
                 for k in outs] if any(k.endswith("_psnr") for k in s["per_image"][0]) else \
            [{"method": k} for k in outs]
        import pandas as pd

        return (before, outs["recgen"]), [(v, k) for k, v in outs.items()], pd.DataFrame(table)

    busy(go, [slider, others, scores], restore,
         [run, editor, task, mask_kind, ratio, sigma, scale, quality, seed, simulate, ensemble],
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
