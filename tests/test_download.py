"""The real download code against a loopback HTTP server started by the test."""

import gzip
import hashlib
import http.server
import threading
from functools import partial

import pytest

from recgen.data.download import FASHION_MNIST_SHA256, download_fashion_mnist
from recgen.data.sources import SYSTEM_FASHION_DIR, load_idx_dir
from recgen.errors import RecgenError


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def small_files(root):
    files = {}
    for name, payload in (("a.gz", b"hello idx" * 100), ("b.gz", b"labels")):
        (root / name).write_bytes(gzip.compress(payload))
        files[name] = (hashlib.sha256(payload).hexdigest(), len(payload))
    return files


def test_download_verifies_and_places(server, tmp_path):
    root, url = server
    files = small_files(root)
    dest = download_fashion_mnist(tmp_path / "dl", url, files=files)
    assert sorted(p.name for p in dest.iterdir()) == ["a.gz", "b.gz"]  # no temp files left behind


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    root, url = server
    files = small_files(root)
    files["b.gz"] = ("0" * 64, files["b.gz"][1])
    with pytest.raises(RecgenError, match="b.gz: checksum mismatch"):
        download_fashion_mnist(tmp_path / "dl", url, files=files)
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["a.gz"]


def test_missing_file_is_a_clear_error(server, tmp_path):
    root, url = server
    with pytest.raises(RecgenError, match="download from .* failed"):
        download_fashion_mnist(tmp_path / "dl", url, files={"nope.gz": ("0" * 64, 1)})


@pytest.mark.skipif(not SYSTEM_FASHION_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_checksums(server, tmp_path):
    """Serve the real files over loopback and verify them against the checksums shipped in recgen."""
    root, url = server
    for name in FASHION_MNIST_SHA256:
        (root / name).write_bytes((SYSTEM_FASHION_DIR / name).read_bytes())
    dest = download_fashion_mnist(tmp_path / "fm", url)
    ds = load_idx_dir(dest, "test", None, "fm")
    assert ds.x.shape == (10000, 28, 28, 1)


def test_loading_finds_a_download_in_its_default_folder(tmp_path, monkeypatch):
    """`recgen data download fashion-mnist` writes ./data/fashion-mnist: loading must look there without flags."""
    from recgen.data.sources import DOWNLOAD_DIR, IDX_FILES, fashion_mnist_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECGEN_DATA", raising=False)
    dest = tmp_path / DOWNLOAD_DIR / "fashion-mnist"
    dest.mkdir(parents=True)
    (dest / (IDX_FILES["train"][0] + ".gz")).write_bytes(b"")
    assert fashion_mnist_dir().resolve() == dest
