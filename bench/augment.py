"""`recgen bench augment`: synthetic images for scarce (10 real per class) and imbalanced (1:10) real data.

    python bench/augment.py [--out runs/bench]

Each setting runs `recgen augment` on 3 seeds (5 would take 100 minutes per setting on 2 cores); the records of the
5-seed runs are augment-low-data and augment-imbalance in bench/results/.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from recgen.loop.augment import AugmentConfig, run_augment
from recgen.machine import write_record

RESULTS = Path(__file__).resolve().parent / "results"

# The two targets: +10 points minority recall at 1:10, +5 points accuracy at 10 real images per class.
SETTINGS = {
    "imbalance": {"real_per_class": 100, "imbalance": 0.1, "minority": "ankle boot", "ratios": "0,5,9"},
    # bf16 sampling: 1,600 images per seed at x16, about half the time of fp32 where the CPU has AMX
    "low_data": {"real_per_class": 10, "precision": "bf16", "ratios": "0,16"},
}
ARM_KEYS = ("ratio", "accuracy_mean", "accuracy_std", "gain_points", "gain_std", "val_accuracy_mean")
OVERSAMPLED_KEYS = ("accuracy_mean", "accuracy_std", "gain_points", "minority_recall_gain_points",
                    "val_accuracy_mean")


def command(opts: dict) -> str:
    def flag(k: str, v) -> str:
        return f"--{k.replace('_', '-')} " + (repr(v) if isinstance(v, str) and " " in v else str(v))

    return "recgen augment --data fashion-mnist " + " ".join(flag(k, v) for k, v in opts.items())


def run_setting(out: str, name: str, opts: dict) -> dict:
    """One setting's summary: what `recgen augment` printed, trimmed to the arms and the chosen ratio."""
    t0 = time.perf_counter()
    s = run_augment(data="fashion-mnist", out=out, name=f"augment-{name}", **opts)
    d = AugmentConfig()
    res = {"command": command(opts), "wall_seconds": round(time.perf_counter() - t0, 1),
           "generator": f"{d.generator_model}, {d.generator_steps} steps, augment {d.generator_augment}",
           **{k: s[k] for k in ("recognizer", "run", "label", "setting", "seeds", "best_ratio", "best_gain_points",
                                "best_chosen_on")},
           "minority_recall_gain_points": s.get("minority_recall_gain_points"),
           "arms": [{k: a[k] for k in ARM_KEYS if k in a} for a in s["arms"]]}
    if "oversampled" in s:  # the real-only arm that repeats the minority images, and the gains over it
        res["oversampled"] = {k: s["oversampled"][k] for k in OVERSAMPLED_KEYS if k in s["oversampled"]}
        res["over_oversampled"] = s["over_oversampled"]
    return res


def figures(res: dict) -> dict:
    low, imb = res["low_data"], res["imbalance"]
    out = {"10 real/class: best gain, points": low["best_gain_points"],
           "10 real/class: ratio chosen on validation images": low["best_ratio"],
           "1:10: ratio chosen on validation images": imb["best_ratio"]}
    for ratio, gain in (imb.get("minority_recall_gain_points") or {}).items():
        out[f"1:10: x{float(ratio):g} boot recall gain, points"] = gain
    if "oversampled" in imb:
        out["1:10: oversampling alone, boot recall gain, points"] = imb["oversampled"]["minority_recall_gain_points"]
    return out


def bench_augment(out: str) -> Path:
    res = {name: run_setting(out, name, opts) for name, opts in SETTINGS.items()}
    return write_record("augment", "`recgen augment` at its two settings, 3 seeds each", "recgen bench augment",
                        figures(res), res, out_dir=RESULTS)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/bench", help="root folder of the benchmark runs")
    print(bench_augment(p.parse_args().out))
