"""Detection: scenes <-> COCO, the COCO metric, box-consistent augmentation, CenterNet target/decode round trip,
a tiny detector's train/save/load/predict/resume, the classical baseline, bad annotations through the CLI."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import run_cli
from recgen import detect
from recgen.detect.api import load_test
from recgen.detect.augment import augment
from recgen.detect.boxes import nms, tight_box
from recgen.detect.centernet import CenterNetConfig, decode, encode
from recgen.detect.cli import detect_app
from recgen.detect.coco import DetectionSet, read_coco
from recgen.errors import RecgenError
from recgen.export import export

SCENES = dict(data="digits", canvas=64, min_size=16, max_size=32, train_scenes=48, test_scenes=12)
TINY = dict(SCENES, widths="8,16,16,24", blocks="0,1,0,0", neck=16, batch_size=16, epochs=2, threads=1,
            val_fraction=0.25)


def _detections(ds: DetectionSet):
    return [(b, np.ones(len(b)), lab) for b, lab in zip(ds.boxes, ds.labels)]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    out = tmp_path_factory.mktemp("scenes")
    cfg = detect.SceneConfig(out=str(out), max_overlap=0.0, **SCENES)
    return out, detect.write_scenes(cfg), detect.make_scenes(cfg)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return detect.train(out=str(tmp_path_factory.mktemp("runs")), **TINY)


# -------------------------------------------------------------------------------------------------- scenes, COCO
def test_scenes_round_trip_through_coco(scenes):
    out, paths, sets = scenes
    assert set(paths) == {"train", "test"} and (out / "preview.png").is_file()
    for split, ds in sets.items():
        back, report = read_coco(paths[split], size=64)
        assert not report.problems and len(back) == len(ds) == SCENES[f"{split}_scenes"]
        assert np.array_equal(back.images, ds.images) and back.classes == ds.classes
        for a, b, la, lb in zip(back.boxes, ds.boxes, back.labels, ds.labels):
            assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert sets["train"].num_objects >= 48


def test_scene_boxes_are_tight(scenes):
    """Plain background, no overlap: each box is the tight box of the non-zero pixels inside it, and nothing
    outside the boxes is lit."""
    ds = scenes[2]["train"]
    for img, boxes in zip(ds.images, ds.boxes):
        lit = img[..., 0] > 0
        covered = np.zeros_like(lit)
        for x1, y1, x2, y2 in boxes.astype(int):
            assert tight_box(lit[y1:y2, x1:x2]) == (0, 0, x2 - x1, y2 - y1)
            covered[y1:y2, x1:x2] = True
        assert not (lit & ~covered).any()


def test_scenes_are_seeded_and_test_scenes_use_test_objects(tmp_path):
    # objects are flat squares: grey 100 in the train split, 200 in the test split
    sq = np.zeros((20, 12, 12), np.uint8)
    np.savez(tmp_path / "obj.npz", x=sq + 100, y=np.arange(20) % 2)
    np.savez(tmp_path / "obj-test.npz", x=sq + 200, y=np.arange(20) % 2)
    opts = detect.SceneOptions(data=str(tmp_path / "obj.npz"), canvas=48, min_size=8, max_size=16, train_scenes=6,
                               test_scenes=6)
    a, b = detect.make_scenes(opts), detect.make_scenes(detect.SceneOptions(**{**vars(opts), "train_scenes": 3}))
    assert set(np.unique(a["train"].images)) == {0, 100} and set(np.unique(a["test"].images)) == {0, 200}
    assert np.array_equal(a["train"].images[:3], b["train"].images)  # scene i does not depend on the count


def test_bad_annotations_are_reported_or_skipped(scenes, tmp_path):
    out, paths, _ = scenes
    doc = json.loads(paths["train"].read_text())
    doc["annotations"][0]["bbox"] = [60, 60, 30, 30]  # outside the 64x64 image
    doc["annotations"][1]["category_id"] = 99
    doc["images"][2]["file_name"] = "train/missing.png"
    bad = out / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(RecgenError) as e:
        read_coco(bad, size=64)
    msg = str(e.value)
    assert "boxes outside their image" in msg and "unknown category ids" in msg and "missing image files" in msg
    with pytest.warns(UserWarning, match="4 bad entries"):
        ds, report = read_coco(bad, size=64, bad="skip")
    assert len(ds) == 47 and report.problems["boxes outside their image"] == 1
    with pytest.raises(RecgenError, match="not a COCO detection file"):
        (tmp_path / "x.json").write_text("[1, 2]")
        read_coco(tmp_path / "x.json", size=64)


def test_letterboxed_coco_keeps_boxes_in_place(tmp_path):
    from PIL import Image

    img = np.zeros((40, 80), np.uint8)
    img[10:30, 20:50] = 255
    Image.fromarray(img).save(tmp_path / "a.png")
    doc = {"images": [{"id": 7, "file_name": "a.png", "width": 80, "height": 40}],
           "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [20, 10, 30, 20]}],
           "categories": [{"id": 3, "name": "block"}]}
    (tmp_path / "a.json").write_text(json.dumps(doc))
    ds, _ = read_coco(tmp_path / "a.json", size=32)
    assert ds.images.shape == (1, 32, 32, 1) and ds.scales[0] == pytest.approx(0.4)
    assert np.allclose(ds.boxes[0], [[8, 4, 20, 12]]) and ds.category_ids == [3]


# --------------------------------------------------------------------------------------------------------- metric
def test_coco_map_is_one_for_ground_truth_and_lower_for_jitter(scenes):
    ds = scenes[2]["test"]
    m = detect.coco_map(ds, _detections(ds))
    assert m["map"] == pytest.approx(1.0) and m["map50"] == pytest.approx(1.0)
    assert all(r["ap"] in (None, pytest.approx(1.0)) for r in m["per_class"])
    rng = np.random.default_rng(0)
    jittered = [(b + rng.normal(0, 2.0, b.shape), s, lab) for b, s, lab in _detections(ds)]
    j = detect.coco_map(ds, jittered)
    assert 0.1 < j["map"] < 0.9 and j["map50"] > j["map"]
    wrong = [(b, s, (lab + 1) % 10) for b, s, lab in _detections(ds)]
    assert detect.coco_map(ds, wrong)["map"] < 0.05


def test_nms_is_classwise():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]], float)
    keep = nms(boxes, np.array([0.9, 0.8, 0.7, 0.6]), np.array([0, 0, 1, 0]), iou=0.5)
    assert list(keep) == [0, 2, 3]


# ------------------------------------------------------------------------------------------------------ CenterNet
def test_augment_moves_boxes_with_pixels():
    x = torch.zeros(8, 1, 64, 64)
    x[:, 0, 12:40, 6:30] = 1
    t = torch.full((8, 2, 5), -1.0)
    t[:, 0] = torch.tensor([6, 12, 30, 40, 3.0])
    xa, ta = augment(x, t, torch.Generator().manual_seed(0), flip=0.5, scale=0.2, translate=0.1)
    assert (ta[:, 1] == -1).all()
    for i in range(8):
        if ta[i, 0, 4] >= 0:
            assert np.allclose(tight_box(xa[i, 0].numpy() > 0.5), ta[i, 0, :4].numpy(), atol=1.0)


def test_encode_then_decode_recovers_the_boxes(scenes):
    """Perfect network outputs built from the training targets decode to the ground truth (mAP 1)."""
    ds = scenes[2]["test"]
    cfg = CenterNetConfig(num_classes=10)
    _, targets = ds.tensors()
    heat, cls, box, weight = encode(targets, cfg, 16, 16)
    assert int(heat.eq(1).sum()) == ds.num_objects and heat.shape == (len(ds), 1, 16, 16)
    cy = (torch.arange(16.0) + 0.5).view(16, 1) * 4
    cx = (torch.arange(16.0) + 0.5).view(1, 16) * 4
    dist = torch.stack([cx - box[:, 0], cy - box[:, 1], box[:, 2] - cx, box[:, 3] - cy], 1) / 4
    logits = torch.logit(heat.clamp(1e-4, 1 - 1e-4))
    cls_logits = torch.nn.functional.one_hot(cls, 10).permute(0, 3, 1, 2).float() * 20
    dets = [(b.numpy(), s.numpy(), c.numpy()) for b, s, c in decode(logits, cls_logits, dist, 4, threshold=0.5)]
    assert detect.coco_map(ds, dets)["map"] == pytest.approx(1.0)


def test_tiny_detector_trains_saves_loads_predicts(tiny_run, tmp_path):
    p = tiny_run.path
    for f in ("config.yaml", "model.json", "metrics.csv", "report.html", "weights/last.safetensors",
              "state/last.json", "eval-test.json", "plots/detections.png", "plots/per_class_ap.png"):
        assert (p / f).is_file(), f
    rows = tiny_run.run.read_metrics()
    assert len(rows) == 2 and "val_map" in rows[-1] and rows[-1]["train_loss"] < rows[0]["train_loss"]
    m = json.loads((p / "eval-test.json").read_text())
    assert 0 <= m["map"] <= 1 and len(m["per_class"]) == 10 and m["inference_images_per_s"] > 0
    again = detect.load(p)
    imgs = np.random.default_rng(0).integers(0, 255, (3, 50, 70, 1), dtype=np.uint8)
    a = tiny_run.predict(imgs, min_score=0.0, draw=False)
    b = again.predict(imgs, min_score=0.0, out=tmp_path)
    assert [d["detections"] for d in a] == [d["detections"] for d in b]
    for r in b:
        assert r["drawing"].endswith(".png") and len(r["detections"]) <= 100
    with pytest.raises(RecgenError, match="min_score must be a score in"):
        tiny_run.predict(imgs, min_score=2.0)
    with pytest.raises(RecgenError, match="with data given, leave split out"):
        tiny_run.evaluate("val", data=tiny_run.held_out())
        assert all(0 <= d["box"][0] <= d["box"][2] <= 70 and 0 <= d["box"][1] <= d["box"][3] <= 50
                   for d in r["detections"])


def test_export_onnx_decodes_like_predict(tmp_path):
    """The exported graph (network + decoding) gives the detector's own detections above its threshold."""
    import onnxruntime as ort

    # 60 steps (2 s): enough for peaks that clear the default threshold and no longer tie with their neighbours
    run = detect.train(out=str(tmp_path), **{**TINY, "epochs": 30})
    r = run_cli("export", run.path, "--out", tmp_path / "d.onnx", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["task"] == "detect" and info["parity_detections"] > 0
    assert info["parity_detection_agreement"] == 1.0 and info["parity_exact_box_share"] == 1.0
    images = load_test(run.config).images[:6]
    boxes, scores, labels = ort.InferenceSession(str(tmp_path / "d.onnx")).run(
        None, {"images": images.transpose(0, 3, 1, 2).astype(np.float32) / 255})
    assert boxes.shape == (6, 100, 4) and scores.shape == labels.shape == (6, 100) and labels.dtype == np.int64
    found = 0
    for i, (b, s, lab) in enumerate(run.detect(images)):
        keep = scores[i] >= info["score_threshold"]
        assert np.array_equal(labels[i][keep], lab) and np.allclose(scores[i][keep], s, atol=1e-5)
        assert np.allclose(boxes[i][keep], b, atol=1e-3)
        found += len(s)
    assert found > 0


def test_resume_is_exact(tiny_run, tmp_path):
    part = detect.train(out=str(tmp_path), max_steps=3, **TINY)  # 2 steps per epoch: stops inside epoch 2
    assert part.run.config["stopped"] == "max_steps"
    done = detect.train(resume=str(part.path))
    a, b = tiny_run.run.load_weights("last"), done.run.load_weights("last")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(RecgenError, match="cannot change lr"):
        detect.train(resume=str(part.path), lr=0.5)


# ---------------------------------------------------------------------------------------------------- classical
def test_classical_baseline_finds_objects_on_plain_scenes(tmp_path):
    run = detect.train(model="classical", out=str(tmp_path), **{**SCENES, "train_scenes": 120, "test_scenes": 20})
    m = json.loads((run.path / "eval-test.json").read_text())
    assert m["map50"] > 0.3 and (run.path / "weights" / "classical.safetensors").is_file()
    assert detect.load(run.path).evaluate(write=False)["map"] == pytest.approx(m["map"])
    with pytest.raises(RecgenError, match="only CenterNet detectors export"):
        export(str(run.path))


# ----------------------------------------------------------------------------------------------------------- CLI
def test_cli_bad_annotations_exit_2(scenes):
    out, paths, _ = scenes
    doc = json.loads(paths["train"].read_text())
    doc["annotations"][0]["bbox"] = [-20, 0, 5, 5]
    (out / "bad-cli.json").write_text(json.dumps(doc))
    r = CliRunner().invoke(detect_app, ["train", "--data", str(out / "bad-cli.json"), "--canvas", "64"])
    assert r.exit_code == 2 and "boxes outside their image" in r.output and "--bad-annotations skip" in r.output
    r = run_cli("detect", "train", "--data", out / "bad-cli.json", "--canvas", "64")  # the real command, as a user
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: ") and "boxes outside their image" in r.stderr


def test_cli_scenes_train_eval_predict(tmp_path):
    cli = CliRunner()
    r = cli.invoke(detect_app, ["scenes", "--out", str(tmp_path / "s"), "--data", "digits", "--canvas", "64",
                                "--min-size", "16", "--max-size", "32", "--train-scenes", "24", "--test-scenes", "6"])
    assert r.exit_code == 0, r.output
    args = ["train", "--data", str(tmp_path / "s"), "--canvas", "64", "--out", str(tmp_path / "runs"),
            "--widths", "8,8,16,16", "--blocks", "0,0,0,0", "--neck", "8", "--batch-size", "8", "--epochs", "1",
            "--val-fraction", "0", "--threads", "1"]
    r = cli.invoke(detect_app, args)
    assert r.exit_code == 0, r.output
    assert "mAP@[.5:.95]" in r.output and "report:" in r.output
    run = tmp_path / "runs" / "detect" / "centernet-1"
    r = cli.invoke(detect_app, ["eval", str(run), "--json"])
    m = json.loads(r.output)
    assert r.exit_code == 0 and m["images"] == 6 and {"map", "map50", "per_class"} <= set(m)
    r = cli.invoke(detect_app, ["predict", str(run), str(tmp_path / "s" / "test"), "--json", "--min-score", "0",
                                "--out", str(tmp_path / "pred")])
    res = json.loads(r.output)
    assert r.exit_code == 0 and len(res) == 6 and all(p["drawing"].endswith(".png") for p in res)
    r = cli.invoke(detect_app, ["eval", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "not a recgen run directory" in r.output
