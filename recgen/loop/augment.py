"""Generation feeds recognition: does adding synthetic images help a recognizer trained on scarce or imbalanced data?

For each seed, a low-data (or imbalanced) real subset is drawn; a class-conditional generator trained on *that subset
only* supplies synthetic images; recognizers are trained on real only and on real + synthetic at several ratios with
the same step budget, and tested on the full real test set. Reported: overall accuracy and per-class recall, mean and
spread over seeds, and the gain over real-only. With --imbalance the real minority images are also repeated up to
the majority count (oversampling), in a real-only arm of its own, under every synthetic arm and, by default, in the
generator's own training set. A generator that saw more real data than the subset would leak it: such a generator
is refused, or with --allow-leak the result is labelled LEAKY.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from recgen import plots
from recgen.config import from_dict, to_dict
from recgen.data import ImageSet, load_dataset
from recgen.errors import RecgenError
from recgen.loop.config import AugmentConfig
from recgen.report import image, table, write_report
from recgen.runs import Run
from recgen.train import epochs_for_steps, nested_training


def _classes(spec: str, classes: list[str]) -> list[int]:
    from recgen.generate.condition import resolve_class

    return [resolve_class(s.strip(), classes) for s in spec.split(",") if s.strip()]


def _draw(full: ImageSet, cfg: AugmentConfig, seed: int) -> list[tuple[np.ndarray, int]]:
    """Per class, the seed's shuffle of its training images and how many of them the subset takes (the first ones)."""
    rng = np.random.default_rng(seed)
    minority = set(_classes(cfg.minority, full.classes)) if cfg.imbalance else set()
    if cfg.imbalance and not minority:
        raise RecgenError("--imbalance needs --minority CLASS[,CLASS...]")
    return [(rng.permutation(np.flatnonzero(full.y == c)),
             max(1, round(cfg.real_per_class * cfg.imbalance)) if c in minority else cfg.real_per_class)
            for c in range(full.num_classes)]


def real_subset(full: ImageSet, cfg: AugmentConfig, seed: int) -> ImageSet:
    return full.subset(np.sort(np.concatenate([order[:n] for order, n in _draw(full, cfg, seed)])))


def validation_set(full: ImageSet, cfg: AugmentConfig, seed: int) -> ImageSet | None:
    """cfg.val_per_class images of every class drawn after the seed's subset from the same shuffle, so none of them
    is in it; the minority classes get as many as the others (the test set is balanced too)."""
    if not cfg.val_per_class:
        return None
    idx = []
    for c, (order, n) in enumerate(_draw(full, cfg, seed)):
        if len(order) <= n:
            raise RecgenError(f"val_per_class: class {full.classes[c]!r} has {len(order)} training images, all in "
                              "the real subset, so none is left to choose the ratio on; pass --val-per-class 0 to "
                              "choose it on the test set")
        idx.append(order[n:n + cfg.val_per_class])
    return full.subset(np.sort(np.concatenate(idx)), split="validation")


def oversampled(subset: ImageSet, minority: list[int], per_class: int) -> ImageSet:
    """`subset` with each minority class's images repeated in turn up to `per_class`: balanced classes from the real
    images alone."""
    idx = [np.resize(np.flatnonzero(subset.y == c), per_class) if c in minority else np.flatnonzero(subset.y == c)
           for c in range(subset.num_classes)]
    return subset.subset(np.sort(np.concatenate(idx)), split="oversampled")


def _balanced(subset: ImageSet, cfg: AugmentConfig) -> ImageSet:
    """With --imbalance, `subset` with its minority images repeated to the majority count; otherwise `subset`."""
    if not cfg.imbalance:
        return subset
    return oversampled(subset, _classes(cfg.minority, subset.classes), cfg.real_per_class)


def _save_npz(ds: ImageSet, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=ds.x, y=ds.y, classes=np.array(ds.classes))
    return path


def train_recognizer(train: ImageSet, cfg: AugmentConfig, seed: int, work: Path, tag: str = "", **options: Any):
    """The recognizer every arm trains: CAS_OPTIONS at cfg.steps with cfg.recognizer_augment; `options` override
    classify.train options; `tag` tells apart training sets of one seed that have the same size."""
    from recgen import classify
    from recgen.loop.judge import CAS_OPTIONS

    path = _save_npz(train, work / f"train-{seed}-{len(train)}{'-' + tag if tag else ''}.npz")
    epochs = epochs_for_steps(cfg.steps, cfg.batch_size, len(train))
    with nested_training():
        return classify.train(**{**CAS_OPTIONS, "data": str(path), "epochs": epochs, "max_steps": cfg.steps,
                                 "batch_size": cfg.batch_size, "augment": cfg.recognizer_augment, "seed": seed,
                                 "threads": cfg.threads, "device": cfg.device, "out": str(work),
                                 "name": "recognizer", **options})


def _recognizer(train: ImageSet, test: ImageSet, cfg: AugmentConfig, seed: int, work: Path, tag: str = "",
                val: ImageSet | None = None, **options: Any) -> dict[str, Any]:
    rec = train_recognizer(train, cfg, seed, work, tag, **options)
    out = {}
    for prefix, data in (("", test), ("val_", val)):  # the test figures, and those the ratio is chosen on
        if data is not None:
            m = rec.evaluate(data=data, write=False)
            out.update({f"{prefix}accuracy": m["accuracy"], f"{prefix}recall": [r["recall"] for r in m["per_class"]]})
    return out


def synthesize(gen, subset: ImageSet, ratio: float, targets: list[int], seed: int, **sample: Any) -> ImageSet:
    """`ratio` synthetic images per real image of each target class of `subset`, seeded per (seed, class);
    `sample`: GeneratorRun.sample options (guidance, precision, ...)."""
    xs, ys = [], []
    for c in targets:
        n = int(round(ratio * (subset.y == c).sum()))
        if n:
            x, _ = gen.sample(n, class_=int(c), seed=seed * 1000 + int(c), **sample)
            xs.append(x)
            ys.append(np.full(n, c))
    return ImageSet(np.concatenate(xs), np.concatenate(ys), subset.classes, "synthetic")


def with_real(subset: ImageSet, syn: ImageSet) -> ImageSet:
    return ImageSet(np.concatenate([subset.x, syn.x]), np.concatenate([subset.y, syn.y]), subset.classes,
                    "real+synthetic")


def _copies(syn: ImageSet, subset: ImageSet, test: ImageSet) -> dict[str, float]:
    """Is the generator replaying its few training images? In pixel space: the share of synthetic images closer
    to a real subset image than 99 % of real test images come to one (a near copy), and the median
    nearest-subset-image distance of synthetic over real test images (1: as novel as unseen real data; near 0:
    copies)."""
    from recgen.evaluate.generation import memorization, pixel_vectors

    m = memorization(pixel_vectors(subset.x), pixel_vectors(test.x[:2000]), pixel_vectors(syn.x))
    return {"copy_rate": m["copy_rate"], "nn_distance_ratio": m["median_nn_distance_ratio"]}


def _generator(subset: ImageSet, cfg: AugmentConfig, seed: int, work: Path | None):
    from recgen import generate

    if cfg.generator:
        gen = generate.load(cfg.generator)
        seen = gen.run.config.get("n_train", 0) + gen.run.config.get("n_val", 0)
        # the subset as drawn, or with its minority images repeated (--generator-balance): the same real images
        clean = gen.run.config.get("data_fingerprint") in {subset.fingerprint(), _balanced(subset, cfg).fingerprint()}
        if not clean and not cfg.allow_leak:
            raise RecgenError(
                f"{cfg.generator}: this generator was trained on {seen} real images, not on this {len(subset)}-image "
                "subset; its synthetic images would leak real data into the low-data arm. Train it on the subset "
                "(leave --generator out) or pass --allow-leak to label the results LEAKY")
        return gen, (not clean)
    train = _balanced(subset, cfg) if cfg.generator_balance else subset
    path = _save_npz(train, work / f"subset-{seed}{'-balanced' if train is not subset else ''}.npz")
    bs = min(64, len(train))
    epochs = epochs_for_steps(cfg.generator_steps, bs, len(train))
    # lr: the family's own, as the augmentation figures were measured (generate train scales a left-out rate to
    # the batch size)
    with nested_training():
        gen = generate.train(model=cfg.generator_model, data=str(path), val_fraction=0.0, epochs=epochs,
                             max_steps=cfg.generator_steps, lr=generate.FAMILY_DEFAULTS[cfg.generator_model]["lr"],
                             batch_size=bs, seed=seed, threads=cfg.threads, device=cfg.device, out=str(work),
                             name=f"gen-{cfg.generator_model}", class_conditional=True,
                             augment=cfg.generator_augment, augment_p=cfg.generator_augment_p)
    return gen, False


def run_augment(**options: Any) -> dict[str, Any]:
    cfg = from_dict(AugmentConfig, options, "augment")  # checked as built, before any training
    ratios = [float(r) for r in cfg.ratios.split(",")]
    full = load_dataset(cfg.data, "train", cfg.data_dir or None)
    test = load_dataset(cfg.data, "test", cfg.data_dir or None, full.x.shape[1], full.x.shape[-1])
    first = real_subset(full, cfg, 0)  # checks --minority
    handed = None
    if cfg.generator:  # a handed generator fixes the subset (seed 0's); seeds then vary the recognizers only
        handed = _generator(first, cfg, 0, work=None)
        if cfg.guidance and not handed[0].guided:
            raise RecgenError(f"guidance: {cfg.generator} cannot sample with classifier-free guidance (a "
                              f"{handed[0].family} run); leave --guidance out")
    validation_set(full, cfg, 0)  # checks that the pool has images left beside the subset (every seed draws as many)
    run = Run.create("augment", cfg.name, cfg.out)  # only once every option has been checked
    run.write_config("augment", to_dict(cfg), classes=full.classes)
    work = run.path / "work"
    k = full.num_classes
    results = {r: [] for r in ratios}
    balanced = []  # the oversampled real-only arm, with --imbalance
    leaky = False
    for seed in range(cfg.seeds):
        subset = real_subset(full, cfg, 0 if handed else seed)
        val = validation_set(full, cfg, 0 if handed else seed)
        base = _recognizer(subset, test, cfg, seed, work, val=val)
        results[0.0].append(base)
        real = subset  # the real images of every synthetic arm
        if cfg.imbalance and cfg.oversample:
            real = _balanced(subset, cfg)
            balanced.append(_recognizer(real, test, cfg, seed, work, tag="oversampled", val=val))
        if ratios == [0.0]:  # a real-only reference (e.g. how much real data a synthetic gain is worth)
            continue
        gen, leak = handed or _generator(subset, cfg, seed, work)
        leaky |= leak
        targets = list(range(k))
        if cfg.target_weak:
            targets = list(np.argsort(base["recall"])[:cfg.target_weak])
        elif cfg.imbalance:  # rebalance: synthesize the minority classes only
            targets = _classes(cfg.minority, full.classes)
        for r in ratios:
            if r == 0:
                continue
            syn = synthesize(gen, subset, r, targets, seed, guidance=cfg.guidance or None, precision=cfg.precision)
            results[r].append({**_recognizer(with_real(real, syn), test, cfg, seed, work, val=val),
                               **_copies(syn, subset, test)})
    summary = _summarize(results, full.classes, leaky, cfg, balanced)
    run.write_json("results.json", summary)
    _report(run, summary, full.classes)
    summary["run"] = str(run.path)
    return summary


# Above this share of near copies (unseen real images: 1 % by construction) a generator is replaying its training
# subset: a diffusion model trained long on 100 images copied most of them and gained less than one stopped
# early.
MEMORIZED = 0.2


def _figures(rs: list[dict], classes: list[str], prefix: str = "") -> tuple[np.ndarray, np.ndarray, dict]:
    """Accuracy and per-class recall of one arm's recognizers (`prefix` "val_": on the validation images), per seed
    and their mean."""
    acc, rec = np.array([r[f"{prefix}accuracy"] for r in rs]), np.array([r[f"{prefix}recall"] for r in rs])
    return acc, rec, {f"{prefix}accuracy_mean": float(acc.mean()), f"{prefix}accuracy_per_seed": acc.round(4).tolist(),
                      f"{prefix}recall_mean": dict(zip(classes, rec.mean(0).round(4).tolist())),
                      f"{prefix}recall_per_seed": dict(zip(classes, rec.T.round(4).tolist()))}


def _arm(rs: list[dict], base: list[dict], classes: list[str]) -> dict:
    """Mean, spread and per-seed figures of one arm's recognizers, and their gains over `base` (the same seeds)."""
    acc, rec, out = _figures(rs, classes)
    if all("val_accuracy" in r for r in rs):  # the figures the ratio is chosen on; per seed, what one run would pick
        out.update(_figures(rs, classes, "val_")[2])
    base_acc, base_rec, _ = _figures(base, classes)
    return {**out, "accuracy_std": float(acc.std()),
            "gain_points": float(100 * (acc - base_acc).mean()),
            "gain_std": float(100 * (acc - base_acc).std()),
            "recall_gain_points": dict(zip(classes, (100 * (rec - base_rec).mean(0)).round(2).tolist()))}


def _summarize(results: dict[float, list[dict]], classes: list[str], leaky: bool, cfg: AugmentConfig,
               balanced: list[dict] | None = None) -> dict:
    arms = []
    for ratio, rs in results.items():
        arms.append({"ratio": ratio, **_arm(rs, results[0.0], classes)})
        if ratio:  # memorization of the synthetic images each arm added
            arms[-1].update({k: float(np.mean([r[k] for r in rs])) for k in ("copy_rate", "nn_distance_ratio")})
    minority = _classes(cfg.minority, classes) if cfg.imbalance else []
    # the ratio a user would pick: best mean accuracy on the held-out validation images (the first on a tie), and
    # only without them on the test set whose figures are then reported, which flatters the pick
    on_val = all("val_accuracy_mean" in a for a in arms)
    best = max(arms, key=lambda a: a["val_accuracy_mean" if on_val else "accuracy_mean"])
    out = {"label": "LEAKY (generator saw more real data than the subset)" if leaky else "clean",
           "setting": (f"{cfg.real_per_class} real images per class" if not cfg.imbalance else
                       f"imbalance {cfg.imbalance} for {', '.join(classes[c] for c in minority)} "
                       f"({cfg.real_per_class} per majority class)"),
           "seeds": cfg.seeds,
           "generator": "none (real only)" if len(arms) == 1 else (cfg.generator or cfg.generator_model),
           "recognizer": f"{cfg.steps} steps, augment {cfg.recognizer_augment}", "arms": arms,
           "best_ratio": best["ratio"], "best_gain_points": best["gain_points"],
           "best_chosen_on": (f"validation: {cfg.val_per_class} real images per class outside the subset" if on_val
                              else "the test set (no validation images)")}
    copies = max((a.get("copy_rate", 0.0) for a in arms), default=0.0)
    if copies > MEMORIZED:
        remedy = "" if cfg.generator else \
            "; train it for fewer --generator-steps or with --generator-augment flip+crop"
        out["health"] = [f"{copies:.0%} of the synthetic images are near copies of the real subset: the generator "
                         f"memorised it and adds little{remedy}"]
    if minority:
        def minority_recall(arm: dict) -> float:
            return float(np.mean([arm["recall_mean"][classes[c]] for c in minority]))

        out["minority_recall_gain_points"] = {
            a["ratio"]: float(np.mean([a["recall_gain_points"][classes[c]] for c in minority])) for a in arms}
        if balanced:  # the gains over repeating the real minority images instead
            over = {"setting": "real only, minority images repeated to balance the classes",
                    **_arm(balanced, results[0.0], classes)}
            over["minority_recall_gain_points"] = 100 * (minority_recall(over) - minority_recall(arms[0]))
            out["oversampled"] = over
            out["over_oversampled"] = {
                a["ratio"]: {"accuracy_points": 100 * (a["accuracy_mean"] - over["accuracy_mean"]),
                             "minority_recall_points": 100 * (minority_recall(a) - minority_recall(over))}
                for a in arms if a["ratio"]}
    return out


def _report(run: Run, s: dict, classes: list[str]) -> None:
    ratios = [a["ratio"] for a in s["arms"]]
    plots.bars({f"x{r:g}": a["gain_points"] for r, a in zip(ratios, s["arms"])}, run.plots / "gain.png",
               "accuracy gain over real-only (points)")
    # the chosen ratio's per-class gains; the largest ratio's when real only was chosen (its gains are all zero)
    shown = next((a for a in s["arms"] if a["ratio"] == s["best_ratio"] and a["ratio"]),
                 max(s["arms"], key=lambda a: a["ratio"]))
    plots.bars(shown["recall_gain_points"], run.plots / "recall-gain.png",
               f"per-class recall gain at ratio {shown['ratio']:g} (points)")
    rows = [{"ratio": a["ratio"], "accuracy": f"{a['accuracy_mean']:.4f} ± {a['accuracy_std']:.4f}",
             "gain (points)": f"{a['gain_points']:+.2f} ± {a['gain_std']:.2f}",
             "synthetic near-copies": f"{a['copy_rate']:.1%}" if "copy_rate" in a else "—",
             "NN distance vs real": f"{a['nn_distance_ratio']:.2f}" if "nn_distance_ratio" in a else "—",
             "validation accuracy": f"{a['val_accuracy_mean']:.4f}" if "val_accuracy_mean" in a else "—"}
            for a in s["arms"]]
    per_class = [{"class": c, **{f"x{a['ratio']:g}": a["recall_mean"][c] for a in s["arms"]}} for c in classes]
    over = s.get("oversampled")
    if over:  # the real-only arm that repeats the minority images, beside the real-only one
        rows.insert(1, {"ratio": "0, minority oversampled",
                        "accuracy": f"{over['accuracy_mean']:.4f} ± {over['accuracy_std']:.4f}",
                        "gain (points)": f"{over['gain_points']:+.2f} ± {over['gain_std']:.2f}",
                        "synthetic near-copies": "—", "NN distance vs real": "—",
                        "validation accuracy": f"{over['val_accuracy_mean']:.4f}" if "val_accuracy_mean" in over
                        else "—"})
        for row in per_class:
            row["x0, oversampled"] = over["recall_mean"][row["class"]]
    warn = "".join(f"<p><b>Warning:</b> {html.escape(h)}</p>" for h in s.get("health", []))
    write_report(run, f"recgen augment: {s['setting']} [{s['label']}]", [
        ("Accuracy on the real test set", f"<p>Generator: {html.escape(s['generator'])}; every arm's recognizer: "
         f"{html.escape(s['recognizer'])}.</p>"
         + ("<p>The synthetic arms add their images to the real ones with the minority images oversampled.</p>"
            if over else "") + warn + table(rows)
         + f"<p>Best ratio {s['best_ratio']:g}, chosen on {html.escape(s['best_chosen_on'])}: "
         f"{s['best_gain_points']:+.2f} points on the test set.</p>" + image(run, run.plots / "gain.png")),
        ("Per-class recall", table(per_class) + image(run, run.plots / "recall-gain.png")),
    ])
