"""What one request may cost the server: body bytes (refused while streaming), files and pixels per request,
and how many heavy requests run or wait at once.

The middlewares are plain ASGI, so they cover every route of the app, whatever is mounted on it later.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException
from PIL import Image


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 32 * 2**20  # a whole request body; refused as soon as the count passes it (413)
    max_file_bytes: int = 8 * 2**20  # one uploaded file (413)
    max_files: int = 16  # uploaded images per request, masks included (413)
    max_pixels: int = 4 * 2**20  # width x height summed over a request's images, from their headers (413)
    concurrency: int = 2  # heavy requests (model work) running at once; the machine's cores, not more
    queue: int = 8  # heavy requests waiting for a slot; beyond it the answer is 503 with Retry-After
    queue_timeout: float = 30.0  # seconds a request may wait for a slot before its 503
    busy_pause: float = 1.0  # seconds before a 503 leaves (the least Retry-After): retrying at once gains 0


async def reply(send, status: int, detail: str, headers: dict[str, str] | None = None, scope=None) -> None:
    """A whole JSON answer `{"detail": ...}`, sent from a middleware before the app reads the request. A
    request with a body (`scope`) gets `Connection: close`: else the server would read, and discard, all of
    it."""
    body = json.dumps({"detail": detail}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if scope is not None and (header(scope, b"content-length") not in (None, "0")
                              or header(scope, b"transfer-encoding") is not None):
        head.append((b"connection", b"close"))
    head += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def header(scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k == name:
            return v.decode("latin-1")
    return None


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """413 for a body over `max_bytes`: at once from Content-Length, else as soon as the bytes received pass
    it (chunked uploads), so nothing beyond the limit is read, parsed or spooled to disk. Any answer given
    before the body has all arrived closes the connection (else the server would read and discard the
    rest)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        detail = f"request body larger than {self.max_bytes / 2**20:g} MiB"
        close = {"connection": "close"}  # else the server reads and discards the rest of the body
        length = header(scope, b"content-length")
        if length is not None:
            if not length.isdigit():
                why = f"Content-Length must be a whole number, got {length[:40]!r}"
                return await reply(send, 400, why, close)
            if int(length) > self.max_bytes:
                return await reply(send, 413, detail, close)
        seen, over, ours, started = 0, False, False, False
        whole = length in (None, "0") and header(scope, b"transfer-encoding") is None  # no body to come

        async def counted():
            nonlocal seen, over, whole
            msg = await receive()
            if msg["type"] == "http.request":
                whole = whole or not msg.get("more_body", False)
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise BodyTooLarge
            return msg

        async def answer(msg):
            nonlocal ours, started
            if over and not started:  # the app's answer to a cut-off body (a parse error) gives way to 413
                ours = started = True
                return await reply(send, 413, detail, close)
            if ours:
                return
            if msg["type"] == "http.response.start":
                started = True
                if not whole:
                    msg = {**msg, "headers": [*msg.get("headers", []), (b"connection", b"close")]}
            await send(msg)

        try:
            await self.app(scope, counted, answer)
        except BodyTooLarge:
            if not started:
                await reply(send, 413, detail, close)


class Concurrency:
    """At most `limit` heavy requests (`heavy(scope)`) run at once and `queue` more wait, each up to `timeout`
    seconds; any beyond that is answered 503 with Retry-After, so latency stays bounded under overload instead
    of growing with the number of clients. Waiting requests have not been read yet (their bodies stay in the
    socket). The 503 goes out after `pause` seconds: clients that retry at once, ignoring Retry-After, would
    otherwise keep the server busy refusing them, at the expense of the requests it is running."""

    def __init__(self, app, limit: int, queue: int, timeout: float, heavy: Callable[[dict], bool],
                 pause: float = 0.0):
        self.app, self.limit, self.queue, self.timeout, self.heavy = app, limit, queue, timeout, heavy
        self.pause = pause
        self.running = self.waiting = 0
        self.mean_seconds = 1.0  # moving average of a heavy request's time, for Retry-After
        self._sems: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _semaphore(self) -> asyncio.Semaphore:
        # one per event loop: uvicorn has one; a test client may start several
        return self._sems.setdefault(asyncio.get_running_loop(), asyncio.Semaphore(self.limit))

    async def _busy(self, scope, send, why: str):
        wait = max(1, min(60, math.ceil(self.mean_seconds * (self.waiting + 1) / self.limit)))
        await asyncio.sleep(self.pause)
        await reply(send, 503, f"server busy ({why}); retry in {wait} s", {"retry-after": str(wait)}, scope)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.heavy(scope):
            return await self.app(scope, receive, send)
        if self.running + self.waiting >= self.limit + self.queue:
            return await self._busy(scope, send, f"{self.running} running, {self.waiting} waiting")
        sem = self._semaphore()
        self.waiting += 1
        try:
            await asyncio.wait_for(sem.acquire(), self.timeout)
        except TimeoutError:
            return await self._busy(scope, send, f"no slot within {self.timeout:g} s")
        finally:
            self.waiting -= 1
        self.running += 1
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.running -= 1
            sem.release()
            self.mean_seconds = 0.8 * self.mean_seconds + 0.2 * (time.perf_counter() - start)


class UploadBudget:
    """One request's allowance of files and pixels, spent upload by upload. Pixels come from the image header
    (PIL reads the size without decoding), so an image over the budget is refused before it costs memory."""

    def __init__(self, limits: Limits):
        self.limits, self.files, self.pixels = limits, 0, 0

    def take(self, name: str, data: bytes) -> None:
        lim = self.limits
        self.files += 1
        if self.files > lim.max_files:
            raise HTTPException(413, f"at most {lim.max_files} files a request")
        if len(data) > lim.max_file_bytes:
            raise HTTPException(413, f"{name}: larger than {lim.max_file_bytes / 2**20:g} MiB")
        try:
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
        except Image.DecompressionBombError as e:  # past PIL's own hard limit, far beyond any budget here
            raise HTTPException(413, f"{name}: refused, image too large ({e})") from None
        except (OSError, ValueError, SyntaxError):  # not an image: read_image says so in its own words
            return
        self.pixels += w * h
        if self.pixels > lim.max_pixels:
            raise HTTPException(413, f"{name}: {w}x{h} brings this request to {self.pixels:,} pixels; at "
                                     f"most {lim.max_pixels:,} a request (send fewer or smaller images)")
