"""report.html: one self-describing page per run (config, metrics, plots). Images are linked relative to the run
directory so the folder can be moved or zipped whole."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from recgen.runs import Run, atomic_write

CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}img{max-width:100%;margin:.3em 0}h2{border-bottom:1px solid #ddd;padding-bottom:.2em}
.muted{color:#777;font-size:12px}"""


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
