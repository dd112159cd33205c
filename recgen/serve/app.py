"""`recgen serve`: the REST API and a small web UI over the run directories under one root.

Routes use the CLI's task words and modes: /api/runs, /api/classify/predict, /api/generate/sample,
/api/detect/predict and /api/restore/TASK (every task of recgen.restore.config.TASKS), with the CLI's
option names as parameters. Run paths are resolved inside the root only; user mistakes come back as HTTP
4xx with a one-line `detail`, and parameters a route (or a restore task's command) does not take are refused
(422), not ignored. The routes are plain functions, so FastAPI runs the model work in its thread pool instead
of on the event loop. Who may call and what a request may cost are app-wide middlewares (security.py: Host,
Origin, token; limits.py: body size, concurrency, files, pixels).
"""

from __future__ import annotations

import base64
import io
import json
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from fastapi import Depends, FastAPI, File, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from PIL import Image

import recgen
from recgen.errors import RecgenError
from recgen.restore.config import TASKS
from recgen.serve.docs import mount_docs
from recgen.serve.limits import BodyLimit, Concurrency, Limits, UploadBudget
from recgen.serve.models import SampleRequest
from recgen.serve.security import Guard, allowed_hosts, check_token
from recgen.serve.ui import mount_ui

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


def _file_b64(path: str | Path) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode()


def _uploads(files: list[UploadFile], folder: Path,
             budget: UploadBudget) -> list[tuple[str, Path, np.ndarray]]:
    """Each upload checked (the request's file and pixel budget, then a readable image), saved in `folder` ->
    (name the user gave, path, image). Saved names keep the suffix (read_image goes by it) and a counter: two
    uploads named alike both count."""
    from recgen.data import read_image
    from recgen.restore.files import safe_name

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, f in enumerate(files):
        name = f.filename or f"#{i}"
        data = f.file.read(budget.limits.max_file_bytes + 1)
        budget.take(name, data)
        path = folder / f"{i:03d}-{safe_name(Path(name).stem)}{Path(name).suffix.lower() or '.img'}"
        path.write_bytes(data)
        try:
            image = read_image(path)
        except RecgenError as e:
            raise HTTPException(400, str(e).replace(str(path), name)) from None
        out.append((name, path, image))
    return out


def _known_params(request: Request) -> None:
    """422 for a query parameter or form field the route does not take: a misspelt option must not be
    silently ignored (FastAPI drops unknown ones). JSON bodies refuse theirs by `extra="forbid"`."""
    route = request.scope.get("route")
    if route is None or not hasattr(route, "dependant") or not request.url.path.startswith("/api/"):
        return  # the page and the docs take what a browser appends
    deps, fields = [route.dependant], {"query_params": set(), "body_params": set()}
    while deps:  # the route's own parameters and those of its dependencies
        d = deps.pop()
        deps += d.dependencies
        for kind, names in fields.items():
            names |= {p.alias for p in getattr(d, kind)}
    for where, given, known in [("query parameter", request.query_params, fields["query_params"]),
                                ("form field", getattr(request, "_form", None) or {}, fields["body_params"])]:
        unknown = sorted(set(given) - known)
        if unknown:
            raise HTTPException(422, f"unknown {where} {', '.join(map(repr, unknown))}; this route takes "
                                     f"{', '.join(sorted(known)) or 'none'}")


def _one_line(exc: RequestValidationError) -> str:
    """Pydantic's errors as one line ("body.n: Input should be ..."), without echoing the input (which may be
    NaN, not valid JSON to send back)."""
    return "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in exc.errors())


def _like_image(b64: str, budget: UploadBudget) -> np.ndarray:
    """`like` of a sample request: base64 of an image file -> uint8 (H, W, C), limited as uploads are."""
    import binascii

    if len(b64) > budget.limits.max_file_bytes * 4 // 3 + 4:
        raise HTTPException(413, f"like: larger than {budget.limits.max_file_bytes / 2**20:g} MiB")
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, "like: not base64 (send the image file's bytes, base64-encoded)") from None
    with tempfile.TemporaryDirectory() as tmp:
        return _uploads([UploadFile(io.BytesIO(data), filename="like")], Path(tmp), budget)[0][2]


class _Served:
    """The runs under the root as the routes reach them: a run named in a request located inside the root, its
    model loaded by its task's own `load` and kept for later calls, and user mistakes as 400s."""

    def __init__(self, root: Path):
        self.root = root
        self.cached = lru_cache(maxsize=16)(self._load)

    def bad(self, e: RecgenError) -> HTTPException:
        """A user mistake as a 400, with run paths relative to the root (the server's folders are its own)."""
        return HTTPException(400, str(e).replace(f"{self.root}/", ""))

    def locate(self, run: str) -> Path:
        """A run folder inside the root (the task's own loader checks its task: a wrong one is a 400)."""
        root = self.root
        if len(run) > 400 or any(ord(ch) < 32 or ord(ch) == 127 for ch in run):
            raise HTTPException(400, "run: a run folder as /api/runs lists it, without control characters")
        try:
            p = (root / run).resolve()
        except (OSError, ValueError) as e:
            raise HTTPException(400, f"run {run!r}: not a usable path ({e})") from None
        if root not in p.parents and p != root:
            raise HTTPException(400, f"run {run!r} lies outside the runs root")
        cfg = p / "config.yaml"
        if not cfg.is_file():
            raise HTTPException(404, f"no run at {run!r} (list them at /api/runs)")
        return p

    @staticmethod
    def _load(task: str, path: str):
        import importlib

        return importlib.import_module(f"recgen.{task}").load(path)

    def loaded(self, task: str, path: str):
        """A run's model by its task's own `load` (which checks the run's task), kept for later calls. A run
        whose files the loader cannot take (an unknown key in model.json, a wrong type) is a 400 naming it."""
        try:
            return self.cached(task, path)
        except RecgenError:
            raise
        except (TypeError, ValueError, KeyError) as e:
            raise HTTPException(400, f"run {Path(path).relative_to(self.root)}: cannot be loaded ({e})") from None


def _upload_routes(app: FastAPI, served: _Served, limits: Limits) -> None:
    """The routes that take image uploads: classify and detect predict (restore: _restore_route)."""
    locate, loaded, bad = served.locate, served.loaded, served.bad

    @app.post("/api/classify/predict")
    def classify_predict(run: str = Query(...), topk: int = Query(3, ge=1, le=100),
                         files: list[UploadFile] = File(...)):
        path = locate(run)
        with tempfile.TemporaryDirectory() as tmp:
            saved = _uploads(files, Path(tmp), UploadBudget(limits))
        try:
            clf = loaded("classify", str(path))
            x = np.stack([clf.prepare(im[None])[0] for _, _, im in saved])
            results = clf.predict(x, topk=topk)
        except RecgenError as e:
            raise bad(e) from None
        for r, (name, _, _) in zip(results, saved):
            r["input"] = name
        return results

    @app.post("/api/detect/predict")
    def detect_predict(run: str = Query(...), min_score: float = Query(0.3, ge=0.0, le=1.0),
                       files: list[UploadFile] = File(...)):
        """Boxes in each image's own pixels, and the image drawn with them (base64 PNG)."""
        path = locate(run)
        with tempfile.TemporaryDirectory() as tmp:
            saved = _uploads(files, Path(tmp), UploadBudget(limits))
            try:
                detector = loaded("detect", str(path))
                results = detector.predict([str(p) for _, p, _ in saved], min_score=min_score,
                                           out=Path(tmp) / "drawn")
            except RecgenError as e:
                raise bad(e) from None
            for r, (name, _, _) in zip(results, saved):
                r["input"] = name
                r["drawing_png_base64"] = _file_b64(r.pop("drawing"))
        return results


@lru_cache(maxsize=1)
def restore_options() -> dict[str, list[str]]:
    """Each restoring task -> the options its `recgen restore TASK` command takes (recgen.restore.cli)."""
    from recgen.restore.cli import task_options

    return task_options()


def _restore_route(app: FastAPI, served: _Served, limits: Limits) -> None:
    """/api/restore/TASK for every task of recgen.restore.config.TASKS, each taking its command's options."""

    @app.post("/api/restore/{task}")
    def restore_images(request: Request, task: Literal[TASKS], run: str = Query(...),
                       files: list[UploadFile] = File(...), mask: UploadFile | None = File(None),
                       mask_kind: str = Query("box"), ratio: float = Query(0.25), sigma: float = Query(0.0),
                       scale: int = Query(2), quality: int = Query(20, ge=1, le=100),
                       simulate: bool = Query(False), method: str = Query("auto"),
                       steps: int = Query(0, ge=0, le=1000), seed: int = Query(0, ge=0),
                       baselines: bool = Query(True), ensemble: int = Query(1)):
        """`recgen restore TASK` on the uploads, with the options that command takes (others are refused):
        per image the restored PNG (and each classical baseline's), PSNR/SSIM where the ground truth is known
        (`simulate`, drawn masks), a grid."""
        from recgen.restore.files import restore_files

        takes = restore_options()[task]
        extra = sorted(set(request.query_params) - {"run", *takes}) + \
            (["mask"] if mask is not None and "mask" not in takes else [])
        if extra:
            raise HTTPException(422, f"{task} does not take {', '.join(extra)}; it takes {', '.join(takes)}")
        path = served.locate(run)
        with tempfile.TemporaryDirectory() as tmp:
            budget = UploadBudget(limits)
            saved = _uploads(files, Path(tmp), budget)
            masks = _uploads([mask], Path(tmp) / "mask", budget) if mask is not None else []
            mask_path = str(masks[0][1]) if masks else None
            try:
                model = served.loaded("restore", str(path))
                s = restore_files(model, task, [str(p) for _, p, _ in saved], Path(tmp) / "out",
                                  mask=mask_path, mask_kind=mask_kind, ratio=ratio, sigma=sigma, scale=scale,
                                  quality=quality, simulate=simulate, method=method, steps=steps, seed=seed,
                                  baselines=baselines, ensemble=ensemble)
            except RecgenError as e:
                msg = str(e)
                for name, p, _ in saved + masks:  # the uploads by the names they came with, not the server's files
                    msg = msg.replace(str(p), name)
                raise served.bad(RecgenError(msg.replace(f"{tmp}/", ""))) from None
            images = [{"input": name, **{f"{m}_png_base64": _file_b64(paths[i])
                                         for m, paths in s["images"].items()}}
                      for i, (name, _, _) in enumerate(saved)]
            grid = _file_b64(s["grid"]) if s["grid"] else None
        rows = [{**r, "input": name} for r, (name, _, _) in zip(s["per_image"], saved)]
        return {"task": task, "model": s["model"], "n": s["n"], "per_image": rows, "mean": s.get("mean"),
                "images": images, "grid_png_base64": grid}


def create_app(root: str | Path = "runs", token: str | None = None, bind: str = "127.0.0.1",
               allow_hosts: Sequence[str] = (), limits: Limits | None = None) -> FastAPI:
    """The app over the runs under `root`. `token`: required on every route when given; Host headers answered:
    loopback names, `bind` (the address served on) and `allow_hosts` ('*': any); `limits`: see Limits."""
    check_token(token)
    limits = limits or Limits()
    root = Path(root).resolve()
    app = FastAPI(title="recgen", version=recgen.__version__, dependencies=[Depends(_known_params)],
                  docs_url=None, redoc_url=None,  # /docs: served offline by mount_docs
                  description="Image recognition and generation: the REST face of the `recgen` command.")
    app.state.root, app.state.limits = root, limits
    # added innermost first: the Guard sees every request before anything is read or queued
    app.add_middleware(Concurrency, limit=limits.concurrency, queue=limits.queue,
                       timeout=limits.queue_timeout, pause=limits.busy_pause,
                       heavy=lambda scope: scope["method"] == "POST" and scope["path"].startswith("/api/"))
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(Guard, token=token, hosts=allowed_hosts(bind, list(allow_hosts)))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _one_line(exc)}, status_code=422)

    @app.exception_handler(RecgenError)
    async def user_mistake(request: Request, exc: RecgenError):
        return JSONResponse({"detail": bad(exc).detail}, status_code=400)

    served = _Served(root)
    bad, locate, loaded = served.bad, served.locate, served.loaded
    _upload_routes(app, served, limits)
    _restore_route(app, served, limits)

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

    @app.post("/api/generate/sample")
    def generate_sample(req: SampleRequest):
        path = locate(req.run)
        like = _like_image(req.like, UploadBudget(limits)) if req.like is not None else None
        try:
            gen = loaded("generate", str(path))
            x, y = gen.sample(req.options(like=like))
        except RecgenError as e:
            raise bad(e) from None
        return {"n": len(x), "labels": None if y is None else y.tolist(), "grid_png_base64": _png(x)}

    @app.get("/basic", response_class=HTMLResponse)
    def ui():
        return PAGE.replace("/*RESTORE*/{}", json.dumps(restore_options()))

    @app.get("/", include_in_schema=False)
    def home():
        return RedirectResponse("/ui/")

    mount_docs(app)
    mount_ui(app, locate, loaded, runs)
    return app


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
<section><h2>Detect</h2>
<label>run <select id=drun></select></label>
<label>images <input type=file id=dfiles multiple accept="image/*"></label>
<label>min score <input id=dmin type=number value=0.3 min=0 max=1 step=0.05></label>
<button id=dgo>detect</button><pre id=dout></pre><div id=dimgs></div></section>
<section><h2>Restore</h2>
<label>run <select id=rrun></select></label>
<label>task <select id=rtask></select></label>
<label>images <input type=file id=rfiles multiple accept="image/*"></label>
<label>mask (inpaint; white = missing; else a drawn box) <input type=file id=rmask accept="image/*"></label>
<label>noise std (denoise; 0 = estimate) <input id=rsigma type=number value=0 min=0 max=1 step=0.05></label>
<label>scale (superres) <input id=rscale type=number value=2 min=2 max=4></label>
<label>JPEG quality (jpeg: what simulate compresses at)
 <input id=rquality type=number value=20 min=1 max=100></label>
<label>self-ensemble (restorer runs: flips and rotations averaged)
 <select id=rensemble><option>1<option>2<option>4<option>8</select></label>
<label>inputs are clean: corrupt, then score <input id=rsim type=checkbox></label>
<button id=rgo>restore</button><pre id=rout></pre><img id=rimg width=448></section>
<script>
const $=id=>document.getElementById(id);
const RESTORE=/*RESTORE*/{};  // task -> the options its `recgen restore TASK` command takes
for(const t in RESTORE){const o=document.createElement('option');o.textContent=t;$('rtask').appendChild(o)}
async function runs(){const r=await (await fetch('/api/runs')).json();
 const pick={crun:x=>x.task==='classify',grun:x=>x.task==='generate',drun:x=>x.task==='detect',
  rrun:x=>x.task==='restore'||(x.task==='generate'&&x.model==='diffusion')};
 for(const [sel,f] of Object.entries(pick)){const s=$(sel);s.innerHTML='';
  r.filter(f).forEach(x=>{const o=document.createElement('option');o.value=o.textContent=x.run;
   s.appendChild(o)})}}
function form(id){const fd=new FormData();for(const f of $(id).files) fd.append('files',f);return fd}
async function post(url,fd){const r=await fetch(url,{method:'POST',body:fd});return [r.ok,await r.json()]}
$('cgo').onclick=async()=>{const q=new URLSearchParams({run:$('crun').value});
 const [ok,j]=await post('/api/classify/predict?'+q,form('cfiles'));
 $('cout').textContent=ok?JSON.stringify(j,null,1):j.detail};
$('ggo').onclick=async()=>{const body={run:$('grun').value,n:+$('gn').value,seed:+$('gseed').value};
 if($('gclass').value)body['class']=$('gclass').value;if($('gprompt').value)body.prompt=$('gprompt').value;
 const r=await fetch('/api/generate/sample',
  {method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify(body)});
 const j=await r.json();$('gout').textContent=r.ok?'labels: '+JSON.stringify(j.labels):j.detail;
 if(r.ok)$('gimg').src='data:image/png;base64,'+j.grid_png_base64};
$('dgo').onclick=async()=>{const q=new URLSearchParams({run:$('drun').value,min_score:$('dmin').value});
 const [ok,j]=await post('/api/detect/predict?'+q,form('dfiles'));$('dimgs').innerHTML='';
 if(!ok){$('dout').textContent=j.detail;return}
 $('dout').textContent=j.map(r=>r.input+': '+r.detections.map(d=>d.class+' '+d.score).join(', ')).join('\\n');
 for(const r of j){const im=document.createElement('img');im.width=300;
  im.src='data:image/png;base64,'+r.drawing_png_base64;$('dimgs').appendChild(im)}};
$('rgo').onclick=async()=>{const fd=form('rfiles'),task=$('rtask').value,takes=RESTORE[task];
 if($('rmask').files.length&&takes.includes('mask'))fd.append('mask',$('rmask').files[0]);
 const q=new URLSearchParams({run:$('rrun').value});
 const given={sigma:$('rsigma').value,scale:$('rscale').value,quality:$('rquality').value,
  ensemble:$('rensemble').value,simulate:$('rsim').checked};
 for(const [k,v] of Object.entries(given))if(takes.includes(k))q.set(k,v);
 const [ok,j]=await post('/api/restore/'+task+'?'+q,fd);
 $('rout').textContent=ok?j.model+(j.mean?'\\n'+JSON.stringify(j.mean):''):j.detail;
 $('rimg').src=ok&&j.grid_png_base64?'data:image/png;base64,'+j.grid_png_base64:''};
runs();</script></body></html>"""
