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
    assert "budgets: recognizer 1 epochs, generator 1 epochs, training in " in r.stdout


def test_demo_plan_names_training_precision(monkeypatch):
    """The same epochs take other times in bf16 and fp32, so the plan says which one this machine trains in."""
    import recgen.demo as demo

    for precision in ("bf16", "fp32"):
        monkeypatch.setattr(demo, "resolve_precision", lambda name, device, p=precision: p)
        plan = demo.plan_for_machine()
        assert plan.pop("precision") == precision and plan == demo.FULL
    quick = demo.plan_for_machine(quick=True)
    assert quick.pop("precision") == "fp32" and quick == demo.QUICK
