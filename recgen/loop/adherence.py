"""Prompt adherence of a text-conditional generator: sample each held-out phrasing of each class (wording the model
never trained on, recgen/resources/prompts.json) and count the samples the judge assigns to the class the phrasing
describes. `recgen generate eval` judges these samples (FID, recognizability = adherence) for text runs instead of
samples asked for by class name, which is itself a training phrasing and so says nothing of unseen wording."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from recgen.progress import Progress
from recgen.sanity import RecgenWarning


def prompt_set(classes: list[str], split: str = "heldout") -> tuple[list[str], np.ndarray]:
    """Every phrasing of `split` and the class index each describes, classes in turn."""
    from recgen.generate.condition import class_prompts

    per_class = class_prompts(classes, split)
    prompts = [p for ps in per_class for p in ps]
    return prompts, np.array([k for k, ps in enumerate(per_class) for _ in ps], dtype=np.int64)


def sample_prompts(gen, n: int, seed: int = 0, split: str = "heldout", **kw
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    """n samples spread evenly over the phrasings of `split` (the first n % P phrasings get one more).
    Returns (uint8 images, intended class per image, phrasing index per image, the phrasings, those the
    far-from-every-class check warned about). kw: sampler, steps, guidance, precision of GeneratorRun.sample."""
    prompts, intended = prompt_set(gen.classes, split)
    counts = np.full(len(prompts), n // len(prompts)) + (np.arange(len(prompts)) < n % len(prompts))
    at = np.repeat(np.arange(len(prompts)), counts)
    with warnings.catch_warnings(record=True) as rec, Progress(
            f"sampling {n} images from {gen.path.name} over {len(prompts)} {split} phrasings", n, "images") as p:
        warnings.simplefilter("always", RecgenWarning)
        x, _ = gen.sample(n, prompt=[prompts[i] for i in at], seed=seed, progress=p, **kw)
    said = [str(w.message) for w in rec if issubclass(w.category, RecgenWarning)]
    warned = [q for q in prompts if any(repr(q) in m for m in said)]
    return x, intended[at], at, prompts, warned


def adherence(predicted: np.ndarray, intended: np.ndarray, at: np.ndarray, prompts: list[str],
              classes: list[str], worst: int = 5) -> dict[str, Any]:
    """Share of samples the judge put in the intended class: overall, per class, and the `worst` phrasings."""
    hit = predicted == intended
    per_prompt = {prompts[i]: float(hit[at == i].mean()) for i in np.unique(at)}
    low = sorted(per_prompt.items(), key=lambda kv: kv[1])[:worst]
    return {"adherence": float(hit.mean()), "n": len(hit), "phrasings": len(per_prompt),
            "per_class": {c: float(hit[intended == k].mean()) for k, c in enumerate(classes) if (intended == k).any()},
            "worst_phrasings": {p: round(s, 3) for p, s in low},
            "confused_with": _confusions(predicted, intended, classes)}


def _confusions(predicted: np.ndarray, intended: np.ndarray, classes: list[str]) -> dict[str, str]:
    """For each class with misses, the class its missed samples most often went to, with the share of them."""
    out = {}
    for k, c in enumerate(classes):
        miss = predicted[(intended == k) & (predicted != k)]
        if len(miss):
            j = np.bincount(miss, minlength=len(classes)).argmax()
            out[c] = f"{classes[j]} ({(miss == j).mean():.0%} of {len(miss)} misses)"
    return out
