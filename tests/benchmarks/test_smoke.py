"""A tiny run of each benchmark, so CI knows the scripts work. Timed figures are not asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import embedded_model, load, local_index, orchestration, reading, soak
from benchmarks.report import write_section


def test_report_sections_are_replaced_not_repeated(tmp_path: Path) -> None:
    doc = tmp_path / "bench.md"
    write_section("x", "X", "cmd", "first", doc)
    write_section("y", "Y", "cmd", "other", doc)
    write_section("x", "X", "cmd", "second", doc)
    text = doc.read_text()
    assert text.count("## X") == 1 and "second" in text and "first" not in text and "other" in text
    assert "cores" in text and "commit" in text


async def test_orchestration_smoke() -> None:
    run = await orchestration.one_run(orchestration.shape("diamond"), ttft=0.01, tps=1000, concurrency=8)
    assert run["wall"] > 0 and run["nodes_phase"] > 0
    assert orchestration.depth(orchestration.shape("3-levels-x-4")) == 3


async def test_soak_smoke() -> None:
    result = await soak.soak(seconds=3, clients=2, sample_every=1)
    text = soak.render(result)
    assert sum(result["counts"].values()) > 0 and result["end"]["runs"] == 0
    assert "RSS growth" in text


async def test_reading_smoke() -> None:
    pages = {name: items[:2] for name, items in reading.load_pages().items()}
    scores = reading.quality(pages)
    assert all(0 <= f1 <= 1 for per_set in scores.values() for f1, _ in per_set.values())
    count, seconds, ok = await reading.throughput(pages, latency=0.01)
    assert count == 4 and ok == 4 and seconds > 0
    assert "pages/min" in reading.render(scores, count, seconds, ok, 0.01)


def test_local_index_smoke() -> None:
    docs, queries = local_index.corpus()[:2000], local_index.queries()[:10]
    assert 0 <= local_index.bench_tantivy(docs, queries)["recall"] <= 1
    assert 0 <= local_index.bench_fts5(docs, queries)["recall"] <= 1


async def test_load_smoke() -> None:
    result = await load.measure(sessions=3, ttft=0.01, tps=1000)
    assert [r.get("error") for r in result["results"]] == [None, None, None]
    assert "first event p99" in load.render(result, 0.01, 1000)


@pytest.mark.model
async def test_embedded_model_smoke(tmp_path: Path) -> None:
    result = await embedded_model.measure(1, tmp_path)
    assert result["stats"]["calls"] >= 2 and result["stats"]["prompt_tokens"] > 0
    assert "tokens/s" in embedded_model.render(result)
