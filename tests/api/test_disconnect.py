"""Every route cancels its run when the client hangs up, streaming or not (real uvicorn on 127.0.0.1).

Before, only the streaming routes did: ``/v1/search`` with ``stream: false`` and the non-streaming
``/v1/chat/completions`` kept the run (and its model requests) going after the client had gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mindsearch.testing import FakeOpenAIServer, kind_of_body
from tests.api.test_api import QUESTION, slow_reply, started, wait_until

CHAT = {"model": "mindsearch", "messages": [{"role": "user", "content": QUESTION}]}
ROUTES = [
    ("/v1/search", {"question": QUESTION}),
    ("/v1/search", {"question": QUESTION, "stream": False}),
    ("/solve", {"inputs": QUESTION}),
    ("/v1/chat/completions", {**CHAT, "stream": True}),
    ("/v1/chat/completions", CHAT),
]


@pytest.mark.parametrize(
    ("path", "body"),
    ROUTES,
    ids=["search-sse", "search-json", "solve", "chat-stream", "chat-json"],
)
async def test_a_client_that_hangs_up_cancels_its_run(
    tmp_path: Path, path: str, body: dict[str, Any]
) -> None:
    async with FakeOpenAIServer(slow_reply) as llm:
        api, engine = await started(tmp_path, llm)
        async with api, aiohttp.ClientSession() as client:
            request = asyncio.ensure_future(client.post(f"{api.url}{path}", json=body))
            # the run is at the node's answer, where the fake model sleeps for 30 s
            await wait_until(lambda: any(kind_of_body(r.body) == "answer" for r in llm.requests), timeout=5)
            assert engine.active_runs
            if request.done():  # a stream: its headers came at once
                request.result().close()
            else:  # one JSON reply at the end: the client stops waiting and closes the connection
                request.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await request
            took = await wait_until(lambda: not engine.active_runs, timeout=2)
            await wait_until(lambda: all(r.ended for r in llm.requests), timeout=2)  # model requests closed
            state = api.server.config.app.state.server  # type: ignore[union-attr]
            assert state.active == 0, "the run slot came back"
            async with client.get(f"{api.url}/v1/models") as r:
                assert r.status == 200  # the server is fine afterwards
    assert took < 1.0
