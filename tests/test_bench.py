"""Benchmark records -> docs/BENCHMARKS.md: the page is generated from bench/results/*.json and cannot drift."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _renderer():
    spec = importlib.util.spec_from_file_location("render_benchmarks", ROOT / "bench" / "render_benchmarks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _record(tmp: Path, name: str, date: str, figures: dict, machine: dict) -> None:
    rec = {"name": name, "title": f"{name} title", "command": f"python bench/{name}.py --fast", "date": date,
           "machine": machine, "figures": figures, "details": {"raw": [1, 2]}}
    (tmp / f"{name}-{date.replace('-', '')}.json").write_text(json.dumps(rec))


def test_page_shows_the_newest_record_of_each_name_by_area(tmp_path):
    r = _renderer()
    old_machine = {"cpu": "Old CPU", "cores": 2, "gpu": None, "torch": "2.13.0"}  # before the peak was recorded
    new_machine = {**old_machine, "cpu": "New CPU", "fp32_gflops": 213, "bf16_gflops": 1618, "precision_auto": "bf16"}
    _record(tmp_path, "cnn", "2026-11-30", {"test accuracy": 0.9431}, old_machine)
    _record(tmp_path, "cnn", "2026-12-05", {"test accuracy": 0.9485, "images/s": 2640.6}, new_machine)
    _record(tmp_path, "restore-inpaint", "2026-11-29", {"gain dB": 5.277}, old_machine)
    (tmp_path / "raw-log.jsonl").write_text('{"not": "a record"}\n')  # raw logs beside the records are skipped
    (tmp_path / "raw.json").write_text('{"accuracy": 0.5}')

    page = r.render(r.load_records(tmp_path))
    assert "0.9485" in page and "2,641" in page and "0.9431" not in page  # only the newest cnn record
    assert "matmul peak fp32 213 / bf16 1,618 GFLOP/s" in page and "precision auto = bf16" in page
    assert "peak not recorded" in page  # the restore record's machine predates the field
    assert "`python bench/cnn.py --fast`" in page and "2026-12-05" in page
    assert page.index("## Recognition") < page.index("### cnn title") < page.index("## Restoration") \
        < page.index("### restore-inpaint title")
    assert "0.5" not in page.replace("0.9485", "")


def test_the_page_is_what_the_records_give():
    """docs/BENCHMARKS.md is generated: edit a record (or write a new one) and re-run bench/render_benchmarks.py."""
    r = _renderer()
    assert r.main(["--check"]) == 0, "docs/BENCHMARKS.md differs: run python bench/render_benchmarks.py"
    records = r.load_records()
    assert len({rec["name"] for rec in records}) >= 20  # the converted figures are all records, none lost


def test_check_fails_on_a_stale_page(tmp_path):
    r = _renderer()
    _record(tmp_path, "detect", "2026-11-22", {"mAP": 0.767}, {"cores": 2})
    page = tmp_path / "B.md"
    assert r.main(["--results", str(tmp_path), "--page", str(page)]) == 0 and "0.767" in page.read_text()
    assert r.main(["--results", str(tmp_path), "--page", str(page), "--check"]) == 0
    page.write_text(page.read_text().replace("0.767", "0.8"))
    assert r.main(["--results", str(tmp_path), "--page", str(page), "--check"]) == 1


def test_recgen_bench_without_bench_folder_exits_2(tmp_path):
    """`recgen bench` from an installed copy of the package (no bench/ beside it): one line, exit code 2."""
    import os
    import shutil
    import subprocess
    import sys

    shutil.copytree(ROOT / "recgen", tmp_path / "recgen", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "recgen", "bench", "cnn", "--out", str(tmp_path / "runs")],
                       cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().startswith("error: ") and "source checkout" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()


def test_unknown_benchmark_is_a_user_error():
    from conftest import cli

    r = cli("bench", "nope")
    assert r.exit_code == 2 and "unknown benchmark 'nope'" in r.output and "cnn" in r.output


def test_the_registered_scripts_exist():
    from recgen.bench import SCRIPTS, bench_dir

    assert {"cnn", "classical", "demo", "augment"} <= set(SCRIPTS)
    for script, *_ in SCRIPTS.values():
        assert (bench_dir() / script).is_file(), script
