"""Reading big pages keeps the event loop free: decoding, extraction and ranking run in worker threads.

A ticker sleeps 10 ms in a loop and records how late it wakes up while a run fetches and ranks 20 pages
of about 1 MB of text each; other nodes, the server's other requests and streaming all wait that long.
"""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

from aiohttp import web

from mindsearch import MindSearch, Settings
from mindsearch.llm.base import ModelRequest
from mindsearch.search.base import SearchHit
from mindsearch.testing import MemoryEngine, ScriptedModel, StaticSite, doc_hit, kind_of, plan_json
from mindsearch.web.extract import PlainTextExtractor

PAGES = 20
PARAGRAPH = (
    "The browser project grew out of an open release of source code. Volunteers and staff wrote "
    "patches, reviewed them and shipped nightly builds to testers around the world. "
) * 8
FACT = "The Mozilla community was created in 1998 by members of Netscape."
QUESTION = "When was the Mozilla community created?"


def big_text(n: int, size: int = 1_000_000) -> str:
    """About ``size`` characters of prose in paragraphs, with the one fact page ``n`` holds at its start."""
    filler = "\n\n".join(f"Part {n}.{i}. {PARAGRAPH}" for i in range(size // len(PARAGRAPH) + 1))
    return f"{FACT} (page {n})\n\n{filler}"[:size]


class Ticker:
    """Sleeps ``period`` again and again and keeps the worst overshoot: the event loop's lag."""

    def __init__(self, period: float = 0.01) -> None:
        self.period, self.worst, self.ticks = period, 0.0, 0
        self.noise = 0.0  # the worst lag while a plain CPU-bound thread ran

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.period)
            self.worst = max(self.worst, loop.time() - started - self.period)
            self.ticks += 1


def script(request: ModelRequest) -> str:
    kind = kind_of(request)
    if kind == "plan":
        return plan_json(("q1", QUESTION, []))
    if kind == "queries":
        return json.dumps({"queries": ["mozilla community created"]})
    return "The Mozilla community was created in 1998 [1]."


async def ticking(run: Any) -> tuple[Ticker, Any]:
    """The run's result, and the ticker that ran beside it.

    The garbage collector's full passes stop every thread for as long as it takes to scan every object
    alive, which in a test process grows with the tests run before (up to 80 ms seen). The objects
    alive before the run are frozen, so those passes scan what the run makes and the ticker measures
    the reading, not the heap the test process happens to have.
    """
    ticker = Ticker()
    gc.collect()
    gc.freeze()
    task = asyncio.create_task(ticker.run())
    # What any worker thread costs the loop on this host (GIL hand-offs, a loaded CI machine): measured
    # first, with a thread that only burns CPU in pure Python, so the run is compared like with like.
    await asyncio.to_thread(_burn, 1.0)
    ticker.noise, ticker.worst = ticker.worst, 0.0
    try:
        result = await run
    finally:
        task.cancel()
        gc.unfreeze()
    return ticker, result


def _burn(seconds: float) -> None:
    """Pure-Python work in a thread, holding the GIL as a parser or ranker would between switches."""
    import time

    end = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < end:
        total += sum(i * i for i in range(1000))


def assert_responsive(ticker: Ticker) -> None:
    """Under 50 ms on a quiet machine; on a loaded one, within three times what a plain worker thread
    already costs the loop there. Ranking on the loop stalled it for 0.9 to 2.2 s: far beyond either."""
    allowed = max(0.05, 3 * ticker.noise)
    assert ticker.worst < allowed, (
        f"the event loop stalled for {ticker.worst * 1000:.0f} ms "
        f"(allowed {allowed * 1000:.0f} ms; a plain worker thread costs {ticker.noise * 1000:.0f} ms here)"
    )
    assert ticker.ticks > 10, "the ticker ran during the run"


async def test_twenty_large_web_pages_are_read_and_ranked_off_the_event_loop(settings: Settings) -> None:
    texts = {f"/p{n}": big_text(n).encode() for n in range(PAGES)}

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=texts[request.path], content_type="text/plain", charset="utf-8")

    settings.allow_hosts, settings.results_per_query = ["127.0.0.1"], PAGES
    settings.pages_per_node, settings.pages_per_question = PAGES, PAGES
    settings.page_timeout = 60
    async with StaticSite(routes={path: page for path in texts}) as site:
        hits = [SearchHit(f"{site.url}{path}", f"Page {path}", "", "web") for path in texts]
        model = ScriptedModel(script)
        async with MindSearch(
            settings,
            model=model,
            engines=[MemoryEngine(hits, name="web", is_web=True)],
            extractor=PlainTextExtractor(),
        ) as ms:
            ticker, answer = await ticking(ms.ask(QUESTION))
    assert_responsive(ticker)
    reads = [e for e in answer.events if e.type == "page_read"]
    assert len(reads) == PAGES and all(e.ok and e.chars >= 100_000 for e in reads)
    assert FACT in next(r.text for r in model.requests("answer")), "the pages were ranked"


async def test_twenty_large_html_pages_are_extracted_off_the_event_loop(settings: Settings) -> None:
    """The real extractor (trafilatura, BeautifulSoup) on 1 MB HTML pages.

    trafilatura's metadata search ran regexes over the whole page, each call holding the GIL, and the
    loop with it, for tens of milliseconds (stalls of 130-170 ms here) although only the title is used.
    """
    html = "<html><head><title>Page {n}</title></head><body><article>{body}</article></body></html>"
    pages = {
        f"/h{n}": html.format(n=n, body="".join(f"<p>{part}</p>" for part in big_text(n).split("\n\n")))
        for n in range(PAGES)
    }

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=pages[request.path], content_type="text/html")

    settings.allow_hosts, settings.results_per_query = ["127.0.0.1"], PAGES
    settings.pages_per_node, settings.pages_per_question, settings.page_timeout = PAGES, PAGES, 60
    async with StaticSite(routes={path: page for path in pages}) as site:
        hits = [SearchHit(f"{site.url}{path}", "", "", "web") for path in pages]
        model = ScriptedModel(script)
        engines = [MemoryEngine(hits, name="web", is_web=True)]
        async with MindSearch(settings, model=model, engines=engines) as ms:
            ticker, answer = await ticking(ms.ask(QUESTION))
    assert_responsive(ticker)
    reads = [e for e in answer.events if e.type == "page_read"]
    assert len(reads) == PAGES and all(e.ok and e.title.startswith("Page ") for e in reads)
    assert FACT in next(r.text for r in model.requests("answer")), "the pages were ranked"


async def test_ranking_twenty_large_documents_stays_off_the_event_loop(settings: Settings) -> None:
    docs = [doc_hit(f"Document {n}", big_text(n), url=f"doc://{n}") for n in range(PAGES)]
    model = ScriptedModel(script)
    async with MindSearch(settings, model=model, engines=[MemoryEngine(docs)]) as ms:
        ticker, answer = await ticking(ms.ask(QUESTION))
    assert_responsive(ticker)
    assert answer.ok and FACT in next(r.text for r in model.requests("answer")), "the documents were ranked"


async def test_max_page_chars_caps_what_is_ranked(settings: Settings) -> None:
    """Text past the cap is never chunked or ranked: a fact there cannot be found."""
    late = doc_hit("Late", big_text(0, 50_000).replace(FACT, "") + "\n\n" + FACT, url="doc://late")
    for cap, found in ((100_000, True), (20_000, False)):
        settings.max_page_chars = cap
        model = ScriptedModel(script)
        async with MindSearch(settings, model=model, engines=[MemoryEngine([late])]) as ms:
            await ms.ask(QUESTION)
        assert (FACT in next(r.text for r in model.requests("answer"))) is found, cap
