"""Benchmark records: each benchmark owns one marked section of BENCHMARKS.md, rewritten in place, never duplicated."""

import pytest

from recgen.bench import BENCHMARKS, record, run_benchmarks
from recgen.errors import RecgenError


def test_record_writes_then_replaces_its_own_section(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\nintro kept\n\n<!-- bench:other -->\nother section\n<!-- /bench:other -->\n")
    rows = [{"epoch": 1, "test_accuracy": 0.912345678}]
    record("x", "X on data", {"accuracy": 0.9, "rows": rows}, "python bench/x.py --fast", doc)
    first = doc.read_text()
    assert "`python bench/x.py --fast`" in first and '"accuracy": 0.9' in first
    assert "| 1 | 0.9123 |" in first  # table cells rounded, the JSON keeps full precision
    record("x", "X on data", {"accuracy": 0.95}, "python bench/x.py", doc)
    second = doc.read_text()
    assert second.count("<!-- bench:x -->") == 1 and '"accuracy": 0.95' in second and "0.9123" not in second
    assert "intro kept" in second and "other section" in second


def test_unknown_benchmark_is_a_user_error(tmp_path):
    assert {"cnn", "classical", "demo"} <= set(BENCHMARKS)
    with pytest.raises(RecgenError, match="unknown benchmark 'nope'"):
        run_benchmarks(["nope"], out=str(tmp_path), doc=str(tmp_path / "B.md"))
