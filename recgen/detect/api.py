"""Detection: locate and classify objects, with a CenterNet-style network (the shared loop) or a classical baseline.

    run = recgen.detect.train(data="fashion-mnist")          # synthetic scenes of Fashion-MNIST objects, CenterNet
    run = recgen.detect.train(model="classical")             # contour proposals + HOG/logistic-regression + NMS
    run = recgen.detect.train(data="my_coco_dir")            # train.json [+ test.json] and the images they name
    run.evaluate()                                           # COCO mAP@[.5:.95], mAP@.5, per-class AP, report.html
    run.predict(["street.png"])                              # boxes, labels and scores, drawn and returned
    run = recgen.detect.load("runs/detect/centernet-1")
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from recgen import plots
from recgen.config import check_option, model_args
from recgen.data import held_out, image_batch, read_image, read_images, to_channels
from recgen.data.images import reading_progress
from recgen.defaults import resolve_for_data
from recgen.detect.augment import augment
from recgen.detect.boxes import draw_boxes, letterbox
from recgen.detect.centernet import CenterNetConfig, build_centernet, centernet_loss, decode
from recgen.detect.coco import DetectionSet, coco_files, read_coco
from recgen.detect.config import DetectConfig, centernet_config
from recgen.detect.evaluate import Detections, coco_map
from recgen.detect.scenes import make_scenes
from recgen.errors import RecgenError
from recgen.report import image, table, write_report
from recgen.runs import Run, TrainedRun, atomic_write, load_module, module_state
from recgen.task import TaskSteps
from recgen.train import Trainer, TrainTask, resolve_device


def _read_sets(cfg: DetectConfig, splits: tuple[str, ...]) -> dict[str, DetectionSet]:
    if cfg.canvas % 16:
        raise RecgenError(f"canvas must be a multiple of 16 (the network's deepest stride), got {cfg.canvas}")
    files = coco_files(cfg.data)
    if files is None:
        return make_scenes(cfg, splits)
    return {s: read_coco(p, cfg.canvas, cfg.channels or None, cfg.images or None, cfg.bad_annotations, s)[0]
            for s, p in files.items() if s in splits}


def load_test(cfg: DetectConfig) -> DetectionSet | None:
    """The test split alone (held-out scenes, or the COCO dataset's test.json), None when there is none."""
    return _read_sets(cfg, ("test",)).get("test")


def load_splits(cfg: DetectConfig) -> tuple[DetectionSet, DetectionSet | None, DetectionSet | None]:
    """(train, val, test): synthetic scenes or a COCO dataset; val is None when val_fraction is 0."""
    sets = _read_sets(cfg, ("train", "test"))
    train, test = sets["train"], sets.get("test")
    if test is not None and test.classes != train.classes:
        raise RecgenError(f"{cfg.data}: test categories {test.classes[:4]}... differ from train's "
                          f"{train.classes[:4]}...")
    val = None
    if cfg.val_fraction:
        if not 0 < cfg.val_fraction < 1:
            raise RecgenError(f"val_fraction must be in [0, 1), got {cfg.val_fraction}")
        order = np.random.default_rng(cfg.seed).permutation(len(train))
        n_val = int(round(len(train) * cfg.val_fraction))
        if n_val == 0 or n_val == len(train):
            raise RecgenError(f"{train.name}: too few images ({len(train)}) to hold out {cfg.val_fraction:.0%}")
        val, train = train.subset(np.sort(order[:n_val]), "val"), train.subset(np.sort(order[n_val:]), "train")
    return train, val, test


# ------------------------------------------------------------------------------------------ CenterNet training
class DetectTask(TrainTask):
    monitor, monitor_mode = "val_map", "max"

    def __init__(self, net: torch.nn.Module, cfg: DetectConfig, val: DetectionSet | None, device: torch.device,
                 val_name: str = "val"):
        super().__init__()
        self.modules = {"model": net}
        self.cfg, self.val, self.device, self.val_name = cfg, val, device, val_name

    def training_step(self, batch, g):
        x, targets = batch  # uint8 (B, C, S, S), (B, M, 5)
        x, targets = augment(x.float().div_(255), targets, g, self.cfg.flip, self.cfg.scale_jitter,
                             self.cfg.translate)
        net = self.modules["model"]
        return centernet_loss(*net(x), targets, net.cfg, giou_weight=self.cfg.giou_weight)

    def validate(self, modules):
        if self.val is None:
            return {}
        dets = detect_centernet(modules["model"], self.val.images, self.device, self.cfg.score_threshold,
                                self.cfg.max_detections)
        m = coco_map(self.val, dets)
        return {f"{self.val_name}_map": m["map"], f"{self.val_name}_map50": m["map50"]}


@torch.no_grad()
def detect_centernet(net: torch.nn.Module, images: np.ndarray, device: torch.device, threshold: float = 0.01,
                     top_k: int = 100, batch_size: int = 256) -> Detections:
    """uint8 (N, S, S, C) -> per image (boxes xyxy, scores, labels) as numpy, in the images' pixels."""
    was = net.training
    net.eval()
    out: Detections = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i:i + batch_size]).to(device).permute(0, 3, 1, 2).float().div_(255)
        for b, s, c in decode(*net(x), net.cfg.stride, top_k, threshold):
            out.append((b.cpu().numpy(), s.cpu().numpy(), c.cpu().numpy()))
    net.train(was)
    return out


# -------------------------------------------------------------------------------------------------- run object
class DetectorRun(TrainedRun):
    """A trained detector in its run directory: evaluate, predict."""

    config_class = DetectConfig

    def __init__(self, run: Run):
        super().__init__(run)
        self.category_ids: list[int] = self.info["category_ids"]
        self._model = None

    @property
    def model(self):
        """The CenterNet network (EMA weights when trained with EMA) or the classical detector."""
        if self._model is None:
            if self.info["family"] == "centernet":
                net = build_centernet(model_args(CenterNetConfig, self.info, self.path / "model.json"))
                w = self.run.load_weights("best")
                load_module(net, module_state(w), self.run.weights_path("best"))
                self._model = net.to(self.device).eval()
            else:
                from recgen.detect.classical import ClassicalDetector

                self._model = ClassicalDetector.load(self.run)
        return self._model

    def detect(self, images: np.ndarray) -> Detections:
        """uint8 (N, S, S, C) at the run's input size -> per image (boxes xyxy, scores, labels)."""
        c, s, _ = self.input_shape
        images = image_batch(images)
        if images.shape[1:] != (s, s, c):
            raise RecgenError(f"images must be (N, {s}, {s}, {c}), got {images.shape}; predict() letterboxes any")
        if self.info["family"] == "centernet":
            return detect_centernet(self.model, images, self.device, self.config.score_threshold,
                                    self.config.max_detections)
        return self.model.detect(images, self.config.score_threshold, self.config.max_detections)

    def held_out(self, split: str = "test") -> DetectionSet:
        """The run's test scenes (split "test"), else its validation split."""
        test = load_test(self.config) if split == "test" else None
        return held_out(split, test, load_splits(self.config)[1] if test is None else None, self.config.data)

    def evaluate(self, split: str = "test", data: DetectionSet | str | None = None,
                 write: bool = True) -> dict[str, Any]:
        """COCO metrics on the test scenes (or the validation split when there is no test split), or on `data`: a
        DetectionSet or a COCO .json file."""
        if data is not None and split != "test":
            raise RecgenError(f"split {split!r} names one of the run's own sets; with data given, leave split out")
        if isinstance(data, (str, Path)):
            data = read_coco(data, self.input_shape[1], self.input_shape[0], None, self.config.bad_annotations,
                             "test")[0]
            _check_classes(data, self.classes)
        if data is None:
            data = self.held_out(split)
        self.detect(data.images[:2])  # warm-up: the first call pays for lazy initialisation
        t0 = time.perf_counter()
        dets = self.detect(data.images)
        secs = time.perf_counter() - t0
        m = coco_map(data, dets, agnostic=True)
        m.update({"split": data.split, "data": self.config.data, "run": str(self.path), "model": self.config.model,
                  "inference_images_per_s": round(len(data) / max(secs, 1e-9), 1),
                  "threads": torch.get_num_threads()})
        if write:
            self.run.write_json(f"eval-{data.split}.json", m)
            self._write_eval_report(m, data, dets)
        return m

    def _write_eval_report(self, m: dict, data: DetectionSet, dets: Detections) -> None:
        k = min(16, len(data))
        drawn = []
        for i in range(k):
            b, s, c = dets[i]
            keep = s >= 0.3
            drawn.append(draw_boxes(data.images[i], b[keep], [self.classes[j] for j in c[keep]], s[keep], 192))
        grid = plots.image_grid(np.stack(drawn), self.run.plots / "detections.png", cols=4, scale=2.5)
        ap = plots.bars({r["class"]: r["ap"] or 0.0 for r in m["per_class"]}, self.run.plots / "per_class_ap.png",
                        "AP@[.5:.95] per class")
        rows = self.run.read_metrics()
        curves = plots.curves(rows, self.run.plots / "curves.png")
        summary = {k: m[k] for k in ("split", "images", "objects", "map", "map50", "map75", "mar100", "map_agnostic",
                                     "map50_agnostic", "inference_images_per_s")}
        sections = [("Evaluation (COCO, pycocotools)", table(summary)),
                    ("Per class", table(m["per_class"]) + image(self.run, ap)),
                    ("Detections", image(self.run, grid, "first test images, detections scoring >= 0.3"))]
        if rows:
            sections.insert(1, ("Training curves", image(self.run, curves) + table(rows)))
        write_report(self.run, f"recgen detect: {self.config.model} on {self.config.data}", sections)

    def predict(self, inputs: list[str] | np.ndarray, min_score: float = 0.3, out: str | Path | None = None,
                draw: bool = True) -> list[dict[str, Any]]:
        """Boxes (x1, y1, x2, y2 in the input's own pixels), classes and scores for image files, folders, globs or
        a uint8 array (N, H, W, C); `draw` writes each image with its labelled boxes as PNG under `out`."""
        check_option("min_score", min_score, float)
        c, s, _ = self.input_shape
        if isinstance(inputs, np.ndarray):
            arr = image_batch(inputs)
            names, originals = [f"#{i}" for i in range(len(arr))], list(arr)
            boxed = [(*letterbox(to_channels(im[None], c)[0], s), im.shape[:2]) for im in originals]
        else:  # letterboxed as each file is read; a file is read again to draw on it: one at a time in memory
            def read(f: Path) -> list[tuple[str, tuple]]:
                im = read_image(f)
                return [(str(f), (*letterbox(to_channels(im[None], c)[0], s), im.shape[:2]))]

            names, boxed = read_images(inputs, read=read)
            originals = [None] * len(names)
        dets = self.detect(np.stack([b[0] for b in boxed]))
        out = Path(out) if out else self.path / "predictions"
        results = []
        with reading_progress(len(names) if draw else 0, "drawing detections") as progress:
            for i, (name, im, (_, scale, (h, w)), (b, sc, lab)) in enumerate(zip(names, originals, boxed, dets)):
                progress.update(i + 1)
                keep = sc >= min_score
                boxes = (b[keep] / scale).clip(0, [w, h, w, h])
                found = [{"class": self.classes[j], "category_id": self.category_ids[j], "score": round(float(p), 4),
                          "box": [round(float(v), 1) for v in bx]} for bx, p, j in zip(boxes, sc[keep], lab[keep])]
                r = {"input": name, "width": w, "height": h, "detections": found}
                if draw:
                    im = read_image(Path(name)) if im is None else im
                    pic = draw_boxes(im, boxes, [d["class"] for d in found], sc[keep])
                    p = out / f"{i:04d}-{Path(name).stem[:40] or 'image'}-detect.png"
                    atomic_write(p, cv2.imencode(".png", pic[..., ::-1])[1].tobytes())
                    r["drawing"] = str(p)
                results.append(r)
        return results


def _check_classes(data: DetectionSet, classes: list[str]) -> None:
    if data.classes != classes:
        raise RecgenError(f"{data.name}: categories {data.classes[:5]}... differ from the run's {classes[:5]}...")


# ---------------------------------------------------------------------------------------------------- train/load
def _prepare(cfg: DetectConfig, options: dict[str, Any], splits: tuple) -> tuple[DetectConfig, dict, Any]:
    """CenterNet's batch size, learning rate and epochs sized to the scenes (the canvas the defaults were tuned
    on is the default canvas)."""
    if cfg.model != "centernet":
        return cfg, {}, None
    train_set = splits[0]
    canvas = next(f.default for f in dataclasses.fields(DetectConfig) if f.name == "canvas")
    cfg, resolved = resolve_for_data(cfg, options, len(train_set), (train_set.size, train_set.size),
                                     what="training scenes", reference_hw=(canvas, canvas))
    return cfg, resolved, None


def _fit(run: Run, cfg: DetectConfig, splits: tuple, prepared: Any, resume: bool) -> DetectorRun:
    train_set, val, test = splits
    if cfg.model == "centernet":
        _fit_centernet(run, cfg, train_set, val, test, resume=resume)
    else:
        _fit_classical(run, cfg, train_set, val)
    result = DetectorRun(run)
    if test is not None or val is not None:
        result.evaluate(data=test or val)
    return result


STEPS = TaskSteps("detect", DetectConfig, DetectorRun, load_splits, _fit, prepare=_prepare,
                  uses_device=lambda cfg: cfg.model == "centernet",
                  record=lambda cfg, splits: {"n_test": len(splits[2]) if splits[2] else 0},
                  resumable=lambda cfg: None if cfg.model == "centernet" else
                  f"only centernet runs can be resumed (this one is {cfg.model})")


def train(**options: Any) -> DetectorRun:
    """Train a detector; every keyword is a DetectConfig field (the same names as the CLI flags)."""
    return STEPS.train(options)


def load(path: str | Path) -> DetectorRun:
    return STEPS.load(path)


def _model_json(run: Run, family: str, args: dict, ds: DetectionSet) -> None:
    run.write_model_json(family, args, classes=ds.classes, category_ids=ds.category_ids,
                         input_shape=[ds.channels, ds.size, ds.size])


def _fit_centernet(run: Run, cfg: DetectConfig, train_set: DetectionSet, val: DetectionSet | None,
                   test: DetectionSet | None, resume: bool):
    arch = centernet_config(cfg, train_set.channels, len(train_set.classes))
    if not resume:
        _model_json(run, "centernet", dataclasses.asdict(arch), train_set)
    torch.manual_seed(cfg.seed)
    net = build_centernet(arch)
    device = resolve_device(cfg.device)
    # Without a validation split the test split is tracked per epoch for the curves, never for choosing weights.
    watch, name = (val, "val") if val is not None else (test, "test")
    task = DetectTask(net, cfg, watch, device, name)
    hist = Trainer(task, cfg, run, device).fit(train_set.tensors(), resume=resume)
    run.update_config(stopped=hist.stopped, train_seconds=round(hist.seconds, 2))
    return hist


def _fit_classical(run: Run, cfg: DetectConfig, train_set: DetectionSet, val: DetectionSet | None):
    from recgen.detect.classical import ClassicalDetector

    t0 = time.perf_counter()
    det = ClassicalDetector(classifier=cfg.classifier, nms_iou=cfg.nms_iou, seed=cfg.seed)
    det.fit(train_set.subset(np.arange(min(len(train_set), cfg.fit_scenes))))
    secs = time.perf_counter() - t0
    _model_json(run, "classical", det.get_params(), train_set)
    det.save(run)
    row = {"epoch": 1, "step": 1, "seconds": round(secs, 2)}
    if val is not None:
        row["val_map"] = coco_map(val, det.detect(val.images, cfg.score_threshold, cfg.max_detections))["map"]
    run.write_metrics([row])
    run.update_config(stopped="completed", train_seconds=round(secs, 2))
