"""What an operator sees of the server's runs: ``/metrics`` after real runs through the API, and the
OpenAI route's ``usage`` with the tokens the model server reported (streaming and not)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from openai import AsyncOpenAI
from prometheus_client.parser import text_string_to_metric_families

from mindsearch import MindSearch, Settings, parse_event
from mindsearch import events as ev
from mindsearch.api import create_app, server_config
from mindsearch.llm.openai import OpenAIModel
from mindsearch.search.base import SearchHit
from mindsearch.testing import (
    AppServer,
    Chunk,
    FakeOpenAIServer,
    HttpError,
    MemoryEngine,
    StaticSite,
    kind_of_body,
    plan_json,
)

QUESTION = "Who directed Jaws?"
PAGE = (
    "<html><head><title>Jaws (film)</title></head><body><article><h1>Jaws</h1><p>Jaws is a 1975 American "
    "thriller film directed by Steven Spielberg, based on the novel by Peter Benchley. It follows a police "
    "chief who hunts a great white shark.</p></article></body></html>"
)
# what the fake model server says each call cost: (prompt, completion) by step
COST = {"plan": (120, 30), "queries": (80, 10), "answer": (400, 20), "write": (300, 15)}


def usage_of(body: dict[str, Any]) -> dict[str, int]:
    prompt, completion = COST[kind_of_body(body)]
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def reply(body: dict[str, Any]) -> Any:
    kind = kind_of_body(body)
    if kind == "plan":
        pieces: list[Any] = [plan_json(("q1", QUESTION, []))]
    elif kind == "queries":
        pieces = ['{"queries": ["jaws director"]}']
    elif kind == "answer":
        pieces = ["Jaws was directed ", "by Steven Spielberg [1]."]
    else:
        pieces = ["Jaws was directed by Steven Spielberg [1]."]
    pieces.append(Chunk(finish_reason="stop"))
    if (body.get("stream_options") or {}).get("include_usage") or not body.get("stream"):
        pieces.append(Chunk(choices=[], usage=usage_of(body)))  # as OpenAI and vLLM send it
    return pieces


def expected(server: FakeOpenAIServer) -> dict[str, int]:
    """The usage of every call the server answered, summed."""
    prompt = sum(COST[kind_of_body(r.body)][0] for r in server.requests)
    completion = sum(COST[kind_of_body(r.body)][1] for r in server.requests)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


@pytest.fixture
async def site() -> AsyncIterator[StaticSite]:
    async with StaticSite(routes={"/jaws": page}) as served:
        yield served


async def started(
    tmp_path: Path, llm: FakeOpenAIServer, site: StaticSite, **changes: Any
) -> tuple[AppServer, MindSearch]:
    settings = Settings(
        llm="openai",
        base_url=f"{llm.url}/v1",
        model="fake",
        data_dir=tmp_path / "data",
        allow_hosts=["127.0.0.1"],
        **changes,
    )
    hits = [SearchHit(f"{site.url}/jaws", "Jaws (film)", "Jaws is a 1975 film.", "memory")]
    engine = MindSearch(
        settings, model=OpenAIModel.from_settings(settings), engines=[MemoryEngine(hits, is_web=True)]
    )
    return AppServer(create_app(settings, engine=engine)), engine


async def scrape(
    client: aiohttp.ClientSession, url: str, **headers: str
) -> dict[tuple[str, tuple[Any, ...]], float]:
    async with client.get(f"{url}/metrics", headers=headers) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[Any, ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def chat(client: aiohttp.ClientSession, url: str, **extra: Any) -> aiohttp.ClientResponse:
    body = {"model": "mindsearch", "messages": [{"role": "user", "content": QUESTION}], **extra}
    return await client.post(f"{url}/v1/chat/completions", json=body)


async def test_chat_completion_reports_the_runs_real_usage_and_metrics_count_the_run(
    tmp_path: Path, site: StaticSite
) -> None:
    async with FakeOpenAIServer(reply) as llm:
        api, _engine = await started(tmp_path, llm, site)
        async with api, aiohttp.ClientSession() as client:
            before = await scrape(client, api.url)
            response = await chat(client, api.url)
            assert response.status == 200
            completion = await response.json()
            after = await scrape(client, api.url)
            again = await chat(client, api.url)  # the same question: search and page from the cache
            assert again.status == 200
            cached = await scrape(client, api.url)
    first = expected(llm)  # both runs' calls: the second run made the same calls
    assert completion["usage"] == {key: count // 2 for key, count in first.items()}
    assert "estimated" not in completion["usage"], "the server counted: these are not estimates"

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("mindsearch_runs_started_total") == 1
    assert grew("mindsearch_runs_finished_total", outcome="ok") == 1
    assert value(after, "mindsearch_runs_active") == 0
    assert grew("mindsearch_run_duration_seconds_count", outcome="ok") == 1
    assert grew("mindsearch_node_duration_seconds_count", outcome="ok") == 1
    for step in ("plan", "queries", "answer"):  # one sub-question: its answer is the answer, no writer
        assert (
            grew("mindsearch_model_call_duration_seconds_count", model="openai:fake", step=step, outcome="ok")
            == 1
        )
    prompt = grew("mindsearch_model_tokens_total", model="openai:fake", type="prompt", source="server")
    output = grew("mindsearch_model_tokens_total", model="openai:fake", type="completion", source="server")
    assert (prompt, output) == (
        completion["usage"]["prompt_tokens"],
        completion["usage"]["completion_tokens"],
    )
    assert grew("mindsearch_engine_queries_total", engine="memory", outcome="ok") >= 1
    assert grew("mindsearch_engine_query_duration_seconds_count", engine="memory") >= 1
    assert grew("mindsearch_page_fetches_total", outcome="ok") == 1
    assert grew("mindsearch_page_fetch_duration_seconds_count") == 1
    assert grew("mindsearch_pages_read_total", result="ok", origin="web") == 1
    assert grew("mindsearch_cache_lookups_total", kind="page", result="miss") == 1
    assert grew("mindsearch_cache_lookups_total", kind="search", result="miss") >= 1
    hits = value(cached, "mindsearch_cache_lookups_total", kind="page", result="hit") - value(
        after, "mindsearch_cache_lookups_total", kind="page", result="hit"
    )
    assert hits == 1 and value(cached, "mindsearch_page_fetches_total", outcome="ok") == value(
        after, "mindsearch_page_fetches_total", outcome="ok"
    )
    assert value(cached, "mindsearch_cache_lookups_total", kind="search", result="hit") > value(
        after, "mindsearch_cache_lookups_total", kind="search", result="hit"
    )


async def test_streamed_chat_ends_with_a_usage_chunk_when_the_client_asks(
    tmp_path: Path, site: StaticSite
) -> None:
    async with FakeOpenAIServer(reply) as llm:
        api, _engine = await started(tmp_path, llm, site)
        async with api, aiohttp.ClientSession() as client:
            response = await chat(client, api.url, stream=True, stream_options={"include_usage": True})
            text = await response.text()
            plain = await chat(client, api.url, stream=True)
            plain_text = await plain.text()
    payloads = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    *others, last = chunks
    assert last["choices"] == [] and last["usage"] == {k: v // 2 for k, v in expected(llm).items()}
    assert all("usage" in chunk and chunk["usage"] is None for chunk in others)
    assert others[-1]["choices"][0]["finish_reason"] == "stop"
    assert '"usage"' not in plain_text, "without stream_options, chunks are as before"


async def test_the_openai_sdk_reads_the_usage_streamed_and_not(tmp_path: Path, site: StaticSite) -> None:
    async with FakeOpenAIServer(reply) as llm:
        api, _engine = await started(tmp_path, llm, site)
        async with api:
            client = AsyncOpenAI(base_url=f"{api.url}/v1", api_key="unused", max_retries=0)
            whole = await client.chat.completions.create(
                model="mindsearch", messages=[{"role": "user", "content": QUESTION}]
            )
            calls = len(llm.requests)
            stream = await client.chat.completions.create(
                model="mindsearch",
                messages=[{"role": "user", "content": QUESTION}],
                stream=True,
                stream_options={"include_usage": True},
            )
            usages = [chunk.usage async for chunk in stream if chunk.usage is not None]
            await client.close()
    assert whole.usage is not None and whole.usage.total_tokens == expected(llm)[
        "total_tokens"
    ] * calls // len(llm.requests)
    assert len(usages) == 1 and usages[0].total_tokens == whole.usage.total_tokens > 0


async def test_search_reports_usage_and_streams_model_call_events(tmp_path: Path, site: StaticSite) -> None:
    async with FakeOpenAIServer(reply) as llm:
        api, _engine = await started(tmp_path, llm, site)
        async with api, aiohttp.ClientSession() as client:
            async with client.post(f"{api.url}/v1/search", json={"question": QUESTION, "stream": False}) as r:
                result = await r.json()
            async with client.post(f"{api.url}/v1/search", json={"question": QUESTION}) as r:
                raw = await r.text()
    events = [parse_event(line[6:]) for line in raw.splitlines() if line.startswith("data: ")]
    assert isinstance(events[0], ev.RunStarted) and len(events[0].run_id) == 16
    calls = [e for e in events if isinstance(e, ev.ModelCall)]
    assert [c.step for c in calls] == ["plan", "queries", "answer"]
    assert all(c.usage.source == "server" and c.model == "openai:fake" for c in calls)
    assert llm.url not in raw, "where the model runs is not told"
    usage = result["usage"]
    assert usage["calls"] == len(calls) and not usage["estimated"]
    assert usage["total_tokens"] == sum(c.usage.total_tokens for c in calls) > 0


async def test_a_server_that_refuses_stream_options_still_answers_and_usage_is_an_estimate(
    tmp_path: Path, site: StaticSite
) -> None:
    def refusing(body: dict[str, Any]) -> Any:
        if "stream_options" in body:
            return HttpError(400, "Unrecognized request argument supplied: stream_options")
        return reply(body)

    async with FakeOpenAIServer(refusing) as llm:
        api, _engine = await started(tmp_path, llm, site)
        async with api, aiohttp.ClientSession() as client:
            response = await chat(client, api.url)
            completion = await response.json()
    assert response.status == 200 and "Spielberg" in completion["choices"][0]["message"]["content"]
    usage = completion["usage"]
    assert usage["estimated"] is True and usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    asked = [r for r in llm.requests if "stream_options" in r.body]
    assert len(asked) == 1, "the refusal is learned: later calls do not ask"


async def test_metrics_need_the_bearer_token_when_the_server_has_a_key(
    tmp_path: Path, site: StaticSite
) -> None:
    async with FakeOpenAIServer(reply) as llm:
        api, _engine = await started(tmp_path, llm, site, api_key="s3cret-key")
        async with api, aiohttp.ClientSession() as client:
            async with client.get(f"{api.url}/metrics") as response:
                refused = response.status
            samples = await scrape(client, api.url, Authorization="Bearer s3cret-key")
    assert refused == 401 and ("mindsearch_runs_active", ()) in samples


def test_a_server_with_json_logs_sends_uvicorns_lines_through_them_too() -> None:
    from mindsearch import _logs as logs

    try:
        logs.configure(0, fmt="json")
        assert server_config(Settings()).log_config is None
        logs.configure(0, fmt="text")
        assert server_config(Settings()).log_config is not None
    finally:
        logs.configure(0, fmt="text", level="auto")
