"""Every ``depth`` through the REST API (issue 9): quick used to fail every time with "too many
sub-questions: the graph holds 0 and may hold at most 1". Real uvicorn and a fake model server, on
loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mindsearch import MindSearch, Settings, parse_event
from mindsearch.api import create_app
from mindsearch.llm.openai import OpenAIModel
from mindsearch.testing import AppServer, FakeOpenAIServer, MemoryEngine, doc_hit, kind_of_body, plan_json

DOCS = [
    doc_hit("Jaws (film)", "Jaws is a 1975 American thriller film directed by Steven Spielberg."),
    doc_hit("Steven Spielberg", "Steven Spielberg was born in Cincinnati, Ohio, in 1946."),
]
QUESTION = "Where was the director of Jaws born?"
TWO_STEPS = plan_json(
    ("q1", "Who directed Jaws?", []), ("q2", "Where was the director of Jaws born?", ["q1"])
)


def reply(body: dict[str, Any]) -> Any:
    kind = kind_of_body(body)
    text = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
    if kind == "plan":
        return TWO_STEPS
    if kind == "queries":
        return '{"queries": ["jaws director", "spielberg born"]}'
    if kind == "answer" and "Sub-question: Who directed Jaws?" in text:
        return "Jaws was directed by Steven Spielberg [1]."
    return "Steven Spielberg was born in Cincinnati, Ohio [1]."


def plan_errors(result: dict[str, Any]) -> list[str]:
    """The errors a depth could cause (what the writer made of the fake's answer is not the point)."""
    return [e for e in result["errors"] if e.split(":")[0] in ("plan", "settings", "run", "node")]


async def started(tmp_path: Path, llm: FakeOpenAIServer) -> AppServer:
    settings = Settings(llm="openai", base_url=f"{llm.url}/v1", model="fake", data_dir=tmp_path / "data")
    engine = MindSearch(settings, model=OpenAIModel.from_settings(settings), engines=[MemoryEngine(DOCS)])
    return AppServer(create_app(settings, engine=engine))


async def read_sse(response: aiohttp.ClientResponse) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("data: "):
            events.append(json.loads(line[6:]))
    return events


def plans(llm: FakeOpenAIServer) -> int:
    return sum(1 for r in llm.requests if kind_of_body(r.body) == "plan")


@pytest.mark.parametrize("depth", ["quick", "normal", "deep"])
async def test_every_depth_answers_without_streaming(tmp_path: Path, depth: str) -> None:
    async with FakeOpenAIServer(reply) as llm:
        api = await started(tmp_path, llm)
        async with api, aiohttp.ClientSession() as client:
            body = {"question": QUESTION, "stream": False, "settings": {"depth": depth}}
            async with client.post(f"{api.url}/v1/search", json=body) as r:
                result = await r.json()
        planned = plans(llm)
    assert r.status == 200, result
    assert plan_errors(result) == [] and all(node["state"] == "done" for node in result["graph"]), result
    graph = [(node["id"], node["question"], node["depends_on"]) for node in result["graph"]]
    if depth == "quick":
        assert graph == [("q1", QUESTION, [])] and planned == 0
    elif depth == "deep":  # research mode: the fake writes no outline, so the standard one is used
        assert [node_id for node_id, _q, _d in graph] == ["s1q1", "s2q1", "s3q1"]
        assert result["answer"].startswith(f"# {QUESTION}")
    else:
        assert graph == [("q1", "Who directed Jaws?", []), ("q2", QUESTION, ["q1"])] and planned >= 1


@pytest.mark.parametrize("depth", ["quick", "normal", "deep"])
async def test_every_depth_streams_a_complete_run(tmp_path: Path, depth: str) -> None:
    async with FakeOpenAIServer(reply) as llm:
        api = await started(tmp_path, llm)
        async with api, aiohttp.ClientSession() as client:
            body = {"question": QUESTION, "settings": {"depth": depth, "max_nodes": 2}}
            async with client.post(f"{api.url}/v1/search", json=body) as response:
                assert response.status == 200
                events = await read_sse(response)
    for event in events:
        parse_event(event)
    assert not [e for e in events if e["type"] == "error" and e["stage"] != "answer"], events
    assert events[-1]["type"] == "done"
    assert all(e["ok"] for e in events if e["type"] == "node_done")
    added = [n["id"] for e in events if e["type"] == "plan" for n in e["added"]]
    expected = {"quick": ["q1"], "normal": ["q1", "q2"], "deep": ["s1q1", "s2q1", "s3q1"]}
    assert added == expected[depth]
    assert any(e["type"] == "outline" for e in events) == (depth == "deep")


async def test_a_plan_over_the_node_limit_falls_back_to_the_question_without_an_error(tmp_path: Path) -> None:
    """max_nodes 1 and a planner that insists on two sub-questions: the question itself is searched."""
    async with FakeOpenAIServer(reply) as llm:
        api = await started(tmp_path, llm)
        async with api, aiohttp.ClientSession() as client:
            body = {"question": QUESTION, "stream": False, "settings": {"depth": "normal", "max_nodes": 1}}
            async with client.post(f"{api.url}/v1/search", json=body) as response:
                result = await response.json()
    assert response.status == 200 and plan_errors(result) == [], result
    assert [node["question"] for node in result["graph"]] == [QUESTION]


async def test_an_unknown_depth_is_refused(tmp_path: Path) -> None:
    async with FakeOpenAIServer(reply) as llm:
        api = await started(tmp_path, llm)
        async with api, aiohttp.ClientSession() as client:
            body = {"question": QUESTION, "stream": False, "settings": {"depth": "bottomless"}}
            async with client.post(f"{api.url}/v1/search", json=body) as response:
                assert response.status == 422
        assert not llm.requests
