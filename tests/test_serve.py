"""REST API over real runs: predictions, samples, and 4xx for user mistakes."""

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from recgen import classify, generate
from recgen.serve.app import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    classify.train(model="cnn", data="digits", epochs=1, limit=20, stem_width=8, widths="16,32", blocks="0,1",
                   threads=1, out=str(root))
    generate.train(model="vae", data="digits", epochs=1, max_steps=3, base=8, latent_dim=4, threads=1, out=str(root))
    return TestClient(create_app(root))


def png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_health_runs_and_ui(client):
    assert client.get("/api/health").json()["status"] == "ok"
    runs = {r["run"]: r["task"] for r in client.get("/api/runs").json()}
    assert runs == {"classify/cnn-1": "classify", "generate/vae-1": "generate"}
    assert "<h1>recgen</h1>" in client.get("/").text


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


@pytest.mark.parametrize("method,url,kw,code,text", [
    ("post", "/api/classify/predict", dict(params={"run": "nope/x-1"},
                                            files=[("files", ("a.png", b"x", "image/png"))]), 404, "no run"),
    ("post", "/api/classify/predict", dict(params={"run": "../../etc"},
                                            files=[("files", ("a.png", b"x", "image/png"))]), 400, "outside"),
    ("post", "/api/classify/predict", dict(params={"run": "classify/cnn-1"},
                                            files=[("files", ("a.png", b"not an image", "image/png"))]), 400,
     "not a readable image"),
    ("post", "/api/generate/sample", dict(json={"run": "generate/vae-1", "class": "cat"}), 400, "unknown class"),
    ("post", "/api/generate/sample", dict(json={"run": "generate/vae-1", "n": 0}), 422, ""),
])
def test_user_mistakes_are_4xx(client, method, url, kw, code, text):
    r = getattr(client, method)(url, **kw)
    assert r.status_code == code
    assert text in str(r.json()["detail"])
