"""Recognition judges generation: every score of a sample set, beside a real-vs-real floor and a noise ceiling.

`judge_samples` works on any uint8 sample set (so tests can hand it real images); `recgen generate eval` feeds it a
generator's samples. Scores: FID/KID/precision/recall in judge space, per-class FID, FID in HOG space,
recognizability, Classification Accuracy Score (arXiv 1905.10887) and its reverse, memorization and mode-collapse
indicators. Each result carries a metric card saying exactly what was measured.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import recgen
from recgen import plots
from recgen.config import check_option
from recgen.data import ImageSet
from recgen.errors import RecgenError
from recgen.generate.options import SampleOptions
from recgen.sanity import check_samples
from recgen.evaluate.generation import (InceptionJudge, Judge, class_spread, fid_kid, frechet_distance, hog_features,
                                        memorization, pixel_vectors, recognizability)
from recgen.evaluate.judging import (  # noqa: F401 (re-exported: their callers import them from here)
    JUDGE_ROOT, METRICS, default_judge_path, format_table, nearest_ok, noise_images, parse_metrics, real_references,
    to_jsonable)
from recgen.evaluate.judging import feature_scores as _scores
from recgen.loop.adherence import adherence, sample_prompts
from recgen.progress import Progress
from recgen.train import epochs_for_steps, nested_training

# The CAS classifier: small and fast, the same for real and generated training data so the two are comparable.
# tta="flip": the mirror only, as when the CAS and augmentation figures in docs/BENCHMARKS.md were measured
# (the recognizer's default has more views since; pinning it keeps those figures comparable and CAS cheap).
# lr: the rate every CAS figure was measured with (classify train would otherwise scale it to the batch size).
CAS_OPTIONS = dict(model="cnn", batch_size=128, lr=0.4, val_fraction=0.0, stem_width=16,
                   widths="32,64", blocks="0,1", augment="flip+crop", tta="flip")
# Its budget is a number of optimizer steps, not epochs: a few epochs of a small sample give so few steps that
# even real images score low, and CAS would measure the budget rather than the samples.
CAS_STEPS = 800
# `--cas-classifier`: "small" is the fast default above; "recognizer" is the default recgen CNN's network
# (recgen/classify/api.py) at 3x the steps, near the "real-trained is about 93 %" the CAS target is stated
# against (the CAS paper trains a full ResNet-50), at several times the cost (both: docs/BENCHMARKS.md,
# cas-diffusion-6epochs).
CAS_CLASSIFIERS = {"small": {"steps": CAS_STEPS},
                   "recognizer": dict(stem_width=16, widths="32,64,128", blocks="1,0,1", batch_size=256, steps=2400)}


def cas_options_for(classifier: str, options: dict | None = None) -> dict:
    """The CAS classifier's classify.train options over CAS_OPTIONS: a named size, then any explicit options."""
    if classifier not in CAS_CLASSIFIERS:
        raise RecgenError(f"cas_classifier must be one of {', '.join(CAS_CLASSIFIERS)}, got {classifier!r}")
    return {**CAS_CLASSIFIERS[classifier], **(options or {})}


def cas(x: np.ndarray, y: np.ndarray, test: ImageSet, classes: list[str], seed: int, out: Path,
        options: dict | None = None) -> tuple[float, Any]:
    """Train the CAS classifier on (x, y) only; return its accuracy on the real test set and the run.
    options: classify.train options over CAS_OPTIONS, plus `steps` (default CAS_STEPS) unless `epochs` is given."""
    from recgen import classify

    path = Path(out) / f"cas-train-{seed}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, y=y, classes=np.array(classes))
    opts = {**CAS_OPTIONS, **(options or {})}
    steps = opts.pop("steps", CAS_STEPS)
    if "epochs" not in opts:
        opts.update(epochs=epochs_for_steps(steps, opts["batch_size"], len(x)), max_steps=steps)
    with nested_training():  # a working file of the evaluation: Ctrl-C ends it without a --resume hint
        run = classify.train(data=str(path), out=str(out), name="cas", seed=seed, **opts)
    m = run.evaluate(data=test, write=False)
    return m["accuracy"], run


def _memorization(judge: Judge, fake: np.ndarray, f_fake, train: ImageSet, test: ImageSet, te: ImageSet,
                  res: dict[str, Any]) -> dict[str, Any]:
    """Copy rates in judge space against the full training set, pixel space as a second look; into `res`."""
    with Progress(f"memorization: nearest of {len(train)} training images to each sample"):
        f_train_all = judge.features(train.x)
        mem = memorization(f_train_all, judge.features(test.x[:2000]),
                           judge.features(fake) if f_fake is None else f_fake)
        mem_px = memorization(pixel_vectors(train.x), pixel_vectors(test.x[:2000]), pixel_vectors(fake))
        res["model"].update({"copy_rate": mem["copy_rate"], "copy_rate_pixels": mem_px["copy_rate"],
                             "nn_distance_ratio": mem["median_nn_distance_ratio"]})
        res["floor"]["copy_rate"] = float(np.mean(nearest_ok(judge, f_train_all, te.x, mem["threshold"])))
    return mem


def _cas_scores(fake: np.ndarray, fake_y: np.ndarray, tr: ImageSet, test: ImageSet, seed: int,
                work_dir: str | Path | None, cas_options: dict | None, res: dict[str, Any]) -> None:
    """CAS (a classifier trained on the samples, tested on real images), its reverse, and the same classifier
    and budget trained on as many real images (the floor); into `res`."""
    opts, classes = cas_options or {}, test.classes
    budget = f"{opts['epochs']} epochs" if "epochs" in opts else f"{opts.get('steps', CAS_STEPS)} steps"
    # lines only, and rarely: the classifiers' training loop draws its own bar and prints its own lines
    with Progress(f"CAS: 2 classifiers of {budget} each, on the samples and on as many real images",
                  bar=False, every=30), tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        cas_fake, _ = cas(fake, fake_y, test, classes, seed, Path(tmp), cas_options)
        cas_real, real_run = cas(tr.x, tr.y, test, classes, seed, Path(tmp), cas_options)
        reverse = real_run.evaluate(data=ImageSet(fake, fake_y, classes, "samples", "samples"), write=False)
    res["model"]["cas"] = cas_fake
    res["model"]["reverse_cas"] = reverse["accuracy"]
    res["floor"]["cas"] = cas_real


def judge_samples(judge: Judge, fake: np.ndarray, fake_y: np.ndarray | None, train: ImageSet, test: ImageSet,
                  seed: int = 0, with_cas: bool = True, work_dir: str | Path | None = None,
                  plots_dir: Path | None = None, card: dict | None = None,
                  cas_options: dict | None = None, inception: InceptionJudge | None = None,
                  metrics: tuple[str, ...] = tuple(METRICS)) -> dict[str, Any]:
    """Score uint8 samples (N, H, W, C) against real data. fake_y: requested labels (None: unconditional).
    inception: also FID/KID in Inception-v3 space (the conventional one), as a second opinion.
    metrics: the parts of METRICS to compute (with_cas=False drops "cas" too)."""
    n = min(len(fake), len(test), len(train))
    fake = fake[:n]
    fake_y = None if fake_y is None else fake_y[:n]
    tr, te = real_references(train, test, n, seed)
    noise = noise_images(n, te.x.shape[1:], seed)

    res: dict[str, Any] = {"model": {}, "floor": {}, "ceiling": {}}
    f_fake = None
    if "fid" in metrics or "recognizability" in metrics:
        with Progress(f"judge space: FID, KID, precision, recall of {n} samples, {n} real and {n} noise images"):
            f_tr, f_te, f_fake, f_noise = (judge.features(a) for a in (tr.x, te.x, fake, noise))
    if "fid" in metrics:
        res = {"model": _scores(judge, te.x, fake, f_te, f_fake),
               "floor": _scores(judge, te.x, tr.x, f_te, f_tr),  # real train subset vs real test
               "ceiling": _scores(judge, te.x, noise, f_te, f_noise)}
    if "hog" in metrics:
        with Progress("HOG space: FID"):
            h_te = hog_features(te.x)
            res["model"]["fid_hog"] = frechet_distance(h_te, hog_features(fake))
            res["floor"]["fid_hog"] = frechet_distance(h_te, hog_features(tr.x))
            res["ceiling"]["fid_hog"] = frechet_distance(h_te, hog_features(noise))
    if inception is not None:
        with Progress("Inception-v3 space: FID, KID"):
            for part, x in (("model", fake), ("floor", tr.x), ("ceiling", noise)):
                r = fid_kid(inception, te.x, x)
                res[part].update(fid_inception=r["fid"], kid_inception=r["kid"])

    classes = test.classes
    if fake_y is not None and "recognizability" in metrics:
        rec = recognizability(judge, fake, fake_y, classes)
        res["model"].update(rec)
        res["floor"]["recognizability"] = float((judge.predict(tr.x) == tr.y).mean())
        check_samples(rec["recognizability"], fake_y, res["floor"]["recognizability"], tr.y,
                      (card or {}).get("generator", "the generator"))
        res["model"]["fid_per_class"] = {
            name: frechet_distance(f_te[te.y == c], f_fake[fake_y == c])
            for c, name in enumerate(classes) if (fake_y == c).sum() > 10 and (te.y == c).sum() > 10}
        spread = class_spread(f_fake, fake_y, f_te, te.y, len(classes))
        res["model"]["spread_per_class"] = dict(zip(classes, spread))
        res["model"]["min_class_spread"] = float(np.nanmin(spread))

    mem = _memorization(judge, fake, f_fake, train, test, te, res) if "memorization" in metrics else None
    if with_cas and "cas" in metrics and fake_y is not None:
        _cas_scores(fake, fake_y, tr, test, seed, work_dir, cas_options, res)

    if plots_dir is not None:
        with Progress("plots"):
            res["plots"] = _plots(judge, fake, fake_y, train, te, mem, Path(plots_dir))
    res["card"] = {"judge": str(judge.run.path), "judge_weights_sha256": judge.weights_hash,
                   "dataset": test.name, "reference_split": test.split, "n": n, "classes": len(test.classes),
                   "seed": seed,
                   "recgen_version": recgen.__version__, **(card or {})}
    if inception is not None:
        res["card"]["inception_weights_sha256"] = inception.weights_hash
    flat = res["model"]
    res["summary"] = {k: flat.get(k) for k in ("fid", "kid", "precision", "recall", "recognizability", "cas")}
    return res


def _plots(judge: Judge, fake, fake_y, train: ImageSet, test: ImageSet, mem: dict | None, out: Path
           ) -> dict[str, str]:
    from recgen.classify.gradcam import gradcam, overlay

    paths = {}
    if mem is not None:
        order = np.argsort(mem["nn_distance"])[:12]  # the closest sample/training pairs
        pairs = np.concatenate([np.stack([fake[i], train.x[mem["nn_index"][i]]]) for i in order])
        titles = [t for i in order for t in (f"sample d={mem['nn_distance'][i]:.2f}", "nearest train")]
        paths["nearest_pairs"] = str(plots.image_grid(pairs, out / "nearest-pairs.png", titles, cols=8))
    if fake_y is not None:
        k = len(test.classes)
        pick = np.concatenate([np.flatnonzero(fake_y == c)[:8] for c in range(k)])
        paths["samples_per_class"] = str(plots.image_grid(fake[pick], out / "samples-per-class.png",
                                                          [test.classes[fake_y[i]] for i in pick], cols=8))
        # Grad-CAM of the judge: where does it look on generated vs real images of the same class?
        cols, titles = [], []
        for c in range(k):
            fi, ri = np.flatnonzero(fake_y == c)[:1], np.flatnonzero(test.y == c)[:1]
            if len(fi) and len(ri):
                for img, tag in ((fake[fi[0]], "gen"), (test.x[ri[0]], "real")):
                    t = judge.to_input(img[None]).float() / 255
                    cam = gradcam(judge.run.model, t, [c])[0]
                    cols.append(overlay(judge.run.prepare(img[None])[0], cam, scale=4))
                    titles.append(f"{tag}: {test.classes[c]}")
        if cols:
            paths["gradcam"] = str(plots.image_grid(np.stack(cols), out / "gradcam-gen-vs-real.png", titles, cols=8))
    return paths


# ------------------------------------------------------------------------------------- judging a generator run
# The reference judge: one documented command trains it (`recgen generate judge --data fashion-mnist`).
JUDGE_OPTIONS = dict(model="cnn", epochs=6, batch_size=256, val_fraction=0.0)


def train_judge(data: str, out: str | None = None, **options) -> Path:
    """Train and store the reference judge for `data` (a CNN on its full training split)."""
    from recgen import classify

    dest = Path(out) if out else default_judge_path(data)
    run = classify.train(data=data, out=str(dest.parent / ".tmp-judge"), name="judge", **{**JUDGE_OPTIONS, **options})
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(run.path, dest)  # the judge appears whole or not at all
    shutil.rmtree(dest.parent / ".tmp-judge", ignore_errors=True)
    return dest


def load_judge(spec: str, data: str) -> Judge:
    from recgen import classify

    if spec.startswith("inception"):
        raise RecgenError("the judge must be a recgen CNN run (it also classifies: recognizability, Grad-CAM); "
                          "for Inception-space FID/KID beside it pass --inception WEIGHTS")
    path = Path(spec) if spec else default_judge_path(data)
    if not (path / "config.yaml").is_file():
        raise RecgenError(f"no judge at {path}: train the reference judge once with "
                          f"`recgen generate judge --data {data}` or pass --judge RUN (a recgen CNN run)")
    return Judge.from_run(classify.load(path))


def sample_many(gen, n: int, seed: int, batch: int = 500, **kw) -> tuple[np.ndarray, np.ndarray | None]:
    """n samples in batches (classes in turn when conditional), each batch with its own derived seed; kw: the
    other SampleOptions fields."""
    xs, ys = [], []
    what = f"sampling from {gen.path.name} ({gen.family}" + (
        f", {kw.get('sampler') or gen.config.sampler} {kw.get('steps') or gen.config.steps} steps)"
        if gen.impl.takes_sampler else f", {kw.get('steps') or gen.config.steps} steps)" if gen.impl.takes_steps
        else ")")
    with Progress(what, n, "images") as p:
        for i in range(0, n, batch):
            x, y = gen.sample(min(batch, n - i), seed=seed * 100_003 + i, progress=p, **kw)
            xs.append(x)
            ys.append(y)
    return np.concatenate(xs), (None if ys[0] is None else np.concatenate(ys))


def evaluate_generator(run_path: str, judge: str = "", n: int = 10000, seed: int = 0,
                       sampling: SampleOptions | None = None, with_cas: bool = True,
                       cas_options: dict | None = None, inception: str = "", cas_classifier: str = "small",
                       metrics: str = "all", **sampling_options: Any) -> dict[str, Any]:
    """Sample n images from a generator run and judge them; writes eval-judge.json, plots and a report section.
    sampling: how to sample (SampleOptions: sampler, steps, guidance, temperature, precision, ...; its n and
    seed are this function's); the same fields may be given as keywords instead (precision="bf16"). The judge
    itself stays fp32. cas_classifier: small | recognizer (CAS_CLASSIFIERS), the network and budget of the CAS
    classifier. metrics: comma-separated parts of METRICS or figures in them ('all': every part)."""
    import time

    from recgen import generate
    from recgen.data.splits import load_splits
    from recgen.data import load_dataset
    from recgen.report import image, legend, table, write_report

    gen = generate.load(run_path)
    cfg = gen.config
    if n < 50:
        raise RecgenError(f"n must be at least 50 samples for meaningful statistics, got {n}")
    check_option("seed", seed, int)
    parts = parse_metrics(metrics)
    with_cas = with_cas and "cas" in parts
    cas_options = cas_options_for(cas_classifier, cas_options)  # fails before any sampling when unknown
    inc = InceptionJudge(inception) if inception else None  # fails before any sampling when unusable
    j = load_judge(judge, cfg.data)
    sampling = SampleOptions.of(sampling_options, "evaluate_generator") if sampling is None \
        else sampling.replace(**sampling_options)
    kw = {k: v for k, v in dataclasses.asdict(sampling).items() if k not in ("n", "seed")}
    t0 = time.perf_counter()
    if gen.arch.cond == "text":  # held-out phrasings: recognizability is then prompt adherence
        tkw = {k: v for k, v in kw.items() if k not in ("class_", "prompt", "like", "strength")}
        fake, fake_y, at, prompts, warned = sample_prompts(gen, n, seed, **tkw)
    else:
        fake, fake_y = sample_many(gen, n, seed, **kw)
    secs = time.perf_counter() - t0
    train, _, _ = load_splits(cfg)  # exactly the images the generator trained on
    test = load_dataset(cfg.data, "test", cfg.data_dir or None, gen.input_shape[1], gen.input_shape[0])
    card = {"generator": str(gen.path), "family": gen.family, "conditioning": gen.arch.cond,
            "sampler": sampling.sampler or cfg.sampler if gen.impl.takes_sampler else None,
            "steps": sampling.steps or cfg.steps if gen.impl.takes_steps else None,
            "guidance": None if not gen.guided else cfg.guidance if sampling.guidance is None
            else sampling.guidance,
            "sampling_precision": sampling.precision, "sampling_images_per_s": round(n / max(secs, 1e-9), 1),
            "metrics": ",".join(p for p in parts if p != "likelihood")}
    if with_cas and fake_y is not None:
        card.update(cas_classifier=cas_classifier, cas_steps=cas_options.get("steps", CAS_STEPS))
    res = judge_samples(j, fake, fake_y, train, test, seed=seed, with_cas=with_cas, work_dir=gen.path,
                        plots_dir=gen.run.plots, card=card, cas_options=cas_options, inception=inc, metrics=parts)
    if gen.arch.cond == "text":
        res["prompt_adherence"] = {**adherence(j.predict(fake), fake_y, at, prompts, test.classes),
                                   "split": "heldout", "far_warned": warned}
    out = to_jsonable(res)
    gen.run.write_json("eval-judge.json", out)
    rows = format_table(res)
    sections = [("Judged by a recognizer", table(rows) + legend(r["metric"] for r in rows) + table(res["card"]))]
    for key, caption in (("samples_per_class", "samples per class"),
                         ("nearest_pairs", "closest sample / training-image pairs (memorization check)"),
                         ("gradcam", "judge Grad-CAM: generated vs real, same class")):
        if key in res.get("plots", {}):
            sections.append((caption.capitalize(), image(gen.run, res["plots"][key], caption)))
    write_report(gen.run, f"recgen generate: {gen.family} on {cfg.data} (judged)", sections)
    return out
