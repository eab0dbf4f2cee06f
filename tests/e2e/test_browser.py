"""A real browser (Debian's chromium, headless) uses the Streamlit UI, which talks to `serve.py`.

The model is the fake OpenAI-compatible server on loopback; the search engine is the real local index
(the bundled demo corpus). The browser may reach loopback only: anything else it asks for is recorded
and aborted. Set UPDATE_SCREENSHOT=1 to refresh docs/screenshot.png.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from mindsearch.testing import FakeOpenAIServer, StaticSite, clean_env, kind_of_body, plan_json
from tests.ui.test_app import SSEHandler, hostile, hostile_events, serve

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
QUESTION = "Which band was formed first, The Exies or Circus Diablo?"
ANSWERS = {
    "q1": "The Exies are an American rock band formed in Los Angeles in 1997 [1].",
    "q2": "Circus Diablo is an American rock band, formed in early 2006 [1].",
    "q3": "The Exies were formed first, in 1997 [1].",
}


def reply(body: dict[str, Any]) -> Any:
    text = "\n".join(str(m.get("content", "")) for m in body["messages"])
    kind = kind_of_body(body)
    if kind == "plan":
        return plan_json(
            ("q1", "When was The Exies formed?", []),
            ("q2", "When was Circus Diablo formed?", []),
            ("q3", "Which was formed first, The Exies or Circus Diablo?", ["q1", "q2"]),
        )
    if kind == "queries":
        question = text.split("Sub-question: ", 1)[1].split("\n", 1)[0]
        return json.dumps({"queries": [question]})
    if kind == "answer":
        for node, question in (
            ("q1", "When was The Exies"),
            ("q2", "When was Circus Diablo"),
            ("q3", "Which was"),
        ):
            if f"Sub-question: {question}" in text:
                return [piece + " " for piece in ANSWERS[node].split(" ")]
    return [
        piece + " "
        for piece in "The Exies were formed first, in 1997 [1]. Circus Diablo was formed in 2006 [2].".split()
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for(url: str, seconds: float = 60) -> None:
    async with aiohttp.ClientSession() as client:
        for _ in range(int(seconds * 4)):
            try:
                async with client.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.25)
    raise AssertionError(f"{url} did not come up")


async def start(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *args,
        cwd=str(ROOT),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


@asynccontextmanager
async def streamlit(server_url: str, **env: str) -> AsyncIterator[str]:
    """The UI as the README starts it: `streamlit run frontend/app.py`, nothing but the port on the
    command line (the address and usage statistics come from frontend/.streamlit/config.toml)."""
    port = free_port()
    process = await start(
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "frontend/app.py",
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        env={**clean_env(), "MINDSEARCH_SERVER_URL": server_url, **env},
    )
    try:
        await wait_for(f"http://127.0.0.1:{port}/_stcore/health")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        await process.wait()


@asynccontextmanager
async def api_server(llm: FakeOpenAIServer, data: Path) -> AsyncIterator[str]:
    """`python serve.py` with the fake model server and the real local index."""
    port = free_port()
    flags = [*llm.cli_flags(), "--port", str(port), "--data-dir", str(data)]
    process = await start(sys.executable, "serve.py", *flags, env=clean_env())
    try:
        await wait_for(f"http://127.0.0.1:{port}/v1/models")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        await process.wait()


async def unhurried(body: dict[str, Any]) -> Any:
    """``reply``, with a second's thought before each sub-answer: the browser sees nodes running."""
    if kind_of_body(body) == "answer":
        await asyncio.sleep(1.0)
    return reply(body)


@pytest.fixture
async def ui(tmp_path: Path) -> AsyncIterator[str]:
    async with (
        FakeOpenAIServer(unhurried, piece_delay=0.02) as llm,
        api_server(llm, tmp_path / "data") as api,
    ):
        async with streamlit(api) as url:
            yield url


class Browser:
    """Headless chromium that lets nothing leave loopback: every other request is recorded and aborted
    (so a request Streamlit or a rendered page would send to the internet is seen, never sent)."""

    def __init__(self) -> None:
        self.outside: list[str] = []
        self.frames: list[bytes] = []

    @asynccontextmanager
    async def page(self) -> AsyncIterator[Any]:
        if CHROMIUM is None:
            pytest.fail("Debian's chromium is needed for this test: apt-get install chromium")
        from playwright.async_api import async_playwright

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--disable-quic",
                ],
            )
            page = await browser.new_page(viewport={"width": 1280, "height": 1100})

            async def guard(route: Any) -> None:
                host = urlsplit(route.request.url).hostname or ""
                if route.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
                    await route.continue_()
                else:
                    self.outside.append(route.request.url)
                    await route.abort()

            def websocket(ws: Any) -> None:
                ws.on("framereceived", lambda payload: self.frames.append(_bytes(payload)))
                ws.on("framesent", lambda payload: self.frames.append(_bytes(payload)))

            await page.route("**/*", guard)
            page.on("websocket", websocket)
            try:
                yield page
            finally:
                await browser.close()


def _bytes(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else str(payload).encode()


def listening_addresses(port: int) -> set[str]:
    """The local addresses the kernel has a listening TCP socket on for ``port`` (from /proc)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                raw = bytes.fromhex(address)
                if width == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:  # four little-endian 32-bit words
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                    found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


async def test_browser_asks_and_sees_the_cited_answer(ui: str, tmp_path: Path) -> None:
    browser = Browser()
    async with browser.page() as page:
        await page.goto(ui)
        box = page.get_by_test_id("stChatInputTextArea")
        await box.wait_for(timeout=60_000)
        await box.fill(QUESTION)
        await box.press("Enter")
        # while it runs, the UI names the sub-questions being searched
        await page.get_by_text(re.compile(r"Searching… running q\d")).first.wait_for(timeout=60_000)
        await page.get_by_text("References").first.wait_for(timeout=90_000)
        await page.get_by_text(re.compile(r"\d sub-questions?, ")).first.wait_for(timeout=30_000)
        text = await page.inner_text("body")
        shot = tmp_path / "screenshot.png"
        await page.screenshot(path=str(shot), full_page=True)
    assert "The Exies were formed first" in text
    assert "The Exies" in text.split("References", 1)[1], "a reference is listed"
    assert "q3: Which was formed first" in text
    assert "sub-question(s) running" not in text
    assert shot.stat().st_size > 10_000
    assert browser.outside == [], "nothing left loopback (no usage statistics, no fonts, no images)"
    if os.environ.get("UPDATE_SCREENSHOT"):
        shutil.copy(shot, ROOT / "docs" / "screenshot.png")


@asynccontextmanager
async def embedded_server(data: Path) -> AsyncIterator[str]:
    """`python serve.py` with the defaults a new user gets: the embedded model and the demo corpus."""
    port = free_port()
    process = await start(
        sys.executable, "serve.py", "--port", str(port), "--data-dir", str(data), env=clean_env()
    )
    try:
        await wait_for(f"http://127.0.0.1:{port}/v1/models", seconds=180)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        await process.wait()


@pytest.mark.model
async def test_the_ui_with_the_embedded_model_answers_from_the_demo_corpus(tmp_path: Path) -> None:
    """What a new user sees: the real 270M model behind the server, the demo corpus, a real browser.
    UPDATE_SCREENSHOT=1 refreshes docs/screenshot-embedded.png, the README's honest picture."""
    async with embedded_server(tmp_path / "data") as api, streamlit(api) as ui:
        browser = Browser()
        async with browser.page() as page:
            await page.goto(ui)
            box = page.get_by_test_id("stChatInputTextArea")
            await box.wait_for(timeout=60_000)
            await box.fill("When was Pizza Hut founded, and by whom?")
            await box.press("Enter")
            await page.get_by_text("sub-question").last.wait_for(timeout=240_000)
            await page.get_by_text(re.compile(r"\d sub-questions?, [\d.]+ s")).first.wait_for(timeout=240_000)
            text = await page.inner_text("body")
            shot = tmp_path / "screenshot-embedded.png"
            await page.screenshot(path=str(shot), full_page=True)
    answer, _, references = text.partition("References")
    assert "1958" in answer and "Carney" in answer, answer[-400:]
    assert "Pizza Hut" in references, "the Pizza Hut page is cited"
    assert browser.outside == []
    if os.environ.get("UPDATE_SCREENSHOT"):
        shutil.copy(shot, ROOT / "docs" / "screenshot-embedded.png")


async def test_the_ui_sends_no_usage_statistics() -> None:
    """Streamlit gathers usage statistics unless told not to (before: a request to data.streamlit.io)."""
    async with streamlit("http://127.0.0.1:9") as ui:
        browser = Browser()
        async with browser.page() as page:
            await page.goto(ui)
            await page.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)
            await page.wait_for_timeout(3_000)  # statistics are sent once the app has loaded
    assert browser.outside == []


async def test_the_ui_listens_on_loopback_only() -> None:
    """Streamlit listens on every interface unless told not to (before: ``::``)."""
    async with streamlit("http://127.0.0.1:9") as ui:
        port = int(ui.rsplit(":", 1)[1])
        assert listening_addresses(port) == {"127.0.0.1"}, "frontend/.streamlit/config.toml binds 127.0.0.1"


# --- model-written Markdown and hostile events stay text ---------------------------------------------------
def hostile_reply(site: str) -> Any:
    """A planner whose sub-question holds an image and a phishing link on ``site``, and a writer that
    repeats them."""
    markup = hostile(site)

    def answer(body: dict[str, Any]) -> Any:
        kind = kind_of_body(body)
        if kind == "plan":
            return plan_json(("q1", f"When was The Exies formed? {markup}", []))
        if kind == "queries":
            return json.dumps({"queries": ["The Exies formed"]})
        return f"The Exies were formed in 1997 [1]. {markup}"

    return answer


async def assert_inert(page: Any, site: StaticSite) -> None:
    """No element points at the site: no link, no image; and the site was never asked for anything."""
    host = f"127.0.0.1:{site.port}"
    links = await page.eval_on_selector_all(f'a[href*="{host}"]', "els => els.map(e => e.href)")
    images = await page.eval_on_selector_all(f'img[src*="{host}"]', "els => els.map(e => e.src)")
    assert links == [] and images == [], (links, images)
    await page.wait_for_timeout(1_000)  # anything that would load has had the time to
    assert site.hits == [], f"the browser requested {site.hits}"


async def test_model_written_markdown_stays_text_in_the_browser(tmp_path: Path) -> None:
    async with StaticSite(routes={"/x.png": png, "/phish": png, "/img.png": png}) as site:
        site_host = f"127.0.0.1:{site.port}"
        async with FakeOpenAIServer(hostile_reply(site_host)) as llm:
            async with api_server(llm, tmp_path / "data") as api, streamlit(api) as ui:
                browser = Browser()
                async with browser.page() as page:
                    await page.goto(ui)
                    box = page.get_by_test_id("stChatInputTextArea")
                    await box.wait_for(timeout=60_000)
                    await box.fill(QUESTION)
                    await box.press("Enter")
                    await page.get_by_text(re.compile(r"\d sub-questions?, ")).first.wait_for(timeout=90_000)
                    for expander in await page.get_by_test_id("stExpander").all():
                        await expander.locator("summary").click()  # open every sub-question's panel
                    text = await page.inner_text("body")
                    await assert_inert(page, site)
    shown = text.replace("\u2060", "")  # the invisible word joiner that keeps URLs from being linked
    assert f"[Verify your account](http://{site_host}/phish)" in shown, "the Markdown shows as text"
    assert browser.outside == []


async def test_hostile_events_stay_text_and_the_operators_key_stays_hidden(tmp_path: Path) -> None:
    """Every field the UI renders, hostile (errors, node errors, ids, titles, snippets, queries, page
    errors, a reference URL with newlines); the operator's key configured; no field to change either."""
    key = "operator-k3y-0123456789"
    async with StaticSite(routes={"/x.png": png, "/phish": png, "/img.png": png}) as site:
        SSEHandler.script = hostile_events(f"127.0.0.1:{site.port}")
        SSEHandler.bodies, SSEHandler.headers_seen = [], []
        SSEHandler.status, SSEHandler.body, SSEHandler.extra_headers = 200, b"", {}
        server, server_url = serve(SSEHandler)
        try:
            async with streamlit(server_url, MINDSEARCH_API_KEY=key) as ui:
                browser = Browser()
                async with browser.page() as page:
                    await page.goto(ui)
                    box = page.get_by_test_id("stChatInputTextArea")
                    await box.wait_for(timeout=60_000)
                    inputs = await page.eval_on_selector_all("input", "els => els.map(e => e.value)")
                    # the one text field is the documents' collection name (sidebar, "Your documents")
                    fields = page.get_by_test_id("stTextInput")
                    text_fields = await fields.filter(has_not_text="Collection").count()
                    await box.fill(QUESTION)
                    await box.press("Enter")
                    await page.get_by_text(re.compile(r"\d sub-questions?, ")).first.wait_for(timeout=60_000)
                    for expander in await page.get_by_test_id("stExpander").all():
                        await expander.locator("summary").click()
                    text = await page.inner_text("body")
                    html = await page.content()
                    errors = await page.get_by_test_id("stAlert").all_inner_texts()
                    await assert_inert(page, site)
        finally:
            server.shutdown()
    assert any("Verify your account" in error for error in errors), "the errors are there, as text"
    assert SSEHandler.headers_seen[0]["authorization"] == f"Bearer {key}", "the key went to the server"
    assert key not in text and key not in html and key not in "".join(inputs)
    assert not any(key.encode() in frame for frame in browser.frames), "nor over Streamlit's websocket"
    assert server_url.rsplit(":", 1)[1] not in text, "the server's address is not shown"
    assert text_fields == 0, "no field for the server URL or the key"
    assert browser.outside == []


async def png(request: web.Request) -> web.Response:
    return web.Response(body=b"\x89PNG\r\n\x1a\n", content_type="image/png")


# --- research mode ------------------------------------------------------------------------------------
RESEARCH_OUTLINE = {
    "title": "Two rock bands",
    "sections": [
        {"title": "The Exies", "questions": ["When was The Exies formed?"]},
        {"title": "Circus Diablo", "questions": ["When was Circus Diablo formed?"]},
        {"title": "Which came first", "questions": ["Which was formed first, The Exies or Circus Diablo?"]},
    ],
}


async def researching(body: dict[str, Any]) -> Any:
    """A model for research mode: the outline above, slow sub-answers (the browser sees the sections
    researched), each section written from its sub-answers, and a summary that repeats the first."""
    text = "\n".join(str(m.get("content", "")) for m in body["messages"])
    fmt = json.dumps(body.get("response_format") or {})
    if "OutlineReply" in fmt or "You plan a research report" in text:
        return json.dumps(RESEARCH_OUTLINE)
    if kind_of_body(body) == "answer":
        await asyncio.sleep(1.5)
    if "Sub-question:" in text or kind_of_body(body) == "queries":
        return reply(body)
    cited = re.findall(r"[A-Z][^\n\[\]\"?]*?\[\d+\]\.", text.split("<<<", 1)[-1])
    return [piece + " " for piece in " ".join(cited[:2] or ["Nothing is known."]).split(" ")]


async def test_browser_research_mode_outline_sections_and_pdf_download(tmp_path: Path) -> None:
    async with (
        FakeOpenAIServer(researching, piece_delay=0.02) as llm,
        api_server(llm, tmp_path / "data") as api,
        streamlit(api) as ui,
    ):
        browser = Browser()
        async with browser.page() as page:
            await page.goto(ui)
            box = page.get_by_test_id("stChatInputTextArea")
            await box.wait_for(timeout=60_000)
            depth = page.get_by_test_id("stSelectbox").filter(has_text="Depth")
            await depth.locator("input").click()
            await page.get_by_role("option", name="deep").click()
            await box.fill("Which band was formed first, The Exies or Circus Diablo? Write a short report.")
            await box.press("Enter")
            # the outline appears with each section's progress, then the sections fill in
            await page.get_by_text("Outline").first.wait_for(timeout=60_000)
            await page.get_by_text(
                re.compile(r"Circus Diablo \((researching|writing|done)\)")
            ).first.wait_for(timeout=60_000)
            await page.get_by_text(re.compile(r"\d sections, \d sub-questions")).first.wait_for(
                timeout=120_000
            )
            pdf_button = page.get_by_role("button", name="PDF")
            await pdf_button.wait_for(timeout=60_000)  # the download buttons come once it is over
            text = await page.inner_text("body")
            shot = tmp_path / "screenshot-research.png"
            await page.screenshot(path=str(shot), full_page=True)
            async with page.expect_download(timeout=60_000) as download_info:
                await pdf_button.click()
            download = await download_info.value
            pdf = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert "Two rock bands" in text
    assert "The Exies are an American rock band formed in Los Angeles in 1997" in text
    assert "Circus Diablo (done)" in text and "References" in text
    assert pdf.startswith(b"%PDF-") and len(pdf) > 1_000
    assert browser.outside == [], "nothing left loopback"
    if os.environ.get("UPDATE_SCREENSHOT"):
        shutil.copy(shot, ROOT / "docs" / "screenshot-research.png")
