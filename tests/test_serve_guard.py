"""The server under attack and overload: token, Host and Origin checks, body size refused while streaming,
the concurrency limit, per-request file and pixel limits, 4xx (never 500) for malformed input, parameters
refused or honoured, thread-safe image reading, and a small loopback load test."""

import asyncio
import base64
import io
import json
import shutil
import socket
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from conftest import cli
from fastapi.testclient import TestClient
from PIL import Image

from recgen import classify, generate
from recgen.serve.app import _png, create_app
from recgen.serve.limits import Limits
from recgen.serve.security import check_bind, is_loopback

URL = "http://127.0.0.1:8000"
TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    classify.train(model="cnn", data="digits", epochs=1, limit=20, stem_width=8, widths="16,32", blocks="0,1",
                   threads=1, out=str(root))
    generate.train(model="vae", data="digits", epochs=1, max_steps=3, base=8, latent_dim=4, threads=1,
                   out=str(root))
    return root


@pytest.fixture(scope="module")
def client(root):
    return TestClient(create_app(root), base_url=URL)


def png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


IMAGE = png(np.full((28, 28), 128, np.uint8))
CLASSIFY = {"url": "/api/classify/predict", "params": {"run": "classify/cnn-1"}}


def classify_post(c, n=1, data=IMAGE, params=(), **kw):
    return c.post(CLASSIFY["url"], params={**CLASSIFY["params"], **dict(params)},
                  files=[("files", (f"{i}.png", data, "image/png")) for i in range(n)], **kw)


# -------------------------------------------------------------------------------------------- who may call
def test_token_required_on_every_route_and_accepted(root):
    c = TestClient(create_app(root, token=TOKEN), base_url=URL)
    for path in ["/api/health", "/api/runs", "/", "/docs", "/openapi.json"]:
        r = c.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
    assert classify_post(c).status_code == 401
    assert c.get("/api/runs", headers={"authorization": "Bearer wrong-token-xyz"}).status_code == 401
    assert c.get("/api/runs", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert classify_post(c, headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    # a browser: the link with ?token= sets a cookie, and the page's own requests then carry it
    r = c.get("/", params={"token": TOKEN}, follow_redirects=False)  # "/" sends the browser on to the UI
    assert r.status_code in (200, 307) and "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers[
        "set-cookie"]
    assert c.get("/api/runs").status_code == 200
    assert classify_post(c, params={"token": TOKEN}).status_code == 200  # not "unknown"


def test_beyond_loopback_needs_a_token(root):
    for host in ["0.0.0.0", "::", "10.1.2.3"]:
        r = cli("serve", "--root", root, "--host", host)
        assert r.exit_code == 2 and r.output.strip().startswith("error:") and "--token" in r.output
        assert len(r.output.strip().splitlines()) == 1
        check_bind(host, TOKEN)  # with a token it may
    assert cli("serve", "--root", root, "--token", "short").exit_code == 2
    assert all(is_loopback(h) for h in ["127.0.0.1", "127.0.0.9", "localhost", "::1", "[::1]"])
    assert not any(is_loopback(h) for h in ["0.0.0.0", "::", "192.168.1.4", "no-such-host.invalid"])


def test_cli_defaults_are_the_servers():
    import inspect

    from recgen.cli import serve

    d = {k: v.default for k, v in inspect.signature(serve).parameters.items()}
    lim = Limits()
    assert (d["max_files"], d["max_pixels"], d["max_upload_mb"] * 2**20, d["concurrency"], d["queue"]) == \
        (lim.max_files, lim.max_pixels, lim.max_body_bytes, lim.concurrency, lim.queue)


@pytest.mark.parametrize("host,ok", [("127.0.0.1:8000", True), ("localhost:8000", True), ("[::1]:8000", True),
                                     ("evil.example", False), ("evil.example:8000", False),
                                     ("127.0.0.1.evil.example", False), ("", False)])
def test_host_header_checked_against_dns_rebinding(client, host, ok):
    r = client.get("/api/runs", headers={"host": host})
    assert r.status_code == (200 if ok else 400)
    assert ok or "--allow-host" in r.json()["detail"]


def test_allow_host_extends_the_hosts(root):
    c = TestClient(create_app(root, allow_hosts=["box.lan"]), base_url=URL)
    assert c.get("/api/runs", headers={"host": "box.lan:8000"}).status_code == 200
    assert c.get("/api/runs", headers={"host": "other.lan"}).status_code == 400
    c = TestClient(create_app(root, allow_hosts=["*"]), base_url=URL)
    assert c.get("/api/runs", headers={"host": "other.lan"}).status_code == 200


@pytest.mark.parametrize("headers,code", [({"origin": "http://evil.example"}, 403), ({"origin": "null"}, 403),
                                          ({"origin": "http://127.0.0.1:9999"}, 403),
                                          ({"sec-fetch-site": "cross-site"}, 403),
                                          ({"origin": URL}, 200), ({"sec-fetch-site": "same-origin"}, 200),
                                          ({}, 200)])
def test_cross_site_posts_refused(client, headers, code):
    """A form on another site posting to the server (the browser adds Origin) is refused before it runs."""
    r = classify_post(client, headers=headers)
    assert r.status_code == code
    form = client.post("/api/generate/sample", data={"run": "generate/vae-1"}, headers=headers)
    assert form.status_code == (403 if code == 403 else 422)


# ------------------------------------------------------------------------------------------ what it may cost
def asgi_call(app, scope_headers, chunks):
    """Drive the ASGI app directly with a body arriving in chunks; -> (status, chunks the app pulled)."""
    pulled, out = [0], {}
    it = iter(chunks)

    async def receive():
        chunk = next(it, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled[0] += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(msg):
        if msg["type"] == "http.response.start":
            out["status"] = msg["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/api/classify/predict", "raw_path": b"/api/classify/predict",
             "root_path": "", "query_string": b"run=classify/cnn-1", "server": ("127.0.0.1", 8000),
             "client": ("127.0.0.1", 5000),
             "headers": [(b"host", b"127.0.0.1:8000"), *scope_headers]}
    asyncio.run(app(scope, receive, send))
    return out["status"], pulled[0]


def test_oversize_body_refused_while_streaming(root):
    """A 1 GiB upload is cut off once past the limit: the app pulls about limit / chunk chunks, not 16,384."""
    app = create_app(root, limits=Limits(max_body_bytes=2**20))
    chunk = b"x" * 2**16
    head = (b"--B\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n")
    body = (head if i == 0 else chunk for i in range(2**14))  # 1 GiB, chunked (no Content-Length)
    status, pulled = asgi_call(app, [(b"content-type", b"multipart/form-data; boundary=B")], body)
    assert status == 413 and pulled <= 2**20 // 2**16 + 2
    # a declared length over the limit: refused before a single byte is read
    status, pulled = asgi_call(app, [(b"content-type", b"multipart/form-data; boundary=B"),
                                     (b"content-length", str(2**30).encode())], iter(()))
    assert (status, pulled) == (413, 0)
    c = TestClient(app, base_url=URL)
    r = classify_post(c, data=b"x" * (2**20 + 1))
    assert r.status_code == 413 and "MiB" in r.json()["detail"]


def test_concurrency_limit_answers_503_with_retry_after(root):
    """One slot and a queue of one: with a request holding the slot, of three more one waits and two are
    refused with Retry-After; light routes still answer."""
    app = create_app(root, limits=Limits(concurrency=1, queue=1))
    entered, release = threading.Event(), threading.Event()

    @app.post("/api/slow")
    def slow():
        entered.set()
        release.wait(30)
        return {"ok": True}

    with TestClient(app, base_url=URL) as c, ThreadPoolExecutor(4) as pool:
        first = pool.submit(c.post, "/api/slow")
        assert entered.wait(30)
        rest = [pool.submit(c.post, "/api/slow") for _ in range(3)]
        deadline = time.time() + 30
        while sum(f.done() for f in rest) < 2 and time.time() < deadline:
            time.sleep(0.02)
        busy = [f.result() for f in rest if f.done()]
        assert len(busy) == 2 and not first.done()  # refused while the slot is still held
        assert all(r.status_code == 503 and int(r.headers["retry-after"]) >= 1 for r in busy)
        assert all("busy" in r.json()["detail"] for r in busy)
        assert c.get("/api/health").status_code == 200  # light routes are not queued
        release.set()
        assert sorted(f.result().status_code for f in [first, *rest]) == [200, 200, 503, 503]


def test_files_and_pixels_per_request(root):
    c = TestClient(create_app(root, limits=Limits(max_files=3, max_pixels=100 * 100)), base_url=URL)
    assert classify_post(c, n=3).status_code == 200
    r = classify_post(c, n=4)
    assert r.status_code == 413 and "at most 3 files" in r.json()["detail"]
    r = classify_post(c, data=png(np.zeros((101, 100), np.uint8)))
    assert r.status_code == 413 and "10,100 pixels" in r.json()["detail"]
    # the size comes from the header: a 9000x9000 PNG of a few KB is never decoded
    big = io.BytesIO()
    Image.new("1", (9000, 9000)).save(big, format="PNG")
    r = classify_post(c, data=big.getvalue())
    assert r.status_code == 413 and "9000x9000" in r.json()["detail"]
    r = classify_post(c, n=3, data=png(np.zeros((60, 60), np.uint8)))  # 3 x 3600 over 10,000 in total
    assert r.status_code == 413 and "2.png" in r.json()["detail"]


def test_read_image_changes_nothing_process_wide(tmp_path, monkeypatch):
    """PIL's MAX_IMAGE_PIXELS and the warning filters are process-wide: changing them per call races between
    the server's threads, so the size check must be the call's own."""
    from recgen.data import read_image

    p = tmp_path / "a.png"
    p.write_bytes(IMAGE)
    seen, real_open = [], Image.open

    def spy(*a, **k):
        seen.append((Image.MAX_IMAGE_PIXELS, list(warnings.filters)))
        return real_open(*a, **k)

    monkeypatch.setattr(Image, "open", spy)
    before = (Image.MAX_IMAGE_PIXELS, list(warnings.filters))
    read_image(p)
    assert seen == [before]


# ------------------------------------------------------------------------------------ malformed input is 4xx
def test_nul_byte_in_run_is_4xx(client):
    for run in ["classify/cnn-1\x00", "a\x00b", "x" * 5000]:
        r = client.post(CLASSIFY["url"], params={"run": run}, files=[("files", ("a.png", IMAGE))])
        assert r.status_code == 400 and "run" in r.json()["detail"]
    r = client.post("/api/generate/sample", json={"run": "generate/vae-1\x00"})
    assert r.status_code == 400


@pytest.mark.parametrize("body", ['{"run": "generate/vae-1", "guidance": NaN}',
                                  '{"run": "generate/vae-1", "n": NaN}',
                                  '{"run": "generate/vae-1", "temperature": Infinity}',
                                  '{"run": "generate/vae-1", "strength": -Infinity}'])
def test_nan_in_json_is_422(client, body):
    r = client.post("/api/generate/sample", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and "body." in detail


def test_unknown_key_in_a_served_model_json_is_4xx(root, tmp_path):
    bad = tmp_path / "runs"
    shutil.copytree(root / "generate", bad / "generate")
    meta = json.loads((bad / "generate/vae-1/model.json").read_text())
    meta["args"]["bogus"] = 1
    (bad / "generate/vae-1/model.json").write_text(json.dumps(meta))
    r = TestClient(create_app(bad), base_url=URL).post("/api/generate/sample", json={"run": "generate/vae-1"})
    assert r.status_code == 400 and "generate/vae-1" in r.json()["detail"] and "bogus" in r.json()["detail"]


# --------------------------------------------------------------------------- parameters: honoured or refused
def test_unknown_parameters_refused(client):
    r = client.post("/api/generate/sample", json={"run": "generate/vae-1", "temprature": 2})
    assert r.status_code == 422 and "temprature" in r.json()["detail"]
    r = classify_post(client, params={"temperature": 2})
    assert r.status_code == 422 and "'temperature'" in r.json()["detail"] and "topk" in r.json()["detail"]
    r = client.post(CLASSIFY["url"], params=CLASSIFY["params"], data={"like": "x"},
                    files=[("files", ("a.png", IMAGE))])
    assert r.status_code == 422 and "'like'" in r.json()["detail"]


def test_temperature_and_like_honoured_as_on_the_cli(client, root):
    """The API's temperature / like / strength give what GeneratorRun.sample gives (the CLI's meaning)."""
    gen = generate.load(root / "generate/vae-1")
    like = np.asarray(Image.open(io.BytesIO(IMAGE)))[..., None]
    b64 = base64.b64encode(IMAGE).decode()
    for extra, kw in [({"temperature": 3.0}, {"temperature": 3.0}),
                      ({"like": b64, "strength": 0.3}, {"like": like, "strength": 0.3})]:
        body = {"run": "generate/vae-1", "n": 4, "seed": 5, **extra}
        got = client.post("/api/generate/sample", json=body).json()
        x, y = gen.sample(4, seed=5, **kw)
        assert got["grid_png_base64"] == _png(x) and got["labels"] == y.tolist()
        plain = client.post("/api/generate/sample", json={"run": "generate/vae-1", "n": 4, "seed": 5}).json()
        assert plain["grid_png_base64"] != got["grid_png_base64"]
    r = client.post("/api/generate/sample", json={"run": "generate/vae-1", "like": "not base64!"})
    assert r.status_code == 400 and "like" in r.json()["detail"]


# -------------------------------------------------------------------------------- over real HTTP (uvicorn)
@pytest.fixture(scope="module")
def live(root):
    """The app under uvicorn on a free loopback port, with a token and a 1 MiB body limit -> its port."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(root, token=TOKEN, limits=Limits(max_body_bytes=2**20))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started
    yield port
    server.should_exit = True
    thread.join(10)


def test_loopback_load_no_errors(live):
    """8 clients x 10 requests over real HTTP, health and classify alternating: every answer a 200."""
    def client_(k):
        codes = []
        with httpx.Client(base_url=f"http://127.0.0.1:{live}", timeout=30,
                          headers={"authorization": f"Bearer {TOKEN}"}) as h:
            for i in range(10):
                r = h.get("/api/health") if (i + k) % 2 else h.post(
                    CLASSIFY["url"], params=CLASSIFY["params"], files=[("files", ("a.png", IMAGE))])
                codes.append(r.status_code)
        return codes

    with ThreadPoolExecutor(8) as pool:
        codes = [code for codes in pool.map(client_, range(8)) for code in codes]
    assert codes == [200] * 80


def test_chunked_upload_cut_off_over_http(live):
    """A chunked upload with no end: the server answers 413 and closes after about the limit, instead of
    reading (and spooling) everything; the client finds it cannot send more long before 64 MiB."""
    s = socket.create_connection(("127.0.0.1", live), timeout=10)
    s.sendall(b"POST /api/classify/predict?run=classify/cnn-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Authorization: Bearer " + TOKEN.encode() + b"\r\nTransfer-Encoding: chunked\r\n"
              b"Content-Type: multipart/form-data; boundary=B\r\n\r\n")
    part = b'--B\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n\r\n'
    s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
    chunk, sent = b"x" * 2**16, 0
    try:
        while sent < 64 * 2**20:
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        answer = b""
    except OSError:  # the server closed the connection
        answer = b""
    try:
        answer = s.recv(4096)
    except OSError:  # closed with unread data: a reset may arrive before the answer
        pass
    s.close()
    assert sent < 32 * 2**20  # socket buffers take some megabytes; a server reading on would take all 64
    assert answer == b"" or answer.startswith(b"HTTP/1.1 413")
