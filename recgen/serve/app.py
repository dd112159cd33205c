"""`recgen serve`: the REST API and a small web UI over the run directories under one root.

Routes use the CLI's task words and modes: /api/runs, /api/classify/predict, /api/generate/sample. Run paths are
resolved inside the root only; user mistakes come back as HTTP 4xx with a one-line `detail`.
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from fastapi import FastAPI, File, HTTPException, Query, UploadFile
from fastapi.responses import HTMLResponse
from PIL import Image
from pydantic import BaseModel, Field

import recgen
from recgen.errors import RecgenError

MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_SAMPLES = 256


class SampleRequest(BaseModel):
    run: str = Field(description="generator run directory, relative to the runs root")
    n: int = Field(16, ge=1, le=MAX_SAMPLES)
    class_: str | None = Field(None, alias="class", description="class name or index")
    prompt: str | None = None
    seed: int = 0
    sampler: str | None = None
    steps: int | None = None
    guidance: float | None = None


def _png(images: np.ndarray) -> str:
    """uint8 (N, H, W, C) -> one base64 PNG grid (8 per row)."""
    n, h, w, c = images.shape
    cols = min(8, n)
    rows = -(-n // cols)
    grid = np.zeros((rows * h, cols * w, c), np.uint8)
    for i, im in enumerate(images):
        r, k = divmod(i, cols)
        grid[r * h:(r + 1) * h, k * w:(k + 1) * w] = im
    buf = io.BytesIO()
    Image.fromarray(grid[..., 0] if c == 1 else grid).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def create_app(root: str | Path = "runs") -> FastAPI:
    root = Path(root).resolve()
    app = FastAPI(title="recgen", version=recgen.__version__,
                  description="Image recognition and generation: the REST face of the `recgen` command.")

    def locate(run: str, task: str) -> Path:
        p = (root / run).resolve()
        if root not in p.parents and p != root:
            raise HTTPException(400, f"run {run!r} lies outside the runs root")
        cfg = p / "config.yaml"
        if not cfg.is_file():
            raise HTTPException(404, f"no run at {run!r} (list them at /api/runs)")
        return p

    @lru_cache(maxsize=8)
    def classifier(path: str):
        from recgen import classify

        return classify.load(path)

    @lru_cache(maxsize=4)
    def generator(path: str):
        from recgen import generate

        return generate.load(path)

    @app.get("/api/health")
    def health():
        import torch

        return {"status": "ok", "recgen": recgen.__version__, "device": "cuda" if torch.cuda.is_available() else "cpu"}

    @app.get("/api/runs")
    def runs():
        import yaml

        out = []
        for cfg in sorted(root.glob("*/*/config.yaml")):
            try:
                doc = yaml.safe_load(cfg.read_text()) or {}
            except yaml.YAMLError:
                continue
            opts = doc.get("options", {})
            out.append({"run": str(cfg.parent.relative_to(root)), "task": doc.get("task"),
                        "model": opts.get("model"), "data": opts.get("data"), "created": doc.get("created")})
        return out

    @app.post("/api/classify/predict")
    async def classify_predict(run: str = Query(...), topk: int = Query(3, ge=1, le=100),
                               files: list[UploadFile] = File(...)):
        path = locate(run, "classify")
        images, names = [], []
        for f in files:
            data = await f.read(MAX_UPLOAD_BYTES + 1)
            if len(data) > MAX_UPLOAD_BYTES:
                raise HTTPException(413, f"{f.filename}: larger than {MAX_UPLOAD_BYTES // 2**20} MiB")
            try:
                images.append(_decode(data, f.filename or "upload"))
            except RecgenError as e:
                raise HTTPException(400, str(e)) from None
            names.append(f.filename or f"#{len(names)}")
        try:
            clf = classifier(str(path))
            x = np.stack([clf.prepare(im[None])[0] for im in images])
            results = clf.predict(x, topk=topk)
        except RecgenError as e:
            raise HTTPException(400, str(e)) from None
        for r, name in zip(results, names):
            r["input"] = name
        return results

    @app.post("/api/generate/sample")
    def generate_sample(req: SampleRequest):
        path = locate(req.run, "generate")
        try:
            x, y = generator(str(path)).sample(req.n, class_=req.class_, prompt=req.prompt, seed=req.seed,
                                               sampler=req.sampler, steps=req.steps, guidance=req.guidance)
        except RecgenError as e:
            raise HTTPException(400, str(e)) from None
        return {"n": len(x), "labels": None if y is None else y.tolist(), "grid_png_base64": _png(x)}

    @app.get("/", response_class=HTMLResponse)
    def ui():
        return PAGE

    return app


def _decode(data: bytes, name: str) -> np.ndarray:
    import tempfile

    from recgen.data import read_image

    with tempfile.NamedTemporaryFile(suffix=Path(name).suffix or ".img") as tmp:
        tmp.write(data)
        tmp.flush()
        return read_image(Path(tmp.name))


PAGE = """<!doctype html><html><head><meta charset=utf-8><title>recgen</title>
<style>body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;padding:0 1em}
section{border:1px solid #ddd;border-radius:6px;padding:1em;margin:1em 0}label{display:block;margin:.3em 0}
input,select{margin-left:.5em}pre{background:#f6f6f6;padding:.5em;white-space:pre-wrap}img{image-rendering:pixelated}
</style></head><body><h1>recgen</h1>
<section><h2>Classify</h2>
<label>run <select id=crun></select></label><label>images <input type=file id=cfiles multiple accept="image/*"></label>
<button id=cgo>predict</button><pre id=cout></pre></section>
<section><h2>Generate</h2>
<label>run <select id=grun></select></label><label>class <input id=gclass placeholder="ankle boot"></label>
<label>prompt <input id=gprompt placeholder="a pair of running shoes"></label>
<label>n <input id=gn type=number value=16 min=1 max=256></label><label>seed <input id=gseed type=number value=0></label>
<button id=ggo>sample</button><pre id=gout></pre><img id=gimg width=448></section>
<script>
async function runs(){const r=await (await fetch('/api/runs')).json();
 for(const [sel,task] of [['crun','classify'],['grun','generate']]){const s=document.getElementById(sel);s.innerHTML='';
  r.filter(x=>x.task===task).forEach(x=>{const o=document.createElement('option');o.value=o.textContent=x.run;s.appendChild(o)})}}
document.getElementById('cgo').onclick=async()=>{const fd=new FormData();
 for(const f of document.getElementById('cfiles').files) fd.append('files',f);
 const run=encodeURIComponent(document.getElementById('crun').value);
 const r=await fetch('/api/classify/predict?run='+run,{method:'POST',body:fd});
 document.getElementById('cout').textContent=JSON.stringify(await r.json(),null,1)};
document.getElementById('ggo').onclick=async()=>{const v=id=>document.getElementById(id).value;
 const body={run:v('grun'),n:+v('gn'),seed:+v('gseed')};if(v('gclass'))body['class']=v('gclass');if(v('gprompt'))body.prompt=v('gprompt');
 const r=await fetch('/api/generate/sample',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify(body)});
 const j=await r.json();document.getElementById('gout').textContent=r.ok?'labels: '+JSON.stringify(j.labels):j.detail;
 if(r.ok)document.getElementById('gimg').src='data:image/png;base64,'+j.grid_png_base64};
runs();</script></body></html>"""
