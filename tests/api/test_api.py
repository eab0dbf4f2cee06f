"""The REST API on a real uvicorn on 127.0.0.1, with the fake OpenAI-compatible model server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI

from mindsearch import MindSearch, Settings, parse_event
from mindsearch.api import create_app
from mindsearch.llm.openai import OpenAIModel
from mindsearch.testing import AppServer, FakeOpenAIServer, MemoryEngine, doc_hit, kind_of_body, plan_json

DOCS = [
    doc_hit("Jaws (film)", "Jaws is a 1975 American thriller film directed by Steven Spielberg."),
    doc_hit("Steven Spielberg", "Steven Spielberg was born in Cincinnati, Ohio, in 1946."),
]
QUESTION = "Who directed Jaws?"


def prompt(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content", "")) for m in body.get("messages", []))


def reply(body: dict[str, Any]) -> Any:
    text = prompt(body)
    if "Standalone question" in text:
        return "Where was Steven Spielberg born?"
    kind = kind_of_body(body)
    if kind == "plan":
        question = text.split("Question: ", 1)[1].split("\n", 1)[0]
        return plan_json(("q1", question, []))
    if kind == "queries":
        return '{"queries": ["jaws"]}'
    asked = text.split("Sub-question:" if kind == "answer" else "Question:", 1)[-1][:80]
    if "born" in asked:
        return "Steven Spielberg was born in Cincinnati, Ohio [1]."
    return ["Jaws was directed ", "by Steven Spielberg [1]."]


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(reply) as server:
        yield server


def make_settings(tmp_path: Path, llm: FakeOpenAIServer, **changes: Any) -> Settings:
    return Settings(
        llm="openai", base_url=f"{llm.url}/v1", model="fake", data_dir=tmp_path / "data", **changes
    )


async def started(tmp_path: Path, llm: FakeOpenAIServer, **changes: Any) -> tuple[AppServer, MindSearch]:
    settings = make_settings(tmp_path, llm, **changes)
    engine = MindSearch(settings, model=OpenAIModel.from_settings(settings), engines=[MemoryEngine(DOCS)])
    return AppServer(create_app(settings, engine=engine)), engine


async def read_sse(response: aiohttp.ClientResponse) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    name, data = "", ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            events.append((name, json.loads(data)))
            name, data = "", ""
    return events


async def test_search_streams_server_sent_events(tmp_path: Path, llm: FakeOpenAIServer) -> None:
    api, _engine = await started(tmp_path, llm)
    async with api, aiohttp.ClientSession() as client:
        async with client.post(f"{api.url}/v1/search", json={"question": QUESTION}) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/event-stream")
            events = await read_sse(response)
    for name, data in events:
        assert parse_event(data).type == name
    names = [name for name, _ in events]
    assert names[0] == "run_started" and names[-1] == "done"
    assert {"plan", "node_started", "search_results", "node_done", "answer_delta", "references"} <= set(names)
    done = events[-1][1]
    assert done["ok"] and done["answer"] == "Jaws was directed by Steven Spielberg [1]."
    assert done["references"][0]["title"] == "Jaws (film)"


async def test_search_without_streaming_returns_answer_references_and_graph(
    tmp_path: Path, llm: FakeOpenAIServer
) -> None:
    api, _engine = await started(tmp_path, llm)
    async with api, aiohttp.ClientSession() as client:
        body = {"question": QUESTION, "stream": False, "settings": {"depth": "quick", "language": "en"}}
        async with client.post(f"{api.url}/v1/search", json=body) as response:
            result = await response.json()
    assert response.status == 200 and result["ok"]
    assert result["answer"].endswith("[1].") and result["references"][0]["n"] == 1
    assert result["graph"] == [
        {
            "id": "q1",
            "question": QUESTION,
            "depends_on": [],
            "state": "done",
            "answer": "Jaws was directed by Steven Spielberg [1].",
            "references": [{"n": 1, "title": "Jaws (film)", "url": "doc://Jaws_(film)"}],
            "error": None,
        }
    ]


async def test_official_openai_client_streams_and_reads_the_answer(
    tmp_path: Path, llm: FakeOpenAIServer
) -> None:
    api, _engine = await started(tmp_path, llm)
    async with api:
        client = AsyncOpenAI(base_url=f"{api.url}/v1", api_key="unused")
        models = await client.models.list()
        assert [m.id for m in models.data] == ["mindsearch"]
        stream = await client.chat.completions.create(
            model="mindsearch", messages=[{"role": "user", "content": QUESTION}], stream=True
        )
        pieces = [chunk.choices[0].delta.content or "" async for chunk in stream]
        whole = await client.chat.completions.create(
            model="mindsearch", messages=[{"role": "user", "content": QUESTION}]
        )
        await client.close()
    text = "".join(pieces)
    assert len([p for p in pieces if p]) >= 2, "the answer arrives in pieces"
    assert text.startswith("Jaws was directed by Steven Spielberg [1].")
    assert "References:\n[1] Jaws (film) - doc://Jaws_(film)" in text
    assert whole.choices[0].message.content == text


async def test_solve_accepts_mindsearch_request_bodies(tmp_path: Path, llm: FakeOpenAIServer) -> None:
    api, _engine = await started(tmp_path, llm)
    async with api, aiohttp.ClientSession() as client:
        async with client.post(
            f"{api.url}/solve", json={"inputs": QUESTION, "session_id": 7, "agent_cfg": {}}
        ) as r:
            events = await read_sse(r)
        messages = [{"role": "user", "content": QUESTION}]
        async with client.post(f"{api.url}/solve", json={"inputs": messages}) as r:
            events_from_messages = await read_sse(r)
    assert events[-1][0] == "done" and events[-1][1]["ok"]
    assert events_from_messages[-1][1]["answer"] == events[-1][1]["answer"]


async def test_follow_up_is_rewritten_with_the_session_history(tmp_path: Path, llm: FakeOpenAIServer) -> None:
    api, _engine = await started(tmp_path, llm)
    async with api, aiohttp.ClientSession() as client:
        body: dict[str, Any] = {"question": QUESTION, "stream": False}
        async with client.post(f"{api.url}/v1/search", json=body) as response:
            first = await response.json()
            issued = response.headers["X-Session-Id"]
        assert first["session_id"] == issued, "the id is in the header and in the JSON"
        body = {"question": "Where was he born?", "session_id": issued, "stream": False}
        async with client.post(f"{api.url}/v1/search", json=body) as response:
            result = await response.json()
            assert response.headers["X-Session-Id"] == issued, "the same session goes on"
    rewrite = [r for r in llm.requests if "Standalone question" in r.prompt]
    assert len(rewrite) == 1, "only the follow-up is rewritten"
    assert "Q: Who directed Jaws?" in rewrite[0].prompt and "Steven Spielberg" in rewrite[0].prompt
    assert "Follow-up: Where was he born?" in rewrite[0].prompt
    plans = [r for r in llm.requests if kind_of_body(r.body) == "plan"]
    assert "Question: Where was Steven Spielberg born?" in plans[-1].prompt
    assert result["question"] == "Where was Steven Spielberg born?"
    assert result["answer"] == "Steven Spielberg was born in Cincinnati, Ohio [1]."
    stored = api.server.config.app.state.server.sessions.sync.history(issued)  # type: ignore[union-attr]
    assert [q for q, _ in stored] == [QUESTION, "Where was Steven Spielberg born?"], (
        "turns kept as standalone"
    )


async def test_api_key_guards_every_route_but_health(tmp_path: Path, llm: FakeOpenAIServer) -> None:
    api, _engine = await started(tmp_path, llm, api_key="s3cret")
    async with api, aiohttp.ClientSession() as client:
        statuses = {}
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "Basic s3cret"},
            {"Authorization": "Bearer s3cret"},
        ):
            async with client.get(f"{api.url}/v1/models", headers=headers) as r:
                statuses[headers.get("Authorization", "none")] = r.status
        async with client.post(f"{api.url}/v1/search", json={"question": QUESTION, "stream": False}) as r:
            search_status, search_body = r.status, await r.json()
        async with client.get(f"{api.url}/openapi.json") as r:
            docs_status = r.status
        async with client.get(f"{api.url}/health") as r:
            health_status = r.status
    assert statuses == {"none": 401, "Bearer wrong": 401, "Basic s3cret": 401, "Bearer s3cret": 200}
    assert search_status == 401 and "Bearer" in search_body["error"]["message"]
    assert docs_status == 401 and health_status == 200


async def test_without_a_key_the_api_is_open(tmp_path: Path, llm: FakeOpenAIServer) -> None:
    api, _engine = await started(tmp_path, llm)
    async with api, aiohttp.ClientSession() as client:
        async with client.get(f"{api.url}/openapi.json") as r:
            spec = await r.json()
    assert r.status == 200 and {"/v1/search", "/solve", "/v1/chat/completions", "/health"} <= set(
        spec["paths"]
    )


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"question": "x" * 300}, 413, "at most 200"),
        ({"question": "   "}, 422, "empty"),
        ({"question": "q", "settings": {"max_nodes": 99}}, 422, "max_nodes may be at most 8"),
        ({"question": "q", "settings": {"engines": ["bing"]}}, 422, "engines"),
        ({"question": "q", "settings": {"engines": ["brave"]}}, 422, "brave not enabled on this server"),
        ({"question": "q", "settings": {"engines": ["duckduckgo"]}}, 422, "not enabled on this server"),
        ({"question": "q", "settings": {"temperature": 0.7}}, 422, "settings.temperature: Extra inputs"),
        ({"question": "q", "settings": {"max_page_bytes": 10}}, 422, "settings.max_page_bytes"),
        ({"question": "q", "unknown": 1}, 422, "unknown"),
        ({"nothing": True}, 422, "question"),
    ],
)
async def test_bad_requests_get_a_4xx_with_the_reason(
    tmp_path: Path, llm: FakeOpenAIServer, body: dict[str, Any], status: int, message: str
) -> None:
    api, _engine = await started(tmp_path, llm, max_question_chars=200)
    async with api, aiohttp.ClientSession() as client:
        async with client.post(f"{api.url}/v1/search", json=body) as response:
            data = await response.json()
    assert response.status == status and message in data["error"]["message"]


async def test_oversized_bodies_are_refused(tmp_path: Path, llm: FakeOpenAIServer) -> None:
    api, _engine = await started(tmp_path, llm, max_body_bytes=2048)
    big = json.dumps({"question": "x" * 5000})
    async with api, aiohttp.ClientSession() as client:
        async with client.post(
            f"{api.url}/v1/search", data=big, headers={"Content-Type": "application/json"}
        ) as r:
            declared = (r.status, await r.json())

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b" " * 1000
            yield big.encode()

        async with client.post(
            f"{api.url}/v1/search", data=chunks(), headers={"Content-Type": "application/json"}
        ) as r:
            chunked = r.status
        async with client.post(
            f"{api.url}/v1/search", data="{not json", headers={"Content-Type": "application/json"}
        ) as r:
            broken = r.status
    assert declared[0] == 413 and "2048 bytes" in declared[1]["error"]["message"]
    assert chunked == 413 and broken == 422


async def slow_reply(body: dict[str, Any]) -> Any:
    if kind_of_body(body) == "answer":
        await asyncio.sleep(30)
    return reply(body)


async def test_runs_beyond_the_cap_get_503_with_retry_after(tmp_path: Path) -> None:
    async with FakeOpenAIServer(slow_reply) as llm:
        api, engine = await started(tmp_path, llm, max_concurrent_runs=1)
        async with api, aiohttp.ClientSession() as client:
            first = await client.post(f"{api.url}/v1/search", json={"question": QUESTION})
            await first.content.readline()
            async with client.post(f"{api.url}/v1/search", json={"question": QUESTION}) as second:
                status, retry = second.status, second.headers.get("Retry-After")
            first.close()
            await wait_until(lambda: not engine.active_runs)
            async with client.post(
                f"{api.url}/v1/search", json={"question": "q", "settings": {"max_nodes": 99}}
            ) as r:
                after = r.status  # the slot came back: this request is judged on its merits
    assert status == 503 and retry == "5"
    assert after == 422


async def wait_until(condition: Any, timeout: float = 1.0) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not true within {timeout} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def test_client_disconnect_cancels_the_run(tmp_path: Path) -> None:
    async with FakeOpenAIServer(slow_reply) as llm:
        api, engine = await started(tmp_path, llm)
        async with api, aiohttp.ClientSession() as client:
            response = await client.post(f"{api.url}/v1/search", json={"question": QUESTION})
            await response.content.readline()
            # wait until the node's answer is being generated (the fake model sleeps there)
            await wait_until(lambda: any(kind_of_body(r.body) == "answer" for r in llm.requests), timeout=5)
            assert engine.active_runs
            response.close()
            took = await wait_until(lambda: not engine.active_runs)
            await wait_until(lambda: all(r.ended for r in llm.requests))  # its model request was closed too
            async with client.get(f"{api.url}/health") as r:
                assert r.status == 200  # the server is fine afterwards
    assert took < 1.0


async def test_health_reports_llm_and_engines(tmp_path: Path, llm: FakeOpenAIServer) -> None:
    api, _engine = await started(tmp_path, llm, api_key="k3y")
    async with api, aiohttp.ClientSession() as client:
        async with client.get(f"{api.url}/health", headers={"Authorization": "Bearer k3y"}) as r:
            report = await r.json()
    assert r.status == 200 and report["status"] == "ok"
    assert report["llm"]["ok"] and report["engines"]["memory"]["ok"]
    settings = Settings(
        llm="openai", base_url="http://127.0.0.1:9/v1", model="m", data_dir=tmp_path / "d2", api_key="k3y"
    )
    down = AppServer(create_app(settings, engine=MindSearch(settings, engines=[MemoryEngine(DOCS)])))
    async with down, aiohttp.ClientSession() as client:
        async with client.get(f"{down.url}/health", headers={"Authorization": "Bearer k3y"}) as r:
            report = await r.json()
        async with client.get(f"{down.url}/health") as r2:
            anonymous = await r2.json()
    assert r.status == 503 and report["status"] == "down" and "cannot reach" in report["llm"]["detail"]
    assert r2.status == 503 and anonymous == {"status": "down"}


async def test_cors_allow_list_and_no_credentials_with_wildcard(
    tmp_path: Path, llm: FakeOpenAIServer
) -> None:
    preflight = {"Origin": "http://ui.example", "Access-Control-Request-Method": "POST"}
    api, _engine = await started(tmp_path, llm, cors_origins=["http://ui.example"])
    async with api, aiohttp.ClientSession() as client:
        async with client.options(f"{api.url}/v1/search", headers=preflight) as r:
            allowed = {k.lower(): v for k, v in r.headers.items()}
        async with client.options(
            f"{api.url}/v1/search", headers={**preflight, "Origin": "http://evil.example"}
        ) as r:
            refused = {k.lower(): v for k, v in r.headers.items()}
    assert allowed["access-control-allow-origin"] == "http://ui.example"
    assert allowed.get("access-control-allow-credentials") == "true"
    assert "access-control-allow-origin" not in refused
    api, _engine = await started(tmp_path, llm, cors_origins=["*"])
    async with api, aiohttp.ClientSession() as client:
        async with client.options(f"{api.url}/v1/search", headers=preflight) as r:
            wildcard = {k.lower(): v for k, v in r.headers.items()}
    assert (
        wildcard["access-control-allow-origin"] == "*" and "access-control-allow-credentials" not in wildcard
    )
