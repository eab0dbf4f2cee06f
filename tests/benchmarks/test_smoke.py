"""A tiny run of each benchmark, so CI knows the scripts work. Timed figures are not asserted here."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from benchmarks import embedded_model, load, local_index, orchestration, reading, soak
from benchmarks.report import write_section
from mindsearch import Settings
from mindsearch.testing import FakeOpenAIServer


def test_report_sections_are_replaced_not_repeated(tmp_path: Path) -> None:
    doc = tmp_path / "bench.md"
    write_section("x", "X", "cmd", "first", doc)
    write_section("y", "Y", "cmd", "other", doc)
    write_section("x", "X", "cmd", "second", doc)
    text = doc.read_text()
    assert text.count("## X") == 1 and "second" in text and "first" not in text and "other" in text
    assert "cores" in text and "commit" in text and "load average" in text


async def test_a_model_with_slots_generates_that_many_at_once_and_queues_the_rest() -> None:
    async with FakeOpenAIServer(lambda body: ["a", "b"], first_delay=0.05, slots=2) as llm:
        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}

        async def ask(http: aiohttp.ClientSession) -> None:
            async with http.post(f"{llm.url}/v1/chat/completions", json=body) as r:
                assert r.status == 200
                await r.read()

        async with aiohttp.ClientSession() as http:
            await asyncio.gather(*(ask(http) for _ in range(5)))
    assert llm.max_active == 2 and llm.max_waiting == 3 and llm.calls == 5
    admitted = sorted(r.admitted for r in llm.requests)
    ended = sorted(r.ended for r in llm.requests)
    # the third request gets a slot only when one of the first two is done, and so on
    assert admitted[2] >= ended[0] - 0.005 and admitted[4] >= ended[2] - 0.005
    assert llm.slot_seconds >= 5 * 0.05


async def test_orchestration_smoke() -> None:
    nodes = orchestration.shape("diamond")
    run = await orchestration.one_run(nodes, ttft=0.01, tps=1000, concurrency=8)
    assert run["wall"] > 0 and run["nodes_phase"] > 0 and run["calls"] == 2 + 2 * len(nodes)
    slotted = await orchestration.one_run(nodes, ttft=0.01, tps=1000, concurrency=8, slots=2)
    assert 0 < slotted["occupancy"] <= 1 and 0 < slotted["nodes_occupancy"] <= 1
    assert orchestration.depth(orchestration.shape("3-levels-x-4")) == 3
    # with 2 slots a fan-out of 8 needs at least 4 sub-question times; unlimited, one
    fan = orchestration.shape("fan-out-8")
    node = orchestration.call("queries", 1, 10) + orchestration.call("answer", 1, 10)
    ends = orchestration.call("plan", 1, 10) + orchestration.call("write", 1, 10)
    assert orchestration.bound(fan, 1, 10, 2) == pytest.approx(ends + 4 * node)
    assert orchestration.bound(fan, 1, 10, None) == pytest.approx(ends + node)


async def test_soak_smoke() -> None:
    result = await soak.soak(seconds=3, clients=2, sample_every=1)
    text = soak.render(result)
    assert sum(result["counts"].values()) > 0 and result["end"]["runs"] == 0
    assert "RSS growth" in text


async def test_reading_smoke() -> None:
    pages = reading.load_pages(2)
    scores = reading.quality(pages)
    assert all(0 <= f1 <= 1 for per_set in scores.values() for f1, _ in per_set.values())
    speeds = await reading.throughput(pages, latency=0.01)
    assert {key: (count, ok) for key, (count, _s, ok) in speeds.items()} == {
        "mindsearch": (4, 4),
        "MindSearch": (4, 4),
    }
    assert "pages/min" in reading.render(scores, speeds, 0.01)


def test_mindsearch_reader_is_lagents() -> None:
    html = "<html><head><title>T</title></head><body><p>One</p>\n\n\n<p>Two</p></body></html>"
    assert reading.mindsearch_text(html) == "TOne\nTwo"


def test_local_index_smoke() -> None:
    docs, queries = local_index.corpus()[:2000], local_index.queries()[:10]
    assert 0 <= local_index.bench_tantivy(docs, queries)["recall"] <= 1
    assert 0 <= local_index.bench_fts5(docs, queries)["recall"] <= 1


async def test_load_smoke() -> None:
    # a dense ranking model, where there is one, takes seconds to load in each server: not needed here
    fast = {"MINDSEARCH_HYBRID_RANKING": "off"} if "hybrid_ranking" in Settings.model_fields else {}
    result = await load.measure(sessions=6, ttft=0.01, tps=1000, env=fast)
    for scenario in result.values():
        statuses = [r["status"] for r in scenario["results"]]
        assert set(statuses) <= {200, 503}, scenario["results"]
        assert not [r for r in scenario["results"] if r.get("error")], scenario["results"]
        assert all(r["retry_after"] for r in scenario["results"] if r["status"] == 503)
    assert statuses == [200] * 6  # the cap raised to the number of sessions: every one runs
    assert "first answer token" in load.render(result, 0.01, 1000)


@pytest.mark.model
async def test_embedded_model_smoke(tmp_path: Path) -> None:
    result = await embedded_model.measure(1, tmp_path)
    assert result["stats"]["calls"] >= 2 and result["stats"]["prompt_tokens"] > 0
    assert "tokens/s" in embedded_model.render(result)
