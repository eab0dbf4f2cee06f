"""The fault matrix: every row breaks one thing for real (servers on 127.0.0.1) and checks that the run
ends with an answer or a clear error event, that no exception escapes, that no task is left running,
and that the events say what failed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from mindsearch import MindSearch, Settings
from mindsearch import events as ev
from mindsearch._planner import FELL_BACK
from mindsearch.llm.openai import OpenAIModel
from mindsearch.search.base import SearchHit
from mindsearch.search.searxng import SearxngEngine
from mindsearch.testing import (
    CUT,
    FakeOpenAIServer,
    MemoryEngine,
    StaticSite,
    doc_hit,
    kind_of_body,
    plan_json,
)

QUESTION = "When was the Mozilla community created?"
GOOD_DOC = doc_hit("Mozilla", "Mozilla is a free-software community, created in 1998 by members of Netscape.")
ARTICLE = "<html><body><article><p>{}</p></article></body></html>".format(
    "Mozilla is a free-software community, created in 1998 by members of Netscape. " * 4
)
CAP = 100_000  # max_page_bytes of every row
ZH = "Mozilla社区由网景公司的成员于1998年创建，是一个自由软件社区。"  # must reach the model intact
MORE_ZH = "北京是中华人民共和国的首都，也是全国的政治和文化中心。"


def zh_page(meta: str = "", filler: int = 0, pad: int = 0) -> str:
    """A Chinese article; ``BAD`` marks where a test puts a stray byte."""
    head = f'<meta charset="{meta}">' if meta else ""
    more = "".join(f"<p>{MORE_ZH * 40}</p>" for _ in range(filler))
    return (
        f"<html><head>{head}<title>Mozilla{' ' * pad}</title></head><body><article>"
        f"<p>The Mozilla community was created in 1998 by members of Netscape. {ZH}</p>"
        f"<p>{MORE_ZH}BAD{MORE_ZH}</p>{more}</article></body></html>"
    )


def with_bad_byte(html: str, encoding: str) -> bytes:
    return html.encode(encoding).replace(b"BAD", b"\xff")  # 0xff is no character in UTF-8 or GBK


def cut_mid_character() -> bytes:
    """A UTF-8 page longer than the cap, whose byte at the cap is inside a Chinese character."""
    for pad in range(10):
        body = zh_page(filler=50, pad=pad).replace("BAD", "").encode()
        if len(body) > CAP and body[CAP] & 0xC0 == 0x80:  # a continuation byte: the cap splits a character
            return body
    raise AssertionError("no padding puts the cap inside a character")


def good_reply(body: dict[str, Any]) -> Any:
    kind = kind_of_body(body)
    if kind == "plan":
        return plan_json(("q1", "When was Mozilla created?", []), ("q2", "Who created Mozilla?", []))
    if kind == "queries":
        return '{"queries": ["mozilla created"]}'
    return "Mozilla was created in 1998 by members of Netscape [1]."


# --- pages ---------------------------------------------------------------------------------------------
async def ok_page(request: web.Request) -> web.Response:
    return web.Response(text=ARTICLE, content_type="text/html")


async def status_404(request: web.Request) -> web.Response:
    return web.Response(status=404, text="gone")


async def status_500(request: web.Request) -> web.Response:
    return web.Response(status=500, text="boom")


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.Response(text=ARTICLE, content_type="text/html")


async def huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/html"})
    await response.prepare(request)
    await response.write(ARTICLE.encode())
    for _ in range(100):
        await response.write(b"<p>" + b"filler " * 2000 + b"</p>")
    return response


async def binary(request: web.Request) -> web.Response:
    return web.Response(body=bytes(range(256)) * 100, content_type="application/octet-stream")


async def undeclared_charset(request: web.Request) -> web.Response:
    body = ARTICLE.replace("Netscape", "Netscape à Zürich").encode("cp1252")
    return web.Response(body=body, headers={"Content-Type": "text/html"})


async def wrong_charset(request: web.Request) -> web.Response:
    body = ARTICLE.replace("Netscape", "Netscape à Zürich").encode("cp1252")
    return web.Response(body=body, headers={"Content-Type": "text/html; charset=utf-8"})


async def utf8_bad_byte(request: web.Request) -> web.Response:
    body = with_bad_byte(zh_page(), "utf-8")
    return web.Response(body=body, headers={"Content-Type": "text/html; charset=utf-8"})


async def gbk_bad_byte(request: web.Request) -> web.Response:
    return web.Response(body=with_bad_byte(zh_page(meta="gbk"), "gbk"), headers={"Content-Type": "text/html"})


async def utf8_cut(request: web.Request) -> web.Response:
    return web.Response(body=cut_mid_character(), headers={"Content-Type": "text/html; charset=utf-8"})


async def gbk_undeclared(request: web.Request) -> web.Response:
    body = zh_page().replace("BAD", "").encode("gbk")
    return web.Response(body=body, headers={"Content-Type": "text/html"})


async def latin1_header_utf8_body(request: web.Request) -> web.Response:
    # an Apache-style default header in front of a UTF-8 page that says so in its meta tag
    body = zh_page(meta="utf-8").replace("BAD", "").encode()
    return web.Response(body=body, headers={"Content-Type": "text/html; charset=iso-8859-1"})


async def endless(request: web.Request) -> web.Response:
    raise web.HTTPFound(f"/endless?n={int(request.query.get('n', 0)) + 1}")


async def reset(request: web.Request) -> web.Response:
    assert request.transport is not None
    request.transport.abort()
    return web.Response(text="never sent")


async def search_429(request: web.Request) -> web.Response:
    return web.Response(status=429)


ROUTES = {
    "/ok": ok_page,
    "/404": status_404,
    "/500": status_500,
    "/slow": slow,
    "/huge": huge,
    "/binary": binary,
    "/undeclared": undeclared_charset,
    "/wrong-charset": wrong_charset,
    "/utf8-bad-byte": utf8_bad_byte,
    "/gbk-bad-byte": gbk_bad_byte,
    "/utf8-cut": utf8_cut,
    "/gbk-undeclared": gbk_undeclared,
    "/latin1-header-utf8-body": latin1_header_utf8_body,
    "/endless": endless,
    "/reset": reset,
    "/search": search_429,
}


@dataclass
class Row:
    """One fault: what to break, and what the events must then say."""

    name: str
    page: str | None = None  # a broken page searched next to a good one
    engine: str | None = None  # "raise", "timeout", "empty", "429"
    llm: Callable[[dict[str, Any]], Any] | None = None
    expect: Callable[[list[Any]], bool] = field(default=lambda events: True)
    answered: bool = True
    seen: str | None = None  # text of the broken page the model must be shown: the page read right


def page_error(word: str) -> Callable[[list[Any]], bool]:
    return lambda events: any(e.type == "page_read" and not e.ok and word in (e.error or "") for e in events)


def page_ok(path: str) -> Callable[[list[Any]], bool]:
    return lambda events: any(e.type == "page_read" and e.ok and e.url.endswith(path) for e in events)


def error_says(*words: str) -> Callable[[list[Any]], bool]:
    return lambda events: any(e.type == "error" and all(w in e.message for w in words) for e in events)


def fell_back_after(*words: str) -> Callable[[list[Any]], bool]:
    """The planner gave no valid plan: the question itself is searched, told by the plan event's note
    (with what was wrong), and by no error event of stage plan (issue 9)."""
    return lambda events: (
        any(
            e.type == "plan" and e.note == FELL_BACK and all(w in e.recovered_from for w in words)
            for e in events
        )
        and not any(e.type == "error" and e.stage == "plan" for e in events)
    )


def failing(kind: str, reply: Any) -> Callable[[dict[str, Any]], Any]:
    def handler(body: dict[str, Any]) -> Any:
        return reply if kind_of_body(body) == kind else good_reply(body)

    return handler


def plan_then_good(bad: str) -> Callable[[dict[str, Any]], Any]:
    return failing("plan", bad)


ROWS = [
    Row("engine-exception", engine="raise", expect=error_says("broken", "RuntimeError")),
    Row("engine-timeout", engine="timeout", expect=error_says("no answer within")),
    Row(
        "engine-empty",
        engine="empty",
        answered=False,
        expect=lambda events: any(
            e.type == "node_done" and "no search result" in (e.error or "") for e in events
        ),
    ),
    Row("engine-429", engine="429", expect=error_says("rate limited")),
    Row("page-404", page="/404", expect=page_error("HTTP 404")),
    Row("page-500", page="/500", expect=page_error("HTTP 500")),
    Row("page-slow", page="/slow", expect=page_error("timed out")),
    Row("page-too-large", page="/huge", expect=page_ok("/huge")),
    Row("page-binary", page="/binary", expect=page_error("not text")),
    Row("page-undeclared-charset", page="/undeclared", expect=page_ok("/undeclared"), seen="à Zürich"),
    Row("page-wrong-charset", page="/wrong-charset", expect=page_ok("/wrong-charset"), seen="à Zürich"),
    Row("page-utf8-bad-byte", page="/utf8-bad-byte", expect=page_ok("/utf8-bad-byte"), seen=ZH),
    Row("page-gbk-bad-byte", page="/gbk-bad-byte", expect=page_ok("/gbk-bad-byte"), seen=ZH),
    Row("page-utf8-cut-at-the-cap", page="/utf8-cut", expect=page_ok("/utf8-cut"), seen=ZH),
    Row("page-gbk-undeclared", page="/gbk-undeclared", expect=page_ok("/gbk-undeclared"), seen=ZH),
    Row(
        "page-latin1-header-utf8-body",
        page="/latin1-header-utf8-body",
        expect=page_ok("/latin1-header-utf8-body"),
        seen=ZH,
    ),
    Row("page-endless-redirects", page="/endless", expect=page_error("redirects")),
    Row("page-connection-reset", page="/reset", expect=lambda e: page_error("")(e)),
    Row("llm-429", llm=lambda body: 429, expect=error_says("HTTP 429"), answered=False),
    Row("llm-500", llm=lambda body: 500, expect=error_says("HTTP 500"), answered=False),
    Row(
        "llm-stream-cut",
        llm=failing("answer", ["Mozilla was", CUT]),
        expect=error_says("cut off"),
        answered=False,
    ),
    Row(
        "llm-invalid-plan-json", llm=plan_then_good("this is not json {"), expect=fell_back_after("not JSON")
    ),
    Row("llm-empty-answer", llm=failing("answer", ""), expect=error_says("empty answer"), answered=False),
    Row(
        "plan-cycle",
        llm=plan_then_good(plan_json(("a", "Who?", ["b"]), ("b", "When?", ["a"]))),
        expect=fell_back_after("cycle"),
    ),
    Row(
        "plan-unknown-dependency",
        llm=plan_then_good(plan_json(("a", "Who founded Netscape?", ["zz"]))),
        expect=fell_back_after("unknown id 'zz'"),
    ),
    Row(
        "plan-too-many-nodes",
        llm=plan_then_good(plan_json(*[(f"n{i}", f"Mozilla fact {i}?", []) for i in range(9)])),
        expect=fell_back_after("too many"),
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
async def test_fault(row: Row, tmp_path: Path) -> None:
    before = {t for t in asyncio.all_tasks() if not t.done()}
    async with StaticSite(routes=ROUTES) as site, FakeOpenAIServer(row.llm or good_reply) as llm:
        settings = Settings(
            llm="openai",
            base_url=f"{llm.url}/v1",
            model="fake",
            llm_retries=0,
            data_dir=tmp_path,
            allow_hosts=["127.0.0.1"],
            page_timeout=1.0,
            search_timeout=0.5,
            max_page_bytes=CAP,
            max_redirects=3,
            node_timeout=20,
            total_timeout=40,
        )
        engines: list[Any] = [MemoryEngine([GOOD_DOC], name="local")]
        if row.page:
            hits = [
                SearchHit(site.url + row.page, "broken", "", "web"),
                SearchHit(site.url + "/ok", "ok", "", "web"),
            ]
            engines = [MemoryEngine(hits, name="web", is_web=True)]
        if row.engine == "raise":
            engines.append(MemoryEngine([], name="broken", error=RuntimeError("broken engine")))
        elif row.engine == "timeout":
            engines.append(MemoryEngine([], name="sleepy", delay=5))
        elif row.engine == "empty":
            engines = [MemoryEngine([], name="empty")]
        elif row.engine == "429":
            engines.append(SearxngEngine(site.url, timeout=2))
        engine = MindSearch(settings, model=OpenAIModel.from_settings(settings), engines=engines)
        events = [event async for event in engine.stream(QUESTION)]  # no exception may escape
        await engine.aclose()
        shown = [r.prompt for r in llm.requests if kind_of_body(r.body) == "answer"]
    await asyncio.sleep(0.05)
    assert [e.type for e in events].count("done") == 1 and isinstance(events[-1], ev.Done)
    assert not engine.active_runs
    left = {t for t in asyncio.all_tasks() if not t.done()} - before - {asyncio.current_task()}
    assert not left, f"tasks left running: {left}"
    assert row.expect(events), json.dumps([e.model_dump() for e in events], default=str)[:3000]
    if row.seen is not None:
        assert shown and all(row.seen in prompt for prompt in shown), shown[:1]
    done = events[-1]
    if row.answered:
        assert done.ok and "1998" in done.answer
    else:
        assert done.answer, "a failed run still says what happened"
        assert any(e.type == "error" for e in events)
