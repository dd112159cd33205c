"""Fetch Fashion-MNIST from its official source with SHA-256 checks and atomic placement.

The checksums are of the *decompressed* IDX payloads, so a mirror that re-gzips the files (as Debian's
dataset-fashion-mnist package does) verifies as well as the originals.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from recgen.errors import RecgenError
from recgen.files import mkstemp_readable

FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_SHA256 = {  # sha256 of the gunzipped file: (digest, size in bytes)
    "train-images-idx3-ubyte.gz": ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016),
    "train-labels-idx1-ubyte.gz": ("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008),
    "t10k-images-idx3-ubyte.gz": ("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016),
    "t10k-labels-idx1-ubyte.gz": ("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008),
}


def payload_sha256(path: Path, limit: int) -> str:
    """sha256 of the gunzipped content, reading at most `limit` + 1 bytes (a gzip bomb cannot blow up memory)."""
    h, seen = hashlib.sha256(), 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            seen += len(chunk)
            if seen > limit:
                raise RecgenError(f"{path.name}: decompresses past the expected {limit} bytes")
            h.update(chunk)
    return h.hexdigest()


def download_fashion_mnist(dest: str | os.PathLike, base_url: str = FASHION_MNIST_URL, timeout: float = 60.0,
                           files: dict[str, tuple[str, int]] = FASHION_MNIST_SHA256) -> Path:
    """Download each file to a temp file in `dest`, verify it, then rename into place. Existing verified files are
    kept. A failed check deletes the temp file and leaves nothing half-written."""
    dest = Path(dest)
    if not base_url.startswith(("http://", "https://", "file:")):
        raise RecgenError(f"url must start with http://, https:// or file:, got {base_url!r}")
    created = [p for p in (dest, *dest.parents) if not p.exists()]  # innermost first
    dest.mkdir(parents=True, exist_ok=True)
    try:
        _fetch(dest, base_url, timeout, files)
    except BaseException:
        for p in created:  # leave behind no empty folder this call made
            if any(p.iterdir()):
                break
            p.rmdir()
        raise
    return dest


def _fetch(dest: Path, base_url: str, timeout: float, files: dict[str, tuple[str, int]]) -> None:
    for name, (digest, size) in files.items():
        final = dest / name
        if final.is_file():
            try:
                if payload_sha256(final, size) == digest:
                    continue
            except (OSError, RecgenError, EOFError):
                pass
        fd, tmp = mkstemp_readable(dest, prefix=f".{name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(base_url.rstrip("/") + "/" + name,
                                                                     timeout=timeout) as resp:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
            try:
                got = payload_sha256(Path(tmp), size)
            except (OSError, EOFError, gzip.BadGzipFile) as e:
                raise RecgenError(f"{name}: downloaded file is not valid gzip ({e})") from None
            if got != digest:
                raise RecgenError(f"{name}: checksum mismatch (sha256 {got[:12]}..., expected {digest[:12]}...)")
            os.replace(tmp, final)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise RecgenError(f"{name}: download from {base_url} failed ({e})") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
