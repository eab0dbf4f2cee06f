"""A real browser (Debian's chromium, headless) uses the Streamlit UI, which talks to `serve.py`.

The model is the fake OpenAI-compatible server on loopback; the search engine is the real local index
(the bundled demo corpus). Set UPDATE_SCREENSHOT=1 to refresh docs/screenshot.png.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mindsearch.testing import FakeOpenAIServer, clean_env, kind_of_body, plan_json

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
QUESTION = "Which band was formed first, The Exies or Circus Diablo?"
ANSWERS = {
    "q1": "The Exies are an American rock band formed in Los Angeles in 1997 [1].",
    "q2": "Circus Diablo was an American rock band formed in 2004 [1].",
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
        for piece in "The Exies were formed first: in 1997 [1], seven years before Circus Diablo [2].".split()
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
        *args, cwd=str(ROOT), env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )


@pytest.fixture
async def ui(tmp_path: Path) -> AsyncIterator[str]:
    env = clean_env()
    api_port, ui_port = free_port(), free_port()
    async with FakeOpenAIServer(reply, piece_delay=0.02) as llm:
        server = await start(
            sys.executable,
            "serve.py",
            *llm.cli_flags(),
            "--port",
            str(api_port),
            "--data-dir",
            str(tmp_path / "data"),
            env=env,
        )
        streamlit = await start(
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "frontend/app.py",
            "--server.port",
            str(ui_port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            env={**env, "MINDSEARCH_SERVER_URL": f"http://127.0.0.1:{api_port}"},
        )
        try:
            await wait_for(f"http://127.0.0.1:{api_port}/health")
            await wait_for(f"http://127.0.0.1:{ui_port}/_stcore/health")
            yield f"http://127.0.0.1:{ui_port}"
        finally:
            for process in (server, streamlit):
                process.terminate()
                await process.wait()


async def test_browser_asks_and_sees_the_cited_answer(ui: str, tmp_path: Path) -> None:
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
        await page.goto(ui)
        box = page.get_by_test_id("stChatInputTextArea")
        await box.wait_for(timeout=60_000)
        await box.fill(QUESTION)
        await box.press("Enter")
        await page.get_by_text("References").first.wait_for(timeout=90_000)
        await page.get_by_text("sub-questions,").first.wait_for(timeout=30_000)
        text = await page.inner_text("body")
        shot = tmp_path / "screenshot.png"
        await page.screenshot(path=str(shot), full_page=True)
        await browser.close()
    assert "The Exies were formed first" in text
    assert "The Exies" in text.split("References", 1)[1], "a reference is listed"
    assert "q3: Which was formed first" in text
    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOT"):
        shutil.copy(shot, ROOT / "docs" / "screenshot.png")
