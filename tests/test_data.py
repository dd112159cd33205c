import gzip
import pickle
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from recgen.data import build_augment, limit_per_class, load_dataset, read_image, train_val_split
from recgen.data import transforms as T
from recgen.data.sources import load_idx_dir
from recgen.errors import RecgenError


def write_idx(path, arr, gz=True):
    head = struct.pack(">4B", 0, 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = head + arr.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def test_fashion_mnist_named():
    ds = load_dataset("fashion-mnist", "test")
    assert ds.x.shape == (10000, 28, 28, 1) and ds.num_classes == 10
    assert ds.classes[9] == "ankle boot" and np.all(ds.class_counts() == 1000)


def test_digits_resized():
    ds = load_dataset("digits")
    assert ds.x.shape[1:] == (28, 28, 1) and ds.x.max() > 200 and ds.num_classes == 10
    test = load_dataset("digits", "test")
    assert len(ds) + len(test) == 1797


def test_image_folder_mixed_sizes_modes_and_junk(image_folder):
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable file\(s\): .*broken.png"):
        ds = load_dataset(str(image_folder), size=16, channels=3)
    assert ds.x.shape == (18, 16, 16, 3) and ds.classes == ["circle", "noise", "square"]
    gray = load_dataset(str(image_folder), size=12, channels=1)
    assert gray.x.shape == (18, 12, 12, 1)


def test_npz_and_bad_keys(tmp_path, npz_file):
    ds = load_dataset(str(npz_file))
    assert ds.x.shape == (40, 16, 16, 1) and ds.num_classes == 4
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((3, 4, 4), np.uint8), labels=np.zeros(3))
    with pytest.raises(RecgenError, match=r"bad.npz: .npz must hold arrays 'x' .* found \['images', 'labels'\]"):
        load_dataset(str(bad))
    mism = tmp_path / "mism.npz"
    np.savez(mism, x=np.zeros((3, 4, 4), np.uint8), y=np.zeros(2))
    with pytest.raises(RecgenError, match="3 images in 'x' but 2 labels"):
        load_dataset(str(mism))


def test_idx_folder_truncated_and_mismatch(tmp_path):
    d = tmp_path / "idx"
    d.mkdir()
    x = np.random.default_rng(0).integers(0, 255, (20, 8, 8))
    write_idx(d / "train-images-idx3-ubyte.gz", x)
    write_idx(d / "train-labels-idx1-ubyte.gz", np.arange(20) % 3)
    ds = load_dataset(str(d))
    assert ds.x.shape == (20, 8, 8, 1) and np.array_equal(ds.x[..., 0], x)
    write_idx(d / "train-labels-idx1-ubyte.gz", np.arange(19) % 3)
    with pytest.raises(RecgenError, match="20 images but 19 labels"):
        load_idx_dir(d, "train", None, "idx")
    raw = gzip.decompress((d / "train-images-idx3-ubyte.gz").read_bytes())
    (d / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw[:-50]))
    with pytest.raises(RecgenError, match="truncated"):
        load_dataset(str(d))


def test_cifar_batches_and_malicious_pickle(tmp_path):
    d = tmp_path / "cifar"
    d.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("data_batch_1", 12), ("test_batch", 5)):
        with open(d / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8), b"labels": [i % 10 for i in range(n)]}, f)
    ds = load_dataset(str(d))
    assert ds.x.shape == (12, 32, 32, 3) and ds.classes[0] == "airplane"
    assert len(load_dataset(str(d), "test")) == 5

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(d / "data_batch_1", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": [0]}, f)
    with pytest.raises(RecgenError, match="builtins.print is not allowed"):
        load_dataset(str(d))


def test_empty_and_unknown(tmp_path, image_folder):
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    (empty / "a" / "x.png").write_bytes(b"junk")
    with pytest.raises(RecgenError, match="no readable images"):
        load_dataset(str(empty))
    with pytest.raises(RecgenError, match="Did you mean fashion-mnist"):
        load_dataset("fashion-mnst")


def test_decompression_bomb_refused(tmp_path):
    p = tmp_path / "bomb.png"
    Image.new("L", (8000, 6000)).save(p)  # 48 Mpx, above recgen's 40 Mpx limit, tiny on disk
    with pytest.raises(RecgenError, match="too large"):
        read_image(p)


def test_split_is_seeded_and_stratified():
    ds = limit_per_class(load_dataset("fashion-mnist", "test"), 50, seed=0)
    a, va = train_val_split(ds, 0.2, seed=3)
    b, vb = train_val_split(ds, 0.2, seed=3)
    _, vc = train_val_split(ds, 0.2, seed=4)
    assert np.array_equal(va.y, vb.y) and np.array_equal(va.x, vb.x) and not np.array_equal(va.x, vc.x)
    assert np.all(va.class_counts() == 10) and len(a) == 400


def test_functional_ops():
    x = torch.zeros(1, 1, 8, 8)
    x[..., 0, 0] = 1.0
    assert T.flip(x)[..., 0, 7] == 1.0
    assert T.crop(T.pad(x, 2), 2, 2, 8, 8).equal(x)
    assert T.resize(x, 16).shape == (1, 1, 16, 16)
    r = T.rotate(torch.ones(1, 1, 9, 9), 90.0)
    assert r.shape == (1, 1, 9, 9) and r[0, 0, 4, 4] > 0.99
    assert T.translate(x, 1.0, 0.0)[..., 0, 1] > 0.99
    assert T.adjust_brightness(torch.full((1, 1, 2, 2), 0.5), 3.0).max() == 1.0
    assert torch.allclose(T.normalize(torch.full((1, 2, 2), 0.5), 0.5, 0.25), torch.zeros(1, 2, 2))
    with pytest.raises(RecgenError, match="outside"):
        T.crop(x, 5, 5, 8, 8)


def test_augment_seeded_and_unknown():
    x = torch.rand(16, 1, 28, 28)
    aug = build_augment("flip+crop+affine+jitter+erase+noise")
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    c = aug(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert 0.0 <= a.min() and a.max() <= 1.0
    with pytest.raises(RecgenError, match="unknown 'blur'"):
        build_augment("flip+blur")
