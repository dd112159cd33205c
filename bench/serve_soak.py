"""Soak `recgen serve` on loopback: find the sustainable request rate, hold it, then burst at 4x.

The server runs as its own process (`recgen serve`, default limits, a token) on a free 127.0.0.1 port over a
classifier run (a small CNN trained here on digits unless --run names one). Requests are classify predictions
of one 28x28 PNG each, the server's cheapest model route, so the figures measure the serving path (HTTP,
limits, multipart, decoding, the thread pool) more than the model.

1. calibrate: closed loop, 2 x the server's concurrency clients, --calibrate-seconds; then open-loop probes of
   --probe-seconds from 0.8 x that throughput down by 0.8 each time until one has no 503 and p99 under
   --p99-ms: the sustainable rate.
2. soak: open loop at the sustainable rate for --seconds (requests sent on a fixed schedule whatever the
   answers, latency counted from the scheduled time, so a stalled server shows up as latency, not as a slower
   schedule).
3. burst: open loop at 4x for --burst-seconds: the queue fills and the excess should be 503 + Retry-After.
Reported: requests/s, p50/p99 latency, errors (anything but 200 and, in the burst, 503), 503s, server RSS
before, after the soak and after the burst. Prints JSON and, unless --no-record, writes the record
bench/results/serve-soak-<date>.json (`python bench/render_benchmarks.py` then puts it on docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from recgen.machine import machine, write_record

HERE = Path(__file__).resolve().parent
BURST = 4


def figures(res: dict) -> dict:
    """The record's headline figures: the sustainable rate, the soak's latency and errors, the burst, memory."""
    soak, burst, rss = res["soak"], res[f"burst_{BURST}x"], res["server_rss_mb"]
    return {"sustainable rate, requests/s": res["sustainable_rate_per_s"], "soak: seconds": soak["seconds"],
            "soak: p50 ms": soak["p50_ms"], "soak: p99 ms": soak["p99_ms"], "soak: errors": soak["errors"],
            f"{BURST}x burst: answered 503": burst["status_503"], f"{BURST}x burst: errors": burst["errors"],
            "server memory before, MB": rss["before"], "server memory after the burst, MB": rss["after_burst"]}


def tiny_classifier(root: Path) -> str:
    from recgen import classify

    classify.train(model="cnn", data="digits", epochs=1, limit=200, threads=1, out=str(root))
    return "classify/cnn-1"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for pid {pid}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Load:
    """Requests to one server from a bounded pool of threads, each with its own keep-alive connection."""

    def __init__(self, url: str, token: str, run: str, workers: int = 256):
        self.url, self.headers, self.params = url, {"authorization": f"Bearer {token}"}, {"run": run}
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (28, 28), np.uint8)).save(buf, format="PNG")
        self.image = buf.getvalue()
        self.local = threading.local()
        self.pool = ThreadPoolExecutor(workers)

    def one(self, scheduled: float) -> tuple[int, float]:
        """(status or -1 for a failed connection, seconds from `scheduled` to the answer)."""
        h = getattr(self.local, "client", None)
        if h is None:
            h = self.local.client = httpx.Client(base_url=self.url, headers=self.headers, timeout=120)
        try:
            r = h.post("/api/classify/predict", params=self.params, files=[("files", ("a.png", self.image))])
            status = r.status_code
        except httpx.HTTPError:
            status = -1
        return status, time.perf_counter() - scheduled

    def closed(self, clients: int, seconds: float) -> dict:
        """Each client sends its next request when the last is answered."""
        end = time.perf_counter() + seconds

        def client(_):
            out = []
            while time.perf_counter() < end:
                out.append(self.one(time.perf_counter()))
            return out

        start = time.perf_counter()
        results = [r for rs in self.pool.map(client, range(clients)) for r in rs]
        return summary(results, time.perf_counter() - start)

    def open(self, rate: float, seconds: float) -> dict:
        """Requests at fixed times, `rate` a second, for `seconds`, whatever the answers."""
        start = time.perf_counter()
        futures = []
        for i in range(int(rate * seconds)):
            t = start + i / rate
            time.sleep(max(0.0, t - time.perf_counter()))
            futures.append(self.pool.submit(self.one, t))
        results = [f.result() for f in futures]
        return summary(results, time.perf_counter() - start)


def summary(results: list[tuple[int, float]], seconds: float) -> dict:
    codes = [c for c, _ in results]
    ok = np.array([s for c, s in results if c == 200])
    pct = (lambda q: round(float(np.percentile(ok, q)) * 1000, 1)) if len(ok) else (lambda q: None)
    return {"requests": len(results), "seconds": round(seconds, 1), "ok_per_s": round(len(ok) / seconds, 2),
            "p50_ms": pct(50), "p99_ms": pct(99), "status_503": codes.count(503),
            "errors": sum(c not in (200, 503) for c in codes)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=None, help="a classifier run folder (default: train one on digits)")
    p.add_argument("--seconds", type=float, default=120, help="soak length at the sustainable rate")
    p.add_argument("--burst-seconds", type=float, default=20, help=f"burst length at {BURST}x that rate")
    p.add_argument("--calibrate-seconds", type=float, default=15)
    p.add_argument("--probe-seconds", type=float, default=10)
    p.add_argument("--p99-ms", type=float, default=1000, help="a sustainable rate keeps p99 under this")
    p.add_argument("--concurrency", type=int, default=2, help="the server's --concurrency")
    p.add_argument("--queue", type=int, default=8, help="the server's --queue")
    p.add_argument("--out", default=str(HERE / "results"), help="where the record goes")
    p.add_argument("--no-record", dest="record", action="store_false", help="print the figures, write no record")
    a = p.parse_args(argv)
    tmp = tempfile.TemporaryDirectory()
    if a.run:
        run = Path(a.run).resolve()
        root, name = run.parent.parent, str(run.relative_to(run.parent.parent))
    else:
        root = Path(tmp.name)
        name = tiny_classifier(root)
    port, token = free_port(), secrets.token_urlsafe(16)
    env = {**os.environ, "RECGEN_TOKEN": token}
    log = open(Path(tmp.name) / "server.log", "w+b")  # noqa: SIM115 -- not a pipe: a full pipe stalls
    cmd = [sys.executable, "-m", "recgen", "serve", "--root", str(root), "--host", "127.0.0.1", "--port",
           str(port), "--concurrency", str(a.concurrency), "--queue", str(a.queue)]
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                auth = {"authorization": f"Bearer {token}"}
                if httpx.get(f"{url}/api/health", headers=auth).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            log.seek(0)
            raise SystemExit(f"server did not start: {log.read().decode()[-2000:]}")
        load = Load(url, token, name)
        load.closed(2, 3)  # warm-up: the model loaded and cached, connections open
        rss = {"before": rss_mb(server.pid)}
        calib = load.closed(2 * a.concurrency, a.calibrate_seconds)
        rate, probes = 0.8 * calib["ok_per_s"], []
        for _ in range(6):
            if not rate:
                raise SystemExit(f"no request succeeded while calibrating: {calib}")
            probes.append({"rate_per_s": round(rate, 2), **load.open(rate, a.probe_seconds)})
            if probes[-1]["status_503"] == probes[-1]["errors"] == 0 and probes[-1]["p99_ms"] <= a.p99_ms:
                break
            rate *= 0.8
        rate = round(rate, 2)
        soak = load.open(rate, a.seconds)
        rss["after_soak"] = rss_mb(server.pid)
        burst = load.open(BURST * rate, a.burst_seconds)
        rss["after_burst"] = rss_mb(server.pid)
        after = load.closed(2, 3)
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        tmp.cleanup()
    res = {"machine": machine(), "server": {"concurrency": a.concurrency, "queue": a.queue},
           "route": "POST /api/classify/predict, one 28x28 PNG", "calibration_closed_loop": calib,
           "probes": probes, "sustainable_rate_per_s": rate, "soak": soak, f"burst_{BURST}x": burst,
           "after_burst": after,
           "server_rss_mb": rss}
    print(json.dumps(res, indent=2), flush=True)
    if a.record:
        print(write_record("serve-soak", "`recgen serve` on loopback: soak at the sustainable rate, then a 4x burst "
                           "(tiny CNN, one 28x28 PNG a request)",
                           " ".join(["python", "bench/serve_soak.py", *(argv if argv is not None else sys.argv[1:])]),
                           figures(res), res, out_dir=a.out))
    return res


if __name__ == "__main__":
    main()
