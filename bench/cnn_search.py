"""Fashion-MNIST CNN recipe search: train one recipe with recgen's own loop on the 60k images, print one JSON line.

Every recipe knob is a field of ClassifyConfig, so the search trains exactly what `recgen classify train` trains
(the one training loop: schedule, EMA, augmentation, TTA, precision); the JSON line carries the recipe back with
the figures. The log of the search that chose the default recipe is bench/cnn_search.md (its early runs used a
standalone loop this script no longer has).

    flock /tmp/recgen-bench.lock python bench/cnn_search.py --epochs 12 --lr 0.4 --augment flip+crop

`seconds to 93 %` is read off the loop's per-epoch test evaluations (metrics.csv, without a validation split).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from recognition import train_and_time

from recgen.classify.config import ClassifyConfig

# The recipe's knobs: network, optimisation, augmentation, evaluation and execution fields of ClassifyConfig.
RECIPE = ("stem_width", "widths", "blocks", "dropout", "optimizer", "lr", "weight_decay", "batch_size", "epochs",
          "time_budget", "warmup", "schedule", "label_smoothing", "augment", "ema", "tta", "channels_last",
          "precision", "threads", "seed")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    fields = {f.name: f for f in dataclasses.fields(ClassifyConfig)}
    for name in RECIPE:
        default = fields[name].default
        kind = (lambda v: v.lower() in ("1", "true", "yes")) if isinstance(default, bool) else type(default)
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=default)
    p.add_argument("--out", default="runs/cnn-search", help="root folder of the search's runs")
    p.add_argument("--tag", default="", help="a label carried into the JSON line")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    recipe = {name: getattr(args, name) for name in RECIPE}
    res, rows = train_and_time(args.out, model="cnn", data="fashion-mnist", val_fraction=0.0, **recipe)
    out = {"tag": args.tag, **res,
           "curve": [(row.get("epoch"), row.get("seconds"), row.get("test_accuracy")) for row in rows],
           "recipe": recipe}
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main()
