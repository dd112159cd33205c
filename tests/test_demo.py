"""The main job's chain, at smoke size: recognizer -> generator -> judge -> augmentation -> one report."""

from conftest import run_cli


def test_demo_quick_chain(tmp_path):
    r = run_cli("demo", "--quick", "--data", "digits", "--out", tmp_path / "runs")
    assert r.returncode == 0, r.stderr[-2000:]
    report = r.stdout.strip().splitlines()[-1].removeprefix("report: ")
    html = open(report).read()
    for heading in ("1. Recognizer", "2. Generator", "3. The recognizer judges the generator",
                    "4. Generation feeds recognition", "FID floor (real vs real)", "CAS (trained on samples only)"):
        assert heading in html, heading
    assert "[demo" in r.stdout and "4/4 augmentation" in r.stdout
