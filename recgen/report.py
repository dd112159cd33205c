"""report.html: one self-describing page per run (config, metrics, plots). Images are linked relative to the run
directory so the folder can be moved or zipped whole."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from recgen.runs import Run, atomic_write
from recgen.sanity import chance_margin

CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}img{max-width:100%;margin:.3em 0}h2{border-bottom:1px solid #ddd;padding-bottom:.2em}
.muted{color:#777;font-size:12px}"""


# Which way each figure is better, and what it measures, in one line: the legend of every report table and of the
# command line's output. Figures not listed here have no better direction (counts, settings, seconds).
METRIC_GUIDE: dict[str, tuple[str, str]] = {
    "accuracy": ("higher", "share of images whose most probable class is the true one"),
    "macro_f1": ("higher", "F1 (harmonic mean of precision and recall) per class, averaged over classes"),
    "fid": ("lower", "Frechet distance between judge-network features of the samples and of real test images"),
    "kid": ("lower", "Kernel Inception Distance: FID's unbiased kernel cousin, trustworthy at a few hundred images"),
    "precision": ("higher", "share of samples inside the real images' feature manifold (fidelity, arXiv 1904.06991)"),
    "recall": ("higher", "share of real images inside the samples' feature manifold (diversity)"),
    "fid_hog": ("lower", "FID in HOG-descriptor space: a second opinion that needs no network"),
    "fid_inception": ("lower", "FID in Inception-v3 space, the published convention (ImageNet features)"),
    "kid_inception": ("lower", "KID in Inception-v3 space"),
    "recognizability": ("higher", "share of samples the judge classifies as the class they were asked for"),
    "cas": ("higher", ("Classification Accuracy Score: real-test accuracy of a classifier trained only on samples "
                       "(arXiv 1905.10887)")),
    "reverse_cas": ("higher", "accuracy on the samples of the same classifier trained on as many real images"),
    "copy_rate": ("lower", "share of samples nearly identical to a training image (memorization)"),
    "bpd": ("lower", ("bits per dimension: held-out negative log-likelihood per pixel channel, in bits "
                      "(8 = a uniform guess over 256 levels)")),
    "elbo": ("higher", "evidence lower bound on log p(x) per image, in nats"),
    "kl": ("lower", "KL divergence of the VAE's posterior from its prior, in nats"),
    "recon_mse": ("lower", "mean squared reconstruction error, pixels in [0, 1]"),
    "loss": ("lower", "diffusion: noise-prediction error on held-out images at fixed timesteps"),
    "spread_ratio": ("higher", "GAN: sample spread relative to real images' (near 1 = as varied; low = collapse)"),
    "map": ("higher", "COCO mean average precision over IoU thresholds 0.5 to 0.95"),
    "psnr": ("higher", "peak signal-to-noise ratio against the clean image, dB"),
    "ssim": ("higher", "structural similarity to the clean image (1 = identical)"),
}
ARROWS = {"lower": "↓ lower is better", "higher": "↑ higher is better"}
CHANCE_FIGURES = ("accuracy", "recognizability", "cas", "reverse_cas")  # class-accuracy figures: 1/K is chance


def at_chance(value: float, classes: int, n: int) -> bool:
    """An accuracy over n images of `classes` classes that guessing reaches: below 1/K plus two binomial standard
    errors (and never above 1.5/K, so a large n does not flag a weak but real skill)."""
    if not isinstance(value, (int, float)) or classes < 2 or n < 1:
        return False
    p = 1 / classes
    return value < min(p + chance_margin(p, n), 1.5 * p)


def chance_note(value: float, classes: int, n: int) -> str:
    return f"AT CHANCE (1/{classes} = {1 / classes:.3f})" if at_chance(value, classes, n) else ""


def arrow(key: str) -> str:
    """↓ or ↑ after a figure's name on the command line ('' when it has no better direction)."""
    return {"lower": "↓", "higher": "↑"}[METRIC_GUIDE[key][0]] if key in METRIC_GUIDE else ""


def legend(keys) -> str:
    """One line per known figure among `keys`: which way is better and what it measures."""
    items = [f"<li><b>{html.escape(k)}</b> ({ARROWS[METRIC_GUIDE[k][0]]}): {html.escape(METRIC_GUIDE[k][1])}</li>"
             for k in dict.fromkeys(keys) if k in METRIC_GUIDE]
    return f"<ul class=muted>{''.join(items)}</ul>" if items else ""


def table(rows: list[dict[str, Any]] | dict[str, Any], digits: int = 4) -> str:
    if isinstance(rows, dict):
        rows = [{"key": k, "value": v} for k, v in rows.items()]
    if not rows:
        return "<p class=muted>(none)</p>"
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]

    def cell(v):
        if isinstance(v, float):
            return f"{v:.{digits}g}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(k, ''))}</td>" for k in keys) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def image(run: Run, path: Path | str | None, caption: str = "") -> str:
    if not path:
        return ""
    rel = Path(path).resolve().relative_to(run.path.resolve())
    cap = f"<div class=muted>{html.escape(caption)}</div>" if caption else ""
    return f'<figure><img src="{html.escape(str(rel))}" alt="{html.escape(caption)}">{cap}</figure>'


def write_report(run: Run, title: str, sections: list[tuple[str, str]]) -> Path:
    cfg = run.config
    meta = {k: cfg.get(k) for k in ("task", "recgen_version", "git_commit", "created", "data_fingerprint")
            if k in cfg}
    parts = [f"<h1>{html.escape(title)}</h1>", f"<p class=muted>{html.escape(str(run.path))}</p>", table(meta)]
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
    parts.append("<h2>Configuration</h2>" + table(cfg.get("options", {})))
    doc = f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>" \
          f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>"
    atomic_write(run.path / "report.html", doc)
    return run.path / "report.html"
