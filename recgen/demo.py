"""`recgen demo`: the whole chain on Fashion-MNIST with a small CPU budget (about 10 minutes on 2 cores).

1. train a recognizer (it becomes the judge);
2. train a class-conditional generator;
3. judge the generator with the recognizer (FID/KID/PR in judge space, recognizability, CAS, memorization);
4. a small augmentation experiment: 10 real images per class, with and without synthetic images;
5. one HTML report with the figures, printed at the end.
"""

from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path

from recgen import classify, generate
from recgen.data import has_test_split, load_dataset
from recgen.errors import RecgenError
from recgen.loop.augment import run_augment
from recgen.loop.judge import Judge, format_table, sample_many, judge_samples
from recgen.report import image, table, write_report
from recgen.runs import Run
from recgen.train import resolve_device, resolve_precision

# Budgets for about 10 minutes of 2 CPU cores, with or without bf16 matrix units (`recgen bench demo` records
# the time); `quick` shrinks everything to a smoke test of the same chain.
FULL = dict(
    recognizer=dict(model="cnn", epochs=3, batch_size=256, val_fraction=0.0),
    generator=dict(model="vae", epochs=6),
    judge_n=2000,
    cas=dict(steps=300),  # CAS classifier steps (the benchmarks use 800)
    # 300 recognizer steps without erasing (recgen augment's default is 1,500 with it): the 10-minute budget
    augment=dict(real_per_class=10, ratios="0,4", seeds=1, steps=300, recognizer_augment="flip+crop",
                 generator_model="vae", generator_steps=800),
)
QUICK = dict(
    recognizer=dict(model="cnn", epochs=1, batch_size=64, limit=30, val_fraction=0.0, stem_width=8, widths="16,32",
                    blocks="0,1"),
    generator=dict(model="vae", epochs=1, limit=30, base=8, latent_dim=4),
    judge_n=100,
    cas=dict(epochs=1, batch_size=32),
    augment=dict(real_per_class=3, ratios="0,1", seeds=1, steps=10, recognizer_augment="flip+crop",
                 generator_model="vae", generator_steps=10),
)


def plan_for_machine(quick: bool = False) -> dict:
    """The demo's budgets and what `--precision auto` trains them in here (bf16 where the CPU or GPU has native bf16,
    else fp32): the same epochs take other times on the two, so the plan, its config.yaml and its summary name it."""
    plan = copy.deepcopy(QUICK if quick else FULL)
    plan["precision"] = resolve_precision("auto", resolve_device("auto"))
    return plan


def _stage(name: str, t0: float) -> None:
    print(f"[demo {time.perf_counter() - t0:6.0f}s] {name}", flush=True)


def run_demo(out: str = "runs", quick: bool = False, data: str = "fashion-mnist") -> Path:
    plan = plan_for_machine(quick)
    t0 = time.perf_counter()
    load_dataset(data, "train")  # each stage loads it again; a bad name fails here, before the run folder exists
    if not has_test_split(data):
        raise RecgenError(f"{data}: the demo needs a dataset with a test split (fashion-mnist, digits, a folder "
                          "with test/, or x.npz with x-test.npz beside it)")
    demo = Run.create("demo", "demo", out)
    demo.write_config("demo", {"quick": quick, "data": data, **{k: v for k, v in plan.items()}})

    budgets = (f"recognizer {plan['recognizer']['epochs']} epochs, generator {plan['generator']['epochs']} epochs, "
               f"training in {plan['precision']}")
    _stage(f"budgets: {budgets}", t0)
    _stage("1/4 training the recognizer", t0)
    rec = classify.train(data=data, out=out, name="demo-recognizer", **plan["recognizer"])
    rec_eval = rec.evaluate(write=False)

    _stage("2/4 training a class-conditional generator", t0)
    gen = generate.train(data=data, out=out, name="demo-generator", class_conditional=True, **plan["generator"])

    _stage("3/4 judging the generator with the recognizer", t0)
    from recgen.data.splits import load_splits

    judge = Judge.from_run(rec)
    fake, fake_y = sample_many(gen, plan["judge_n"], seed=0)
    train, _, test = load_splits(gen.config)
    judged = judge_samples(judge, fake, fake_y, train, test, seed=0, work_dir=demo.path, plots_dir=demo.plots,
                           card={"generator": str(gen.path), "family": gen.family},
                           cas_options=plan["cas"])

    _stage("4/4 augmentation: 10 real images per class, with and without synthetic ones", t0)
    aug = run_augment(data=data, out=out, name="demo-augment", **plan["augment"])

    for src, dst in ((rec.path / "plots" / "confusion.png", "recognizer-confusion.png"),
                     (rec.path / "plots" / "curves.png", "recognizer-curves.png"),
                     (Path(aug["run"]) / "plots" / "recall-gain.png", "augment-recall-gain.png")):
        if src.is_file():
            shutil.copyfile(src, demo.plots / dst)
    grids = sorted((gen.path / "plots").glob("samples-epoch*.png"))
    if grids:
        shutil.copyfile(grids[-1], demo.plots / "generator-last-epoch.png")

    secs = time.perf_counter() - t0
    aug_rows = [{"ratio (synthetic per real)": a["ratio"], "accuracy": round(a["accuracy_mean"], 4),
                 "gain (points)": round(a["gain_points"], 2)} for a in aug["arms"]]
    p = demo.plots
    summary = {
        "budgets": budgets,
        "recognizer test accuracy": round(rec_eval["accuracy"], 4),
        "recognizer macro F1": round(rec_eval["macro_f1"], 4),
        "generator": f"{gen.family}, class-conditional",
        "FID (judge space)": round(judged["model"]["fid"], 3),
        "FID floor (real vs real)": round(judged["floor"]["fid"], 3),
        "FID ceiling (noise)": round(judged["ceiling"]["fid"], 3),
        "recognizability": round(judged["model"].get("recognizability", float("nan")), 4),
        "CAS (trained on samples only)": round(judged["model"].get("cas", float("nan")), 4),
        "CAS floor (same budget, real images)": round(judged["floor"].get("cas", float("nan")), 4),
        "augmentation gain at 10 real/class (points)": round(aug["best_gain_points"], 2),
        "total seconds": round(secs, 1)}
    demo.write_json("summary.json", summary)
    sections = [
        ("Summary", table(summary)),
        ("1. Recognizer", image(demo, p / "recognizer-curves.png", "training curves")
         + image(demo, p / "recognizer-confusion.png", "confusion matrix (test set)")
         + f"<p>Run: {rec.path}</p>"),
        ("2. Generator", image(demo, p / "generator-last-epoch.png", "samples after the last epoch, one class per column")
         + f"<p>Run: {gen.path}</p>"),
        ("3. The recognizer judges the generator", table(format_table(judged))
         + image(demo, p / "samples-per-class.png", "samples per class")
         + image(demo, p / "nearest-pairs.png", "closest sample / training-image pairs")
         + image(demo, p / "gradcam-gen-vs-real.png", "judge Grad-CAM: generated vs real")),
        ("4. Generation feeds recognition", f"<p>{aug['setting']} [{aug['label']}]</p>" + table(aug_rows)
         + image(demo, p / "augment-recall-gain.png", "per-class recall gain") + f"<p>Run: {aug['run']}</p>"),
    ]
    report = write_report(demo, f"recgen demo on {data}", sections)
    _stage(f"done: {report}", t0)
    return report
