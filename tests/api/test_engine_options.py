"""The engines a server can use (GET /v1/engines, the schema's enum), and the time range and search
language a request may set, on a real uvicorn on 127.0.0.1 with engines built from the registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from mindsearch import Settings
from mindsearch.api import create_app
from mindsearch.testing import AppServer, FakeOpenAIServer, StaticSite, kind_of_body

searx_seen: list[dict[str, str]] = []


async def searxng(request: web.Request) -> web.Response:
    searx_seen.append(dict(request.query))
    return web.json_response(
        {"results": [{"url": "https://a.example/pizza", "title": "Pizza", "content": "p"}]}
    )


def reply(body: dict[str, Any]) -> Any:
    if kind_of_body(body) == "queries":
        return '{"queries": ["Pizza Hut founded"]}'
    return "Pizza Hut was founded in 1958 by Dan and Frank Carney [1]."


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[AppServer, Settings]]:
    searx_seen.clear()
    async with FakeOpenAIServer(reply) as llm, StaticSite(routes={"/search": searxng}) as searx:
        settings = Settings(
            llm="openai",
            base_url=f"{llm.url}/v1",
            model="fake",
            data_dir=tmp_path / "data",
            engines=["local", "searxng"],
            searxng_url=searx.url,
            api_key="k3y",
            pages_per_node=0,
        )
        async with AppServer(create_app(settings)) as api:
            yield api, settings


AUTH = {"Authorization": "Bearer k3y"}


async def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.json()


async def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=AUTH) as response:
        return response.status, await response.json()


async def test_the_engine_list_names_every_engine_and_the_enabled_ones(
    server: tuple[AppServer, Settings],
) -> None:
    """Before, a client could only guess (the UI offered six fixed names) and learn from a 422."""
    api, _settings = server
    status, listing = await get(f"{api.url}/v1/engines", AUTH)
    assert status == 200
    assert listing["enabled"] == ["local", "searxng"]
    by_name = {e["name"]: e for e in listing["engines"]}
    assert list(by_name)[:6] == ["local", "searxng", "duckduckgo", "brave", "serper", "tavily"]
    assert by_name["searxng"] == {
        "name": "searxng",
        "enabled": True,
        "package": "mindsearch",
        "time_ranges": ["day", "week", "month", "year"],
        "search_language": True,
    }
    assert by_name["local"]["time_ranges"] == [] and by_name["local"]["search_language"] is False
    assert by_name["brave"] == {
        "name": "brave",
        "enabled": False,
        "package": "mindsearch",
        "time_ranges": None,
        "search_language": None,
    }


async def test_the_engine_list_needs_the_key_like_every_route_but_health(
    server: tuple[AppServer, Settings],
) -> None:
    api, _settings = server
    assert (await get(f"{api.url}/v1/engines"))[0] == 401
    assert (await get(f"{api.url}/v1/engines", {"Authorization": "Bearer wrong"}))[0] == 401


async def test_the_schema_lists_the_servers_engines(server: tuple[AppServer, Settings]) -> None:
    api, _settings = server
    status, schema = await get(f"{api.url}/openapi.json", AUTH)
    assert status == 200
    options = next(v for k, v in schema["components"]["schemas"].items() if k.startswith("SearchOptions"))
    array = next(v for v in options["properties"]["engines"]["anyOf"] if v.get("type") == "array")
    assert array["items"] == {"type": "string", "enum": ["local", "searxng"]}
    assert {"time_range", "search_language"} <= set(options["properties"])
    assert "/v1/engines" in schema["paths"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"engines": ["brave"]},
            "settings.engines: brave not enabled on this server (it searches local, searxng)",
        ),
        (
            {"engines": ["bing"]},
            "settings.engines: Value error, unknown engine(s) ['bing']; choose from local, duckduckgo",
        ),
        ({"time_range": "fortnight"}, "settings.time_range: Input should be 'any', 'day', 'week'"),
        ({"search_language": "klingon!"}, "'klingon!' is not a language code"),
    ],
)
async def test_a_request_for_what_the_server_cannot_do_is_refused(
    server: tuple[AppServer, Settings], settings: dict[str, Any], message: str
) -> None:
    api, _settings = server
    status, body = await post(
        f"{api.url}/v1/search", {"question": "When was Pizza Hut founded?", "settings": settings}
    )
    assert status == 422 and message in body["error"]["message"], body


async def test_a_time_range_and_language_reach_the_engines_and_the_note_reaches_the_client(
    server: tuple[AppServer, Settings],
) -> None:
    """The time range and search language are not bounds (no 'at most'), and the run's note about the
    engine that cannot honour them is shown as it is (it names an engine and codes only), not as the
    stable 'a search engine failed' that hides upstream error text."""
    api, _settings = server
    status, result = await post(
        f"{api.url}/v1/search",
        {
            "question": "When was Pizza Hut founded?",
            "stream": False,
            "settings": {"depth": "quick", "time_range": "week", "search_language": "de"},
        },
    )
    assert status == 200, result
    assert {"time_range": "week", "language": "de"}.items() <= searx_seen[0].items()
    assert result["errors"] == [
        "search: local: cannot limit results to the past week or limit results to the language de; "
        "its results are used unfiltered"
    ]
