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
    # the header names the arithmetic `--precision auto` had, which differs between CPUs with and without AMX
    assert "precision auto = fp32" in first or "precision auto = bf16" in first
    record("x", "X on data", {"accuracy": 0.95}, "python bench/x.py", doc)
    second = doc.read_text()
    assert second.count("<!-- bench:x -->") == 1 and '"accuracy": 0.95' in second and "0.9123" not in second
    assert "intro kept" in second and "other section" in second


def test_unknown_benchmark_is_a_user_error(tmp_path):
    assert {"cnn", "classical", "demo"} <= set(BENCHMARKS)
    with pytest.raises(RecgenError, match="unknown benchmark 'nope'"):
        run_benchmarks(["nope"], out=str(tmp_path), doc=str(tmp_path / "B.md"))


def test_a_half_marked_section_is_refused_not_appended(tmp_path):
    """A section whose opening marker was lost would otherwise get a second copy at the end, the stale one kept."""
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\nold hand-written figures\n<!-- /bench:x -->\n")
    with pytest.raises(RecgenError, match="section 'x' has 0 opening and 1 closing markers"):
        record("x", "X on data", {"accuracy": 0.9}, "python bench/x.py", doc)
    assert doc.read_text().count("bench:x") == 1  # untouched


def test_every_section_of_the_real_doc_is_marked_at_both_ends():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS.md").read_text()
    for name in set(re.findall(r"<!-- /?bench:([a-z0-9-]+) -->", text)):
        assert text.count(f"<!-- bench:{name} -->") == text.count(f"<!-- /bench:{name} -->") == 1, name
