"""Several model servers in MINDSEARCH_BASE_URL: least busy first, failover when one is unreachable
(real servers on loopback)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from mindsearch import Settings
from mindsearch.llm.base import Message
from mindsearch.llm.pool import PooledModel
from mindsearch.plugins import BACKENDS
from mindsearch.testing import FakeOpenAIServer

ASK = [Message("user", "Say hello.")]


def settings(tmp_path: Path, *urls: str, **changes: object) -> Settings:
    return Settings(llm="openai", base_url=",".join(urls), model="fake-model", data_dir=tmp_path, **changes)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when this returns: nothing listens there


async def test_calls_go_to_the_least_busy_server(tmp_path: Path) -> None:
    async with (
        FakeOpenAIServer(lambda body: "hello", first_delay=0.3) as one,
        FakeOpenAIServer(lambda body: "hello", first_delay=0.3) as two,
    ):
        model = BACKENDS["openai"](settings(tmp_path, f"{one.url}/v1", f"{two.url}/v1"))
        assert isinstance(model, PooledModel)
        replies = await asyncio.gather(*(model.complete(ASK) for _ in range(6)))
        await model.aclose()
    assert replies == ["hello"] * 6
    assert (one.calls, two.calls) == (3, 3) and one.max_active == two.max_active == 3


async def test_an_unreachable_server_is_skipped_and_the_call_fails_over(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    async with FakeOpenAIServer(lambda body: "hello") as live:
        model = BACKENDS["openai"](settings(tmp_path, dead, f"{live.url}/v1", llm_retries=0))
        assert isinstance(model, PooledModel)
        first = await model.complete(ASK)
        started = time.monotonic()
        later = [await model.complete(ASK) for _ in range(3)]
        took = time.monotonic() - started
        await model.ready()  # ready while one server is
        await model.aclose()
    assert first == "hello" and later == ["hello"] * 3
    assert live.calls == 4, "every call answered by the live server"
    assert took < 1.0, "the dead server rests (MINDSEARCH_LLM_COOLDOWN) instead of being tried each call"


def test_one_url_is_the_plain_client(tmp_path: Path) -> None:
    model = BACKENDS["openai"](settings(tmp_path, "http://127.0.0.1:9/v1"))
    assert not isinstance(model, PooledModel)
