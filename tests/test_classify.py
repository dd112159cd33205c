"""Recognition through the Python API and the CLI (as subprocesses), on tiny data."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from recgen import classify
from recgen.data import fit_images
from recgen.errors import RecgenError

TINY = dict(stem_width=8, widths="16,32", blocks="0,1", batch_size=64, threads=1)


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    # 6 epochs: at 3 the tiny net ends between 0.56 and 0.67 depending on the seed and the precision, astride
    # the 0.6 floor the tests below hold it to
    return classify.train(model="cnn", data="digits", epochs=6, out=str(out), **TINY)


def test_cnn_learns_and_writes_run_dir(cnn_run):
    p = cnn_run.path
    for f in ("config.yaml", "model.json", "metrics.csv", "report.html", "weights/last.safetensors",
              "weights/best.safetensors", "state/last.json", "plots/confusion.png", "plots/curves.png"):
        assert (p / f).is_file(), f
    cfg = cnn_run.run.config
    assert cfg["options"]["epochs"] == 6 and cfg["options"]["augment"] == "flip+crop"  # defaults resolved
    assert len(cfg["data_fingerprint"]) == 16 and cfg["recgen_version"]
    m = json.loads((p / "eval-test.json").read_text())
    assert m["accuracy"] > 0.6  # chance is 0.1
    assert m["tta"] == "flip+shift" == cfg["options"]["tta"]  # both views: trained with flip and crop
    assert len(m["per_class"]) == 10 and np.array(m["confusion_matrix"]).sum() == m["n"]
    assert "Confusion matrix" in (p / "report.html").read_text()


def test_reload_gives_same_predictions(cnn_run):
    x = classify.load(cnn_run.path).run  # reopen from disk
    again = classify.load(x.path)
    imgs = np.random.default_rng(0).integers(0, 255, (5, 28, 28, 1), dtype=np.uint8)
    assert np.allclose(again.predict_proba(imgs), cnn_run.predict_proba(imgs), atol=1e-6)


def test_init_fine_tunes_from_another_run(cnn_run, tmp_path):
    one_step = dict(model="cnn", data="digits", epochs=1, max_steps=1, out=str(tmp_path), **TINY)
    fresh = classify.train(**one_step, name="fresh").evaluate(write=False)["accuracy"]
    tuned = classify.train(**one_step, name="tuned", init=str(cnn_run.path), lr=1e-6).evaluate(write=False)
    # one tiny step from the trained weights keeps their accuracy; one step from scratch is near chance (0.1)
    assert tuned["accuracy"] > 0.6 and tuned["accuracy"] > fresh + 0.3
    with pytest.raises(RecgenError, match=r"init: .* another network .*widths \(16, 32\) vs \(16, 64\)"):
        classify.train(**{**one_step, "widths": "16,64"}, name="other", init=str(cnn_run.path))
    with pytest.raises(RecgenError, match="init: .*nothing: not a recgen run directory"):
        classify.train(**one_step, name="missing", init=str(tmp_path / "nothing"))
    with pytest.raises(RecgenError, match="init: only a CNN"):
        classify.train(model="rf", data="digits", out=str(tmp_path), name="rf", init=str(cnn_run.path))
    assert sorted(p.name for p in (tmp_path / "classify").iterdir()) == ["fresh-1", "tuned-1"]  # errors: none


def test_init_matches_classes_by_name(cnn_run, tmp_path):
    """The same digits with their classes listed in another order (as an image folder sorts them): fine-tuning
    puts the head's rows in the new order, so the trained weights still name each digit right."""
    from recgen.data import load_dataset

    order = ["3", "7", "0", "9", "1", "5", "2", "8", "4", "6"]
    for split, name in (("train", "perm.npz"), ("test", "perm-test.npz")):
        ds = load_dataset("digits", split)
        y = np.array([order.index(ds.classes[k]) for k in ds.y])
        np.savez(tmp_path / name, x=ds.x, y=y, classes=np.array(order))
    tuned = classify.train(model="cnn", data=str(tmp_path / "perm.npz"), epochs=1, max_steps=1, out=str(tmp_path),
                           init=str(cnn_run.path), lr=1e-6, **TINY).evaluate(write=False)
    assert tuned["accuracy"] > 0.6  # rows left in the old order would score near chance


def test_predict_files_folders_globs_and_explain(cnn_run, tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(d / f"{i}.png")
    res = cnn_run.predict([str(d / "0.png"), str(d), str(d / "*.png")], topk=2, explain=True, out=tmp_path / "cam")
    assert len(res) == 7 and all(len(r["top"]) == 2 for r in res)
    assert all(abs(sum(t["probability"] for t in r["top"])) <= 1.0001 for r in res)
    # the input as the model saw it (28x28, enlarged 8x), a gap, then the Grad-CAM overlay
    assert all(Image.open(r["explanation"]).size == (224 + 8 + 224, 224) for r in res)
    pic = np.asarray(Image.open(res[0]["explanation"]).convert("RGB")).astype(int)
    seen = np.repeat(np.repeat(cnn_run.prepare(fit_images([np.asarray(Image.open(d / "0.png"))],
                                                          cnn_run.input_shape)), 8, 1), 8, 2)[0]
    assert np.array_equal(pic[:, :224], np.broadcast_to(seen, (224, 224, 3)))  # the left panel is the input
    assert not np.array_equal(pic[:, 232:], pic[:, :224])  # the right one carries the heat map
    with pytest.raises(RecgenError, match="no such file"):
        cnn_run.predict([str(tmp_path / "missing.png")])


def test_tta_views_average_the_mirror_and_shifts():
    import torch

    from recgen.classify.api import _shifted, check_tta, predict_proba

    x = torch.rand(4, 1, 8, 8)
    moved = _shifted(x, 1, -1)  # down one row, left one column, zeros coming in
    assert torch.equal(moved[:, :, 1:, :-1], x[:, :, :-1, 1:])
    assert moved[:, :, 0].abs().sum() == 0 and moved[:, :, :, -1].abs().sum() == 0

    class Spy(torch.nn.Module):  # a "network" whose output is the mean of the first row: sees each view apart
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, v):
            return torch.stack([v[:, 0, 0, 0], v[:, 0, 0, -1]], 1) * 50

    for tta, views in (("none", [x]), ("flip", [x, x.flip(-1)]),
                       ("shift+flip", [s for v in (x, _shifted(x, 1, 0), _shifted(x, -1, 0), _shifted(x, 0, 1),
                                                    _shifted(x, 0, -1)) for s in (v, v.flip(-1))])):
        want = torch.stack([Spy()(v).softmax(1) for v in views]).mean(0)
        assert torch.allclose(predict_proba(Spy(), x, tta=tta), want, atol=1e-6), tta
    # runs written when tta was a bool still load: true meant the mirror only
    assert check_tta(True) == "flip" and check_tta("False") == "none" and check_tta("shift+flip") == "flip+shift"
    cfg = classify.ClassifyConfig(tta="true")
    assert cfg.tta == "flip"


def test_gradcam_highlights_the_evidence():
    """A planted bright square is the only evidence of class 1: Grad-CAM must peak on it."""
    import torch

    from recgen.classify.cnn import CNNConfig, build_cnn
    from recgen.classify.gradcam import gradcam

    torch.manual_seed(0)
    net = build_cnn(CNNConfig(in_channels=1, num_classes=2, stem_width=8, widths=(16, 32), blocks=(0, 1)))
    x = torch.rand(256, 1, 28, 28) * 0.2
    y = torch.arange(256) % 2
    pos = torch.randint(0, 20, (256, 2))
    for i in range(256):
        if y[i]:
            x[i, 0, pos[i, 0]:pos[i, 0] + 8, pos[i, 1]:pos[i, 1] + 8] = 1.0
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    cams = gradcam(net, x[y == 1][:16], [1] * 16)
    hits = 0
    for cam, (r, c) in zip(cams, pos[y == 1][:16]):
        inside = cam[r:r + 8, c:c + 8].mean()
        hits += inside > cam.mean()
    assert hits >= 13


def test_cli_train_eval_predict(tmp_path):
    out = tmp_path / "runs"
    r = run_cli("classify", "train", "--data", "digits", "--limit", "40", "--epochs", "2", "--max-steps", "3",
                "--batch-size", "64",
                "--stem-width", "8",
                "--widths", "16,32", "--blocks", "0,1", "--out", out)
    assert r.returncode == 0, r.stderr
    run = out / "classify" / "cnn-1"
    assert "accuracy" in r.stdout and (run / "report.html").is_file()
    r = run_cli("classify", "eval", run, "--json")
    m = json.loads(r.stdout)
    assert r.returncode == 0 and 0 <= m["accuracy"] <= 1 and "macro_f1" in m and m["tta"] == "flip+shift"
    r = run_cli("classify", "eval", run, "--json", "--tta", "none")  # other views, same weights
    assert r.returncode == 0 and json.loads(r.stdout)["tta"] == "none"
    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(img)
    r = run_cli("classify", "predict", run, img, "--json", "--topk", "3", "--explain")
    res = json.loads(r.stdout)
    assert r.returncode == 0 and len(res[0]["top"]) == 3 and res[0]["explanation"].endswith(".png")
    # finish the run stopped at step 3 (5 steps per epoch): rows at steps 3, 5, 10
    r = run_cli("classify", "train", "--resume", run)
    assert r.returncode == 0, r.stderr
    assert [line.split(",")[1] for line in (run / "metrics.csv").read_text().split()[1:]] == ["3", "5", "10"]
    r = run_cli("classify", "train", "--resume", run)
    assert r.returncode == 2 and "already completed its 2 epochs" in r.stderr
    r = run_cli("classify", "train", "--resume", run, "--lr", "0.5")
    assert r.returncode == 2 and "cannot change lr" in r.stderr


@pytest.mark.parametrize("args,message", [
    (["classify", "train", "--data", "no-such-data"], "error: unknown dataset 'no-such-data'"),
    (["classify", "train", "--model", "vgg"], "error: model must be one of cnn, svm, rf"),
    (["classify", "train", "--augment", "flip+blur", "--data", "digits"], "error: augment: unknown 'blur'"),
    (["classify", "eval", "/nonexistent/run"], "error: /nonexistent/run: not a recgen run directory"),
    (["classify", "train", "--precision", "half", "--data", "digits"],
     "error: precision must be one of auto, fp32, bf16, got 'half'"),
    (["data", "show", "fashion-mnst"], "error: unknown dataset 'fashion-mnst'"),
    (["classify", "train", "--tta", "flip+rot", "--data", "digits"], "error: tta: unknown view 'rot'"),
])
def test_cli_bad_input_is_one_line_exit_2(args, message):
    r = run_cli(*args)
    assert r.returncode == 2
    assert r.stderr.strip().startswith(message) and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_bad_augment_leaves_no_run(tmp_path):
    with pytest.raises(RecgenError, match="augment: unknown 'blur'"):
        classify.train(data="digits", augment="flip+blur", epochs=1, out=str(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


def test_cli_unknown_option_suggests():
    r = run_cli("classify", "train", "--batch-sise", "3")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("error: No such option: --batch-sise") and "--batch-size" in r.stderr


def test_cli_bad_npz(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((3, 4, 4), np.uint8))
    r = run_cli("classify", "train", "--data", bad)
    assert r.returncode == 2 and "bad.npz: .npz must hold arrays 'x'" in r.stderr


def test_cli_data_list_show_checks(tmp_path):
    r = run_cli("data", "list")
    assert r.returncode == 0 and "fashion-mnist" in r.stdout and "digits" in r.stdout
    r = run_cli("data", "show", "digits", "--out", tmp_path / "g.png", "--json")
    info = json.loads(r.stdout)
    assert r.returncode == 0 and info["images"] == 1437 and (tmp_path / "g.png").is_file()
    r = run_cli("checks")
    assert r.returncode == 0 and "torch" in r.stdout and "device: cpu" in r.stdout





def test_export_onnx_with_parity(cnn_run, tmp_path):
    import onnxruntime as ort

    r = run_cli("export", cnn_run.path, "--format", "onnx", "--out", tmp_path / "m.onnx", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["parity_max_abs_diff"] < 1e-4 and info["parity_top1_agreement"] == 1.0
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"))
    p = sess.run(None, {"images": np.zeros((3, 1, 28, 28), np.float32)})[0]
    assert p.shape == (3, 10) and np.allclose(p.sum(1), 1, atol=1e-5)
    r = run_cli("export", cnn_run.path, "--format", "tflite")
    assert r.returncode == 2 and "format must be one of onnx" in r.stderr


def test_classical_runs_record_their_features_and_search(tmp_path):
    """An SVM run resolves the model's default feature spec into config.yaml; --search fits the grid's best
    candidate and records the chosen values in model.json (the random forest: a grid of four)."""
    svm = classify.train(model="svm", data="digits", limit=40, val_fraction=0, landmarks=300, out=str(tmp_path))
    assert svm.run.config["options"]["features"] == "kmeans+hog+lbp+pixels"
    assert json.loads((svm.path / "model.json").read_text())["args"]["landmarks"] == 300
    assert classify.load(svm.path).model.named_steps["svm"].landmarks_.shape[0] == 300
    assert json.loads((svm.path / "eval-test.json").read_text())["accuracy"] > 0.85
    rf = classify.train(model="rf", data="digits", limit=40, val_fraction=0, search=True, trees=10,
                        out=str(tmp_path))
    assert rf.run.config["options"]["features"] == "hog+lbp+pixels"
    chosen = json.loads((rf.path / "model.json").read_text())["args"]
    assert chosen["rf__min_samples_leaf"] in (1, 2) and chosen["rf__max_features"] in ("sqrt", 0.1)
    assert chosen["n_estimators"] == 10


def test_classify_sizes_default_to_the_classical_configs():
    from recgen.classify.api import ClassifyConfig
    from recgen.classify.classical import RFConfig, SVMConfig

    assert ClassifyConfig().landmarks == SVMConfig().landmarks and ClassifyConfig().trees == RFConfig().n_estimators
