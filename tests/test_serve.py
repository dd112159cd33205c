"""REST API over real runs: predictions, samples, detections, restorations, and 4xx for user mistakes."""

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from recgen import classify, detect, generate, restore
from recgen.serve.app import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    classify.train(model="cnn", data="digits", epochs=1, limit=20, stem_width=8, widths="16,32", blocks="0,1",
                   threads=1, out=str(root))
    generate.train(model="vae", data="digits", epochs=1, max_steps=3, base=8, latent_dim=4, threads=1, out=str(root))
    detect.train(data="digits", canvas=64, min_size=16, max_size=32, train_scenes=32, test_scenes=8, epochs=1,
                 widths="8,16,16,24", blocks="0,1,0,0", neck=16, batch_size=16, threads=1, out=str(root),
                 score_threshold=0.0, max_detections=5)  # an untrained net still returns boxes to check
    restore.train(task="inpaint", data="digits", epochs=1, max_steps=10, batch_size=32, widths="8,16,16",
                  limit=30, threads=1, out=str(root))
    for task in ("jpeg", "oldphoto"):  # the photo restorers' tasks, as tiny as the inpainter
        restore.train(task=task, data="digits", epochs=1, max_steps=3, batch_size=32, widths="8,16,16",
                      limit=30, threads=1, out=str(root))
    return TestClient(create_app(root), base_url="http://127.0.0.1")  # a Host the server answers


def png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


GREY = png(np.full((28, 28), 128, np.uint8))


def upload(run, name="a.png", data=GREY, **params):
    return dict(params={"run": run, **params}, files=[("files", (name, data, "image/png"))])


def test_health_runs_and_ui(client):
    assert client.get("/api/health").json()["status"] == "ok"
    runs = {r["run"]: r["task"] for r in client.get("/api/runs").json()}
    assert runs == {"classify/cnn-1": "classify", "generate/vae-1": "generate",
                    "detect/centernet-1": "detect", "restore/inpaint-1": "restore",
                    "restore/jpeg-1": "restore", "restore/oldphoto-1": "restore"}
    assert "<h1>recgen</h1>" in client.get("/basic").text
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 307 and home.headers["location"] == "/ui/"
    assert client.get("/ui/").status_code == 200
    docs = client.get("/docs").text  # Swagger UI from this server, not a CDN
    assert "/docs-assets/swagger-ui-bundle.js" in docs and "https://" not in docs
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200


def test_classify_predict(client):
    files = [("files", ("a.png", png(np.zeros((40, 40), np.uint8)), "image/png")),
             ("files", ("b.png", png(np.full((28, 28, 3), 200, np.uint8)), "image/png"))]
    r = client.post("/api/classify/predict", params={"run": "classify/cnn-1", "topk": 2}, files=files)
    assert r.status_code == 200
    res = r.json()
    assert [x["input"] for x in res] == ["a.png", "b.png"] and len(res[0]["top"]) == 2


def test_generate_sample_is_seeded(client):
    body = {"run": "generate/vae-1", "n": 10, "class": "3", "seed": 7}
    a, b = client.post("/api/generate/sample", json=body).json(), client.post("/api/generate/sample", json=body).json()
    assert a["labels"] == [3] * 10 and a["grid_png_base64"] == b["grid_png_base64"]
    im = Image.open(io.BytesIO(base64.b64decode(a["grid_png_base64"])))
    assert im.size == (8 * 28, 2 * 28)


def decode(b64):
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def test_detect_predict_in_each_images_own_pixels(client):
    """The API finds what the library finds, with boxes in each upload's own pixels and the drawing beside."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (64, 64), np.uint8), rng.integers(0, 255, (50, 90, 3), np.uint8)]
    files = [("files", (name, png(im), "image/png")) for name, im in zip(["scene.png", "wide.png"], images)]
    r = client.post("/api/detect/predict", params={"run": "detect/centernet-1", "min_score": 0}, files=files)
    assert r.status_code == 200
    res = r.json()
    assert [(x["input"], x["width"], x["height"]) for x in res] == [("scene.png", 64, 64),
                                                                     ("wide.png", 90, 50)]
    run = detect.load(client.app.state.root / "detect/centernet-1")
    for got, im in zip(res, images):
        want = run.predict(im[None] if im.ndim == 3 else im[None, ..., None], min_score=0.0, draw=False)[0]
        assert len(got["detections"]) == 5 and got["detections"] == want["detections"]
        w, h = got["width"], got["height"]
        boxes = [d["box"] for d in got["detections"]]
        assert all(0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h for x1, y1, x2, y2 in boxes)
        assert decode(got["drawing_png_base64"]).shape[-1] == 3  # the image drawn with its boxes


def test_restore_matches_the_cli_path(client, tmp_path):
    """The API restores as `recgen restore inpaint --simulate` does, baselines and scores included."""
    x = np.asarray(load_digits_image())
    (tmp_path / "in.png").write_bytes(png(x))
    files = [("files", ("seven.png", png(x), "image/png"))]
    r = client.post("/api/restore/inpaint", params={"run": "restore/inpaint-1", "simulate": True, "seed": 3},
                    files=files)
    assert r.status_code == 200
    res = r.json()
    ref = restore.restore_files(str(client.app.state.root / "restore/inpaint-1"), "inpaint",
                                [str(tmp_path / "in.png")], tmp_path / "out", simulate=True, seed=3)
    assert res["per_image"][0]["recgen_psnr"] == ref["per_image"][0]["recgen_psnr"]
    assert res["per_image"][0]["input"] == "seven.png" and res["mean"] == ref["mean"]
    img = res["images"][0]
    assert set(img) == {"input"} | {f"{m}_png_base64" for m in ref["images"]}  # recgen and every baseline
    want = np.asarray(Image.open(ref["images"]["recgen"][0]))
    assert np.array_equal(decode(img["recgen_png_base64"]), want)
    assert decode(res["grid_png_base64"]).ndim >= 2


def test_restore_with_an_uploaded_mask(client):
    x = np.asarray(load_digits_image())
    m = np.zeros_like(x)
    m[:, :4] = 255  # the left four columns are missing
    r = client.post("/api/restore/inpaint", params={"run": "restore/inpaint-1", "baselines": False},
                    files=[("files", ("a.png", png(x), "image/png")),
                           ("mask", ("m.png", png(m), "image/png"))])
    assert r.status_code == 200
    res = r.json()
    assert "recgen_psnr" not in res["per_image"][0]  # no ground truth for a user's own mask
    assert list(res["images"][0]) == ["input", "recgen_png_base64"]
    assert decode(res["images"][0]["recgen_png_base64"]).shape[:2] == x.shape


@pytest.mark.parametrize("task,options", [("jpeg", {"quality": 12}), ("oldphoto", {})])
def test_photo_restorer_tasks_match_the_cli_path(client, tmp_path, task, options):
    """/api/restore/jpeg and /oldphoto restore as `recgen restore jpeg|oldphoto --simulate` does."""
    x = np.asarray(load_digits_image())
    (tmp_path / "in.png").write_bytes(png(x))
    r = client.post(f"/api/restore/{task}", params={"run": f"restore/{task}-1", "simulate": True, "seed": 5,
                                                     **options},
                    files=[("files", ("seven.png", png(x), "image/png"))])
    assert r.status_code == 200, r.text
    res = r.json()
    run = str(client.app.state.root / f"restore/{task}-1")
    ref = restore.restore_files(run, task, [str(tmp_path / "in.png")], tmp_path / "out", simulate=True,
                                seed=5, **options)
    assert res["task"] == task and res["model"] == f"restorer U-Net ({task})"
    assert res["per_image"][0]["recgen_psnr"] == ref["per_image"][0]["recgen_psnr"]
    assert res["mean"] == ref["mean"]
    got = decode(res["images"][0]["recgen_png_base64"])
    assert np.array_equal(got, np.asarray(Image.open(ref["images"]["recgen"][0]))) and got.shape == x.shape


def test_jpeg_quality_reaches_the_restorer(client):
    """`quality` is the CLI's option: a harsher simulated JPEG leaves less to recover than a mild one."""
    x = np.asarray(load_digits_image())

    def psnr(q):
        r = client.post("/api/restore/jpeg", params={"run": "restore/jpeg-1", "simulate": True, "quality": q},
                        files=[("files", ("a.png", png(x), "image/png"))])
        assert r.status_code == 200, r.text
        return r.json()["per_image"][0]["recgen_psnr"]

    assert psnr(5) < psnr(95)


def test_ensemble_reaches_the_restorer(client):
    """`ensemble` is the CLI's option: the mean of flipped copies is another restoration of the same image."""
    x = np.asarray(load_digits_image())
    got = []
    for k in (1, 8):
        r = client.post("/api/restore/jpeg", params={"run": "restore/jpeg-1", "simulate": True, "ensemble": k},
                        files=[("files", ("a.png", png(x), "image/png"))])
        assert r.status_code == 200, r.text
        got.append(decode(r.json()["images"][0]["recgen_png_base64"]))
    assert got[0].shape == got[1].shape == x.shape and not np.array_equal(got[0], got[1])


def test_restore_a_decoded_jpeg_file(client):
    """A real .jpg upload (no ground truth): restored at its own size, nothing scored."""
    buf = io.BytesIO()
    rgb = np.random.default_rng(0).integers(0, 255, (40, 56, 3), np.uint8)
    Image.fromarray(rgb).save(buf, format="JPEG", quality=15)
    r = client.post("/api/restore/jpeg", params={"run": "restore/jpeg-1"},
                    files=[("files", ("photo.jpg", buf.getvalue(), "image/jpeg"))])
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["per_image"][0]["input"] == "photo.jpg" and "recgen_psnr" not in res["per_image"][0]
    out = decode(res["images"][0]["recgen_png_base64"])
    assert out.shape == (40, 56, 3)  # a grey run restores each colour channel


def test_pages_offer_every_restore_task_with_its_cli_options(client):
    """The plain page and the Gradio UI list the tasks of recgen.restore.config.TASKS; the page sends each
    task only the options its `recgen restore TASK` command takes; the UI's restore runs jpeg."""
    import json
    import re

    from recgen.restore.cli import task_options
    from recgen.restore.config import TASKS

    page = client.get("/basic").text
    table = json.loads(re.search(r"const RESTORE=(\{.*?\});", page).group(1))
    assert list(table) == list(TASKS) and table == task_options()
    assert table["jpeg"] == ["quality", "simulate", "seed", "ensemble"]
    assert table["oldphoto"] == ["simulate", "seed", "ensemble"]
    blocks = next(r.app for r in client.app.routes if getattr(r, "path", "") == "/ui").get_blocks()
    radio = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "restore-task")
    assert [c[1] for c in radio.choices] == list(TASKS)
    fn = next(f.fn for f in blocks.fns.values() if getattr(f.fn, "__name__", "") == "restore")
    x = np.asarray(load_digits_image())
    editor = {"background": x[..., None].repeat(3, -1), "layers": [], "composite": x[..., None].repeat(3, -1)}
    (before, after), gallery, table = fn("restore/jpeg-1", editor, "jpeg", "box", 0.25, 0, 2, 10, 0, True)
    assert after.shape[:2] == x.shape and list(table["method"]) == ["recgen"] and "recgen_psnr" in table
    (_, aged), _, table = fn("restore/oldphoto-1", editor, "oldphoto", "box", 0.25, 0, 2, 10, 3, True)
    assert aged.shape[:2] == x.shape and "recgen_psnr" in table


def load_digits_image():
    from recgen.data import load_dataset

    return load_dataset("digits", "test").x[0, ..., 0]


@pytest.mark.parametrize("method,url,kw,code,text", [
    ("post", "/api/classify/predict", upload("nope/x-1", data=b"x"), 404, "no run"),
    ("post", "/api/classify/predict", upload("../../etc", data=b"x"), 400, "outside"),
    ("post", "/api/classify/predict", upload("classify/cnn-1", data=b"not an image"), 400, "not a readable image"),
    ("post", "/api/generate/sample", dict(json={"run": "generate/vae-1", "class": "cat"}), 400, "unknown class"),
    ("post", "/api/generate/sample", dict(json={"run": "generate/vae-1", "n": 0}), 422, ""),
    ("post", "/api/generate/sample", dict(json={"run": "classify/cnn-1"}), 400, "classify"),
    ("post", "/api/detect/predict", upload("classify/cnn-1"), 400, "classify"),
    ("post", "/api/detect/predict", upload("detect/centernet-1", name="bad.png", data=b"x"), 400, "bad.png"),
    ("post", "/api/restore/sharpen", upload("restore/inpaint-1"), 422, ""),
    ("post", "/api/restore/inpaint", upload("classify/cnn-1"), 400, "cannot restore"),
    ("post", "/api/restore/denoise", upload("restore/inpaint-1"), 400, "trained to inpaint"),
    ("post", "/api/restore/inpaint", upload("restore/inpaint-1", mask_kind="blob"), 400, "mask kind"),
    ("post", "/api/restore/jpeg", upload("restore/inpaint-1"), 400, "trained to inpaint, not to jpeg"),
    ("post", "/api/restore/oldphoto", upload("restore/jpeg-1"), 400, "trained to jpeg, not to oldphoto"),
    ("post", "/api/restore/denoise", upload("restore/oldphoto-1"), 400, "trained to oldphoto, not to"),
    ("post", "/api/restore/jpeg", upload("generate/vae-1"), 400, "generator run"),
    ("post", "/api/restore/jpeg", upload("restore/jpeg-1", quality=0), 422, "quality"),
    ("post", "/api/restore/jpeg", upload("restore/jpeg-1", quality=101, simulate=True), 422, "quality"),
    ("post", "/api/restore/jpeg", upload("restore/jpeg-1", sigma=0.1), 422, "jpeg does not take sigma"),
    ("post", "/api/restore/jpeg", upload("restore/jpeg-1", ensemble=3), 400, "ensemble must be one of 1, 2, 4, 8"),
    ("post", "/api/restore/oldphoto", upload("restore/oldphoto-1", quality=20), 422, "does not take quality"),
    ("post", "/api/restore/denoise", upload("restore/inpaint-1", quality=20), 422, "does not take quality"),
    ("post", "/api/restore/jpeg", dict(params={"run": "restore/jpeg-1"},
                                       files=[("files", ("a.png", GREY, "image/png")),
                                              ("mask", ("m.png", GREY, "image/png"))]),
     422, "does not take mask"),
    ("post", "/api/restore/oldphoto", upload("restore/oldphoto-1", name="o.jpg", data=b"x"), 400, "o.jpg:"),
])
def test_user_mistakes_are_4xx(client, method, url, kw, code, text):
    r = getattr(client, method)(url, **kw)
    assert r.status_code == code
    assert text in str(r.json()["detail"]) and "\n" not in str(r.json()["detail"])


def test_a_run_of_another_task_names_the_fix(client):
    """A restorer of another task asked to jpeg: the fix is a jpeg restorer (no diffusion run does jpeg)."""
    r = client.post("/api/restore/jpeg", **upload("restore/oldphoto-1"))
    assert r.status_code == 400
    assert r.json()["detail"] == ("restore/oldphoto-1: this restorer was trained to oldphoto, not to jpeg; "
                                  "train one with `recgen restore train --task jpeg`")


def test_jpeg_quality_out_of_range_is_refused_by_the_library_too(client, tmp_path):
    """What the CLI and the web UI call: a quality outside 1-100 is a user mistake even without --simulate."""
    from recgen.errors import RecgenError

    (tmp_path / "a.png").write_bytes(png(np.full((28, 28), 90, np.uint8)))
    for q in (0, 101):
        with pytest.raises(RecgenError, match="quality must be a JPEG quality from 1 to 100"):
            restore.restore_files(str(client.app.state.root / "restore/jpeg-1"), "jpeg",
                                  [str(tmp_path / "a.png")], tmp_path / "out", quality=q)
    assert not (tmp_path / "out").exists()
