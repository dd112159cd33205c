"""Long phases say what runs, on a pipe as on a terminal; `generate eval` computes only the parts asked for."""

import io
import json
import time
from pathlib import Path

import pytest
from conftest import run_cli

from recgen.errors import RecgenError
from recgen.progress import Progress, track


def test_lines_on_a_pipe_heading_status_and_end():
    out = io.StringIO()
    with Progress("sampling", total=4, unit="images", stream=out, every=0.05) as p:
        for _ in range(4):
            time.sleep(0.06)
            p.advance(1, info="batch")
    with Progress("an svm fit", stream=out, every=0.05):  # no count: the timer still reports
        time.sleep(0.17)
    lines = out.getvalue().splitlines()
    assert lines[0] == "sampling: 4 images ..."
    assert any(line.startswith("  sampling: ") and "/4 images (" in line and "left" in line for line in lines)
    assert any(line.startswith("sampling: done in ") for line in lines)
    assert "an svm fit ..." in lines and any(line.startswith("  an svm fit: running for ") for line in lines)
    assert lines[-1].startswith("an svm fit: done in ")


def test_a_failed_phase_says_it_stopped():
    out = io.StringIO()
    with pytest.raises(ValueError), Progress("export", total=3, stream=out, every=0) as p:
        p.advance()
        raise ValueError
    lines = out.getvalue().splitlines()
    assert lines[0] == "export: 3 ..." and lines[-1].startswith("export: stopped in ")
    # refused before any work (a user mistake found by the first call): the error stays the command's only line
    out = io.StringIO()
    with pytest.raises(ValueError), Progress("export", stream=out, every=0):
        raise ValueError
    assert out.getvalue() == ""
    assert list(track(range(3), "items", stream=io.StringIO())) == [0, 1, 2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from recgen import classify, generate

    out = tmp_path_factory.mktemp("progress")
    judge = classify.train(model="cnn", data="digits", epochs=2, stem_width=8, widths="16,32", blocks="0,1",
                           batch_size=64, threads=1, out=str(out), name="judge")
    gen = generate.train(model="gan", data="digits", epochs=1, max_steps=2, base=8, latent_dim=8, batch_size=32,
                         val_fraction=0.0, threads=1, out=str(out))
    return str(judge.path), str(gen.path)


def test_generate_eval_computes_the_parts_asked_for_and_says_what_runs(runs):
    judge, gen = runs
    r = run_cli("generate", "eval", gen, "--judge", judge, "--n", 60, "--metrics", "fid,kid", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert "likelihood" not in out and out["judged"]["card"]["metrics"] == "fid"
    assert {"fid", "kid", "precision", "recall"} <= set(out["judged"]["model"])
    assert not {"cas", "copy_rate", "recognizability", "fid_hog"} & set(out["judged"]["model"])
    assert "sampling from " in r.stderr and "60 images ..." in r.stderr  # the headings, stderr being a pipe
    assert "judge space: FID" in r.stderr and "CAS" not in r.stderr
    report = (Path(gen) / "report.html").read_text()  # rebuilt whole although the likelihood pass was skipped
    assert "Judged by a recognizer" in report and "↓ lower is better" in report and "Configuration" in report

    r = run_cli("generate", "eval", gen, "--judge", judge, "--n", 60, "--metrics", "cas", "--cas-steps", 20)
    assert r.returncode == 0, r.stderr
    assert "cas: 2 small classifiers of 20 steps each" in r.stdout
    assert "CAS: 2 classifiers of 20 steps each" in r.stderr and "fid " not in r.stdout


def test_bad_metric_names_are_refused_before_sampling(runs):
    from recgen.loop.judge import parse_metrics

    assert parse_metrics("all") == parse_metrics("") == ("fid", "hog", "recognizability", "memorization", "cas",
                                                         "likelihood")
    assert parse_metrics("kid,reverse_cas,fid") == ("fid", "cas")
    with pytest.raises(RecgenError, match="unknown name 'fidd'"):
        parse_metrics("fid,fidd")
    r = run_cli("generate", "eval", runs[1], "--metrics", "speed")
    assert r.returncode == 2 and r.stderr.startswith("error: metrics: unknown name 'speed'")


def test_classify_eval_says_what_it_evaluates(runs):
    r = run_cli("classify", "eval", runs[0])
    assert r.returncode == 0, r.stderr
    assert "evaluating judge-1 on test, test-time views flip+shift: " in r.stderr


def test_samples_are_named_by_what_was_asked_and_never_overwritten(runs):
    gen = Path(runs[1])
    for args in (["--class", "3"], ["--class", "7"], ["--class", "7", "--n", "4"], []):
        r = run_cli("generate", "sample", gen, "--n", 8, *args)
        assert r.returncode == 0, r.stderr
        assert r.stderr.startswith("sampling from gan-1 (gan): ") and " images ...\n" in r.stderr
    names = sorted(p.name for p in (gen / "samples").glob("sample-*.png"))
    assert names == ["sample-class-3-seed0.png", "sample-class-7-seed0-2.png", "sample-class-7-seed0.png",
                     "sample-seed0.png"]
    assert len(list((gen / "samples").glob("sample-*.npz"))) == 4


def test_eval_limit_bounds_the_evaluation_and_limit_alone_does_not(tmp_path):
    from recgen import classify

    kw = dict(model="cnn", data="digits", epochs=1, stem_width=8, widths="16", blocks="0", batch_size=64, threads=1,
              limit=20, out=str(tmp_path))
    small = classify.train(eval_limit=5, **kw)
    assert small.run.saved_eval()["n"] == 5 * 10 and small.run.config["options"]["eval_limit"] == 5
    assert classify.load(small.path).evaluate()["n"] == 50  # `classify eval` reads it back from config.yaml
    whole = classify.train(**kw)
    assert whole.run.saved_eval()["n"] == 360  # the digits test split
    with pytest.raises(RecgenError, match="eval_limit must be 0 or more"):
        classify.train(eval_limit=-1, **kw)
