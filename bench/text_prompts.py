"""Free-text prompts against class conditioning, one family and budget: held-out prompt adherence (share of samples
the judge assigns to the class a never-trained phrasing describes, overall and per class) and judge-space FID of a
text-conditional run, beside the FID of a class-conditional run trained the same way; one record per call.

    python bench/text_prompts.py --text RUNS/generate/text-1 --cond RUNS/generate/class-1 \
        --judge RUNS/classify/judge-1 --n 1000 --guidance 2,3

The runs are trained beforehand; the record keeps both runs' training commands (from their config.yaml) and
training seconds."""

from __future__ import annotations

import argparse
import csv
import shlex
import sys
from pathlib import Path

import yaml

from recgen.loop.judge import evaluate_generator
from recgen.machine import write_record


def train_seconds(run: Path) -> float | None:
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    return float(rows[-1]["seconds"]) if rows and rows[-1].get("seconds") else None


def train_command(run: Path) -> str:
    """The `recgen generate train` flags that differ from the defaults, read back from config.yaml."""
    opts = yaml.safe_load((run / "config.yaml").read_text())["options"]
    keep = ("model", "data", "epochs", "limit", "text_conditional", "class_conditional", "threads", "seed")
    def flag(k, v):
        k = k.replace("_", "-")
        return (f"--{k}" if v else f"--no-{k}") if isinstance(v, bool) else f"--{k} {v}"

    return "recgen generate train " + " ".join(flag(k, opts[k]) for k in keep if k in opts)


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", required=True, help="text-conditional diffusion run")
    ap.add_argument("--cond", required=True, help="class-conditional run of the same family and budget")
    ap.add_argument("--judge", required=True, help="recgen CNN run judging the samples")
    ap.add_argument("--n", type=int, default=1000, help="samples per run and guidance scale")
    ap.add_argument("--steps", type=int, default=None, help="sampling steps (default: each run's own)")
    ap.add_argument("--guidance", default="2", help="comma-separated guidance scales tried on the text run; the "
                    "first is the headline")
    ap.add_argument("--name", default="text-prompts", help="record name (bench/results/NAME-DATE.json)")
    a = ap.parse_args(argv)
    text, cond = Path(a.text), Path(a.cond)
    scales = [float(s) for s in a.guidance.split(",")]
    ref = evaluate_generator(str(cond), a.judge, n=a.n, steps=a.steps, metrics="fid,recognizability")
    fid_cond = ref["model"]["fid"]
    tried = {}
    for w in scales:
        res = evaluate_generator(str(text), a.judge, n=a.n, steps=a.steps, guidance=w,
                                 metrics="fid,recognizability")
        pa = res["prompt_adherence"]
        tried[w] = {"adherence": round(pa["adherence"], 4), "fid": round(res["model"]["fid"], 3),
                    "fid_ratio": round(res["model"]["fid"] / fid_cond, 3), "per_class": pa["per_class"],
                    "worst_phrasings": pa["worst_phrasings"], "confused_with": pa["confused_with"],
                    "far_warned": pa["far_warned"], "phrasings": pa["phrasings"]}
    # the headline is the first scale given (the class run samples at its own default), every scale beside it
    first = scales[0]
    figures = {"heldout_adherence": tried[first]["adherence"], "guidance": first,
               "fid_text": tried[first]["fid"], "fid_class_conditional": round(fid_cond, 3),
               "fid_ratio": tried[first]["fid_ratio"],
               "class_conditional_recognizability": round(ref["model"]["recognizability"], 4),
               "train_seconds_text": train_seconds(text), "train_seconds_class": train_seconds(cond),
               **{f"adherence_{c}": round(v, 4) for c, v in tried[first]["per_class"].items()},
               **{f"{k}_guidance_{w:g}": tried[w][k] for w in scales[1:] for k in ("adherence", "fid_ratio")}}
    details = {"by_guidance": tried, "n": a.n, "sampling_steps": a.steps, "runs": {"text": str(text), "class": str(cond)},
        "train_commands": {"text": train_command(text), "class": train_command(cond)}, "judge": a.judge}
    cmd = "python bench/text_prompts.py " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    out = write_record(a.name, "Free-text prompts: held-out adherence and FID against class conditioning", cmd,
                       figures, details)
    print(f"record: {out}")
    for k, v in figures.items():
        print(f"  {k}: {v}")
    return out


if __name__ == "__main__":
    main()
