"""Recognition: train, evaluate and predict with a CNN (the shared loop) or a classical pipeline (scikit-learn).

    run = recgen.classify.train(model="cnn", data="fashion-mnist", epochs=2)
    run.evaluate()                     # accuracy, macro P/R/F1, confusion matrix, report.html
    run.predict(["shirt.png"], explain=True)
    run = recgen.classify.load("runs/classify/cnn-1")
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recgen import plots
from recgen.classify.cnn import CNNConfig, build_cnn
from recgen.classify.config import (MODELS, TTA_VIEWS, ClassifyConfig, check_tta,  # noqa: F401 (re-exported)
                                    cnn_config)
from recgen.config import model_args
from recgen.data import (ImageSet, build_augment, held_out, image_batch, read_image, read_images, to_channels)
from recgen.data.dataset import fit_images, resize_batch
from recgen.data.splits import load_splits
from recgen.defaults import resolve_for_data
from recgen.errors import RecgenError
from recgen.evaluate.classification import classification_metrics
from recgen.progress import Progress
from recgen.report import chance_note, image, legend, table, write_report
from recgen.runs import Run, TrainedRun, load_module, module_state
from recgen.sanity import check_accuracy, training_stats, unlike, warn_unlike
from recgen.task import TaskSteps
from recgen.train import Trainer, TrainTask, resolve_device


# --------------------------------------------------------------------------------------------- CNN training task
class CNNTask(TrainTask):
    monitor, monitor_mode = "val_accuracy", "max"

    def __init__(self, net: nn.Module, cfg: ClassifyConfig, val: tuple[torch.Tensor, torch.Tensor] | None,
                 device: torch.device, val_name: str = "val"):
        super().__init__()
        self.modules = {"model": net}
        self.cfg, self.val, self.device, self.val_name = cfg, val, device, val_name
        self.augment = build_augment(cfg.augment)

    def training_step(self, batch, g):
        x, y = batch
        x = self.augment(x, g)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        logits = self.modules["model"](x)  # (B, K)
        return {"loss": F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing)}

    def validate(self, modules):
        if self.val is None:
            return {}
        x, y = self.val
        probs = predict_proba(modules["model"], x, tta="none", device=self.device)
        nll = F.nll_loss(torch.log(probs.clamp_min(1e-12)), y).item()
        acc = (probs.argmax(1) == y).float().mean().item()
        return {f"{self.val_name}_loss": round(nll, 5), f"{self.val_name}_accuracy": round(acc, 5)}


def _shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x moved by (dy, dx) pixels with zeros coming in, as the pad-and-crop training augmentation moves it."""
    h, w = x.shape[-2:]
    p = F.pad(x, (1, 1, 1, 1))
    return p[..., 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]


@torch.no_grad()
def predict_proba(model: nn.Module, x: torch.Tensor, tta: str | bool = "none", device: torch.device | None = None,
                  batch_size: int = 1000, progress: Progress | None = None) -> torch.Tensor:
    """Softmax probabilities (N, K) for float images (N, C, H, W) in [0, 1], averaged over the test-time views in
    `tta`: 'flip' adds the mirror image, 'shift' the four one-pixel shifts (of each, with flip): 10 views for
    'flip+shift'. The shifts add accuracy to the mirror alone (compare `recgen classify eval RUN --tta
    flip+shift` and `--tta flip`). `progress` advances by the images of each batch."""
    views = check_tta(tta).split("+")
    offsets = [(0, 0)] + ([(1, 0), (-1, 0), (0, 1), (0, -1)] if "shift" in views else [])
    was = model.training
    model.eval()
    w = next(model.parameters())
    device = device or w.device
    nhwc = w.ndim == 4 and w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(device)
        if nhwc:  # feed the layout the weights are in
            xb = xb.contiguous(memory_format=torch.channels_last)
        p = 0
        for dy, dx in offsets:
            xs = xb
            if (dy, dx) != (0, 0):
                xs = _shifted(xb, dy, dx)
                xs = xs.contiguous(memory_format=torch.channels_last) if nhwc else xs.contiguous()
            p = p + model(xs).softmax(1)
            if "flip" in views:
                p = p + model(xs.flip(-1)).softmax(1)
        out.append((p / (len(offsets) * (2 if "flip" in views else 1))).cpu())
        if progress is not None:
            progress.advance(len(xb))
    model.train(was)
    return torch.cat(out)


# --------------------------------------------------------------------------------------------------- run object
class ClassifierRun(TrainedRun):
    """A trained recognizer in its run directory: evaluate, predict, explain."""

    config_class = ClassifyConfig

    def __init__(self, run: Run):
        super().__init__(run)
        self._model = None

    @property
    def model(self):
        """The network (CNN, EMA weights when trained with EMA) or the scikit-learn pipeline."""
        if self._model is None:
            if self.config.model == "cnn":
                net = build_cnn(model_args(CNNConfig, self.info, self.path / "model.json"))
                w = self.run.load_weights("best")
                load_module(net, module_state(w), self.run.weights_path("best"))
                if self.config.channels_last:
                    net = net.to(memory_format=torch.channels_last)
                self._model = net.to(self.device).eval()
            else:
                from recgen.classify.classical import load_classical

                self._model = load_classical(self.run.path / "weights" / "model.skops")
        return self._model

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """uint8 images of any size/channels -> the run's input size and channels (N, H, W, C)."""
        c, h, w = self.input_shape
        return resize_batch(to_channels(image_batch(x), c), (h, w))

    def tta_views(self, tta: str | None = None) -> str:
        """The test-time views asked for (`tta`, else the run's --tta) that the network was trained to be invariant
        to: the mirror only after flip augmentation, shifts only after crop (translate) or affine augmentation."""
        trained = set(self.config.augment.split("+"))
        keep = {"flip": "flip" in trained, "shift": bool(trained & {"crop", "affine"})}
        views = [v for v in check_tta(self.config.tta if tta is None else tta).split("+") if keep.get(v)]
        return "+".join(views) or "none"

    def predict_proba(self, x: np.ndarray, tta: str | None = None, progress: Progress | None = None) -> np.ndarray:
        """Class probabilities (N, K) for uint8 images (N, H, W, C); `tta` overrides the run's test-time views;
        `progress` advances by the images done."""
        x = self.prepare(x)
        if self.config.model == "cnn":
            t = torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255)
            return predict_proba(self.model, t, tta=self.tta_views(tta),
                                 device=self.device, progress=progress).numpy()
        probs = self.model.predict_proba(x)
        if progress is not None:
            progress.advance(len(x))
        return probs

    def evaluate(self, split: str = "test", data: ImageSet | None = None, write: bool = True,
                 tta: str | None = None) -> dict[str, Any]:
        """Metrics on the test split (or the validation split when the dataset has none, or `data`); `tta`
        overrides the run's test-time views (CNN)."""
        if data is None:
            _, val, test = load_splits(self.config)
            data = held_out(split, test, val, self.config.data)
        t0 = time.perf_counter()
        views = f", test-time views {self.tta_views(tta)}" if self.config.model == "cnn" else ""
        with Progress(f"evaluating {self.path.name} on {data.split}{views}", len(data), "images") as p:
            probs = self.predict_proba(data.x, tta, progress=p)
        secs = time.perf_counter() - t0
        pred = probs.argmax(1)
        m = classification_metrics(data.y, pred, self.classes)
        m.update({"split": data.split, "data": self.config.data, "run": str(self.path), "model": self.config.model,
                  "inference_images_per_s": round(len(data) / max(secs, 1e-9), 1)})
        if self.config.model == "cnn":
            m["tta"] = self.tta_views(tta)  # the inference speed above counts every view
        if write:
            self.run.write_json(f"eval-{data.split}.json", m)
            self._write_eval_report(m, data, pred, probs)
        return m

    def _write_eval_report(self, m: dict, data: ImageSet, pred: np.ndarray, probs: np.ndarray) -> None:
        cm_png = plots.confusion(m["confusion_matrix"], self.classes, self.run.plots / "confusion.png")
        wrong = np.flatnonzero(pred != data.y)
        wrong = wrong[np.argsort(-probs[wrong, pred[wrong]])][:32]  # the most confident mistakes first
        mis_png = None
        if len(wrong):
            titles = [f"{self.classes[data.y[i]]} → {self.classes[pred[i]]}" for i in wrong]
            mis_png = plots.image_grid(data.x[wrong], self.run.plots / "misclassified.png", titles)
        rows = self.run.read_metrics()
        curve_png = plots.curves(rows, self.run.plots / "curves.png")
        summary = {k: m[k] for k in ("split", "n", "accuracy", "macro_precision", "macro_recall", "macro_f1",
                                     "inference_images_per_s")}
        chance = chance_note(m["accuracy"], len(self.classes), m["n"])
        sections = [("Evaluation", table(summary) + (f"<p><b>{chance}</b>: the recognizer does no better than "
                                                     "guessing</p>" if chance else "") + legend(summary)),
                    ("Per class", table(m["per_class"])),
                    ("Confusion matrix", image(self.run, cm_png, "rows: true class, columns: predicted")),
                    ("Most confident mistakes", image(self.run, mis_png, "true → predicted"))]
        if rows:
            sections.insert(1, ("Training curves", image(self.run, curve_png) + table(rows)))
        write_report(self.run, f"recgen classify: {self.config.model} on {self.config.data}", sections)

    def predict(self, inputs: list[str] | np.ndarray, topk: int = 3, explain: bool = False,
                out: str | Path | None = None) -> list[dict[str, Any]]:
        """Top-k classes for image files, folders, globs, or a uint8 array; `explain` writes Grad-CAM overlays."""
        if topk < 1:
            raise RecgenError(f"topk must be at least 1, got {topk}")
        if isinstance(inputs, np.ndarray):
            names, x = [f"#{i}" for i in range(len(inputs))], inputs
        else:
            stats, why = self.run.config.get("input_stats"), {}

            def read(f: Path) -> list[tuple[str, np.ndarray]]:
                # fitted as each file is read, so a folder of large photos never sits in memory at full size;
                # what makes an input unlike the training images is noted from the file as it was
                raw = read_image(f)
                fitted = fit_images([raw], self.input_shape)[0]
                why[str(f)] = unlike(raw, self.input_shape, stats, fitted)
                return [(str(f), fitted)]

            names, images = read_images(inputs, read=read)
            x = np.stack(images)
        probs = self.predict_proba(x)  # a run that cannot predict says so before any warning about the inputs
        if not isinstance(inputs, np.ndarray):
            warn_unlike(names, [why[n] for n in names], str(self.path))
        k = min(topk, len(self.classes))
        results = []
        for i, name in enumerate(names):
            order = np.argsort(-probs[i])[:k]
            results.append({"input": name, "top": [{"class": self.classes[j], "index": int(j),
                                                    "probability": round(float(probs[i, j]), 4)} for j in order]})
        if explain:
            if self.config.model != "cnn":
                raise RecgenError("--explain (Grad-CAM) needs a CNN run; this run is " + self.config.model)
            from recgen.classify.gradcam import gradcam, save_overlays

            xs = torch.from_numpy(self.prepare(x)).permute(0, 3, 1, 2).float().div(255)
            cams = gradcam(self.model, xs, probs.argmax(1))
            out = Path(out) if out else self.path / "explain"
            paths = save_overlays(self.prepare(x), cams, names, out)
            for r, p in zip(results, paths):
                r["explanation"] = str(p)
        return results


# ---------------------------------------------------------------------------------------------------- train/load
def _prepare(cfg: ClassifyConfig, options: dict[str, Any], splits: tuple) -> tuple[ClassifyConfig, dict, Any]:
    """Checks that need the data (before a run directory exists), the weights to start from (--init), and batch
    size, learning rate and epochs the user left to us, sized to the data."""
    train_set = splits[0]
    if train_set.num_classes < 2:
        raise RecgenError(f"{cfg.data}: a recognizer needs at least 2 classes, found {train_set.num_classes}")
    init = None
    if cfg.init:
        if cfg.model != "cnn":
            raise RecgenError(f"init: only a CNN starts from another run's weights, not {cfg.model}")
        init = _init_weights(cfg.init, cnn_config(cfg, train_set.shape[0], train_set.num_classes),
                             train_set.classes)
    resolved = {}
    if cfg.model == "cnn":
        _check_input_size(cnn_config(cfg, train_set.shape[0], train_set.num_classes), train_set.shape, cfg.data)
        cfg, resolved = resolve_for_data(cfg, options, len(train_set), train_set.shape[1:])
    return cfg, resolved, init


def _fit(run: Run, cfg: ClassifyConfig, splits: tuple, init: dict[str, torch.Tensor] | None,
         resume: bool) -> ClassifierRun:
    train_set, val, test = splits
    if cfg.model == "cnn":
        _fit_cnn(run, cfg, train_set, val, test, resume=resume, init=init)
    else:
        _fit_classical(run, cfg, train_set, val)
    result = ClassifierRun(run)
    if test is not None or val is not None:
        _check_trained(result, test or val)
    return result


STEPS = TaskSteps("classify", ClassifyConfig, ClassifierRun, load_splits, _fit, prepare=_prepare,
                  uses_device=lambda cfg: cfg.model == "cnn",
                  record=lambda cfg, splits: {"input_stats": training_stats(splits[0].x, cfg.seed)},
                  resumable=lambda cfg: None if cfg.model == "cnn" else
                  f"only CNN runs can be resumed (this one is {cfg.model})")


def train(**options: Any) -> ClassifierRun:
    """Train a recognizer; every keyword is a ClassifyConfig field (the same names as the CLI flags)."""
    return STEPS.train(options)


def load(path: str | Path) -> ClassifierRun:
    return STEPS.load(path)


def _check_input_size(arch: CNNConfig, shape: tuple[int, int, int], data: str) -> None:
    """One forward pass on a blank image before a run directory exists: images too small for the network's
    downsampling are refused in one line, not by a traceback halfway through making the run."""
    c, h, w = shape
    try:
        with torch.no_grad():
            build_cnn(arch).eval()(torch.zeros(1, c, h, w))
    except RuntimeError as e:
        why = str(e).splitlines()[0][:120]
        raise RecgenError(f"{data}: images of {h}x{w} pixels are too small for this CNN ({why})") from None


def _check_trained(result: ClassifierRun, data: ImageSet) -> None:
    """Evaluate a freshly trained run and warn when it learned nothing the evaluation can see."""
    m = result.evaluate(data=data)
    check_accuracy(m["accuracy"], data.y, f"{result.path}: {data.split} accuracy",
                   "the model learned nothing usable; train longer (--epochs), with a smaller --batch-size or "
                   "--lr, or check the labels")


def _fit_cnn(run: Run, cfg: ClassifyConfig, train_set: ImageSet, val: ImageSet | None, test: ImageSet | None,
             resume: bool, init: dict[str, torch.Tensor] | None = None):
    c = train_set.shape[0]
    arch = cnn_config(cfg, c, train_set.num_classes)
    if not resume:
        run.write_model_json("cnn", dataclasses.asdict(arch), classes=train_set.classes,
                             input_shape=list(train_set.shape))
    torch.manual_seed(cfg.seed)
    net = build_cnn(arch)
    if init is not None:
        net.load_state_dict(init)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    device = resolve_device(cfg.device)
    # Without a validation split the test split is tracked per epoch for the curves (and time-to-accuracy), never
    # for choosing weights: with no val_accuracy to monitor, "best" is simply the last epoch.
    watch, name = (val, "val") if val is not None else (test, "test")
    task = CNNTask(net, cfg, watch.tensors() if watch is not None else None, device, name)
    hist = Trainer(task, cfg, run, device).fit(train_set.tensors(), resume=resume)
    run.update_config(stopped=hist.stopped, train_seconds=round(hist.seconds, 2))
    return hist


def _fit_classical(run: Run, cfg: ClassifyConfig, train_set: ImageSet, val: ImageSet | None):
    from recgen.classify.classical import SEARCH_GRIDS, build_classical, save_classical, search_classical

    t0 = time.perf_counter()
    sizes = {"landmarks": cfg.landmarks} if cfg.model == "svm" else {"n_estimators": cfg.trees}
    pipe = build_classical(cfg.model, cfg.features, seed=cfg.seed, **sizes)
    best = {}
    if cfg.search:  # successive halving on a subset, then the final fit on everything
        with Progress(f"{cfg.model}: hyperparameter search on a subset"):
            pipe = search_classical(pipe, train_set.x, train_set.y, seed=cfg.seed)
        best = {name: pipe.get_params()[name] for name in SEARCH_GRIDS[cfg.model]}
    with Progress(f"{cfg.model}: fitting {cfg.features} features and the classifier on {len(train_set)} images"):
        pipe.fit(train_set.x, train_set.y)
    secs = time.perf_counter() - t0
    run.write_model_json(cfg.model, {"features": cfg.features, **sizes, **best}, classes=train_set.classes,
                         input_shape=list(train_set.shape))
    save_classical(pipe, run.path / "weights" / "model.skops")
    row = {"epoch": 1, "step": 1, "seconds": round(secs, 2)}
    if val is not None:
        row["val_accuracy"] = round(float((pipe.predict(val.x) == val.y).mean()), 5)
    run.write_metrics([row])
    run.update_config(stopped="completed", train_seconds=round(secs, 2))


def _init_weights(path: str, arch: CNNConfig, classes: list[str]) -> dict[str, torch.Tensor]:
    """The CNN weights (EMA copy if kept) of classify run `path`, for a run building `arch` to start from. When
    both runs know the same class names in another order (an image folder's are sorted by name), the head's rows
    are put in this run's order, so each class starts from its own row."""
    try:
        src = load(path)
    except RecgenError as e:
        raise RecgenError(f"init: {e}") from None
    if src.config.model != "cnn":
        raise RecgenError(f"init: {path} is a {src.config.model} run; only CNN weights can start training")
    have = model_args(CNNConfig, src.info, src.path / "model.json")  # as ClassifierRun.model rebuilds it
    diff = [f"{f.name} {getattr(have, f.name)} vs {getattr(arch, f.name)}" for f in dataclasses.fields(arch)
            if f.name != "dropout"  # it holds no weights
            and getattr(have, f.name) != getattr(arch, f.name)]
    if diff:
        raise RecgenError(f"init: {path} holds another network than this run builds ({'; '.join(diff)}); "
                          "give the same --stem-width, --widths, --blocks, channels and classes")
    w = module_state(src.run.load_weights("best"))
    if sorted(src.classes) == sorted(classes) and src.classes != classes:
        w["head.weight"] = w["head.weight"][[src.classes.index(c) for c in classes]]
    elif sorted(src.classes) != sorted(classes):
        warnings.warn(f"init: {path} knows other classes ({', '.join(src.classes[:3])}, ...); the head starts from "
                      "its rows in order, as for a new task", stacklevel=2)
    return w
