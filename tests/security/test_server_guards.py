"""The REST server's guards of security round 2, each against a real server on 127.0.0.1.

/health without the token, upstream error text, the Host allow-list, lone surrogates, per-request
engines on every route (uvicorn in process, the fake model server); header, body and keep-alive
deadlines and the connection and header-size caps against ``python serve.py`` itself, with real
slow sockets.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from mindsearch import MindSearch, Settings
from mindsearch.api import create_app
from mindsearch.testing import AppServer, FakeOpenAIServer, HttpError, clean_env
from tests.api.test_api import QUESTION, read_sse, reply, started

ROOT = Path(__file__).resolve().parents[2]
LLM_KEY = "sk-live-abc123def456ghi789"
UPSTREAM_401 = (
    f"Incorrect API key provided: {LLM_KEY}. You can find your API key at "
    "https://platform.openai.com/account/api-keys."
)


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(reply) as server:
        yield server


# --- /health -------------------------------------------------------------------------------------------
async def test_health_without_the_token_says_only_ok_or_down(tmp_path: Path, llm: FakeOpenAIServer) -> None:
    api, _engine = await started(tmp_path, llm, api_key="k3y", llm_api_key=LLM_KEY)
    async with api, aiohttp.ClientSession() as client:
        answers = {}
        for name, headers in (("none", {}), ("wrong", {"Authorization": "Bearer nope"}), ("key", {})):
            if name == "key":
                headers = {"Authorization": "Bearer k3y"}
            async with client.get(f"{api.url}/health", headers=headers) as r:
                answers[name] = (r.status, await r.json())
    assert answers["none"] == (200, {"status": "ok"})
    assert answers["wrong"] == (200, {"status": "ok"})
    status, detailed = answers["key"]
    assert status == 200 and detailed["llm"]["ok"] and detailed["engines"]["memory"]["ok"]
    assert "version" in detailed and LLM_KEY not in json.dumps(detailed)


async def test_health_on_an_open_server_shows_no_details(tmp_path: Path, llm: FakeOpenAIServer) -> None:
    api, _engine = await started(tmp_path, llm)
    async with api, aiohttp.ClientSession() as client:
        async with client.get(f"{api.url}/health", headers={"Authorization": "Bearer anything"}) as r:
            assert (r.status, await r.json()) == (200, {"status": "ok"})


async def test_health_details_never_hold_secrets_or_credentials_in_urls(tmp_path: Path) -> None:
    settings = Settings(
        llm="openai",
        base_url="http://admin:hunter22@127.0.0.1:9/v1?api-key=q-secret-123",
        model="m",
        llm_api_key=LLM_KEY,
        engines=["searxng"],
        searxng_url="http://searx:searxpw@127.0.0.1:9/?token=abc987",
        api_key="k3y",
        data_dir=tmp_path / "data",
    )
    api = AppServer(create_app(settings, engine=MindSearch(settings)))
    async with api, aiohttp.ClientSession() as client:
        async with client.get(f"{api.url}/health", headers={"Authorization": "Bearer k3y"}) as r:
            status, text = r.status, await r.text()
        async with client.get(f"{api.url}/health") as r:
            anonymous = (r.status, await r.json())
    report = json.loads(text)
    assert status == 503 and report["status"] == "down" and not report["engines"]["searxng"]["ok"]
    assert "127.0.0.1:9" in report["engines"]["searxng"]["detail"], (
        "details keep the address, for the operator"
    )
    for secret in ("hunter22", "admin", "q-secret-123", "api-key", "searxpw", "abc987", LLM_KEY, "k3y"):
        assert secret not in text, secret
    assert anonymous == (503, {"status": "down"})


# --- upstream error text ------------------------------------------------------------------------------
async def test_upstream_error_bodies_never_reach_clients(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An LLM server's 401 echoing the key: clients get a stable message, the log gets the detail."""
    caplog.set_level(logging.INFO, logger="mindsearch.api")
    async with FakeOpenAIServer(lambda body: HttpError(401, UPSTREAM_401, code="invalid_api_key")) as bad:
        api, _engine = await started(tmp_path, bad, llm_api_key=LLM_KEY)
        chat = {"model": "mindsearch", "messages": [{"role": "user", "content": QUESTION}]}
        async with api, aiohttp.ClientSession() as client:
            replies = []
            async with client.post(f"{api.url}/v1/search", json={"question": QUESTION, "stream": False}) as r:
                result = await r.json()
                replies.append(json.dumps(result))
            async with client.post(f"{api.url}/v1/search", json={"question": QUESTION}) as r:
                replies.append(await r.text())
            async with client.post(f"{api.url}/solve", json={"inputs": QUESTION}) as r:
                replies.append(await r.text())
            async with client.post(f"{api.url}/v1/chat/completions", json=chat) as r:
                replies.append(await r.text())
            async with client.post(f"{api.url}/v1/chat/completions", json={**chat, "stream": True}) as r:
                replies.append(await r.text())
    assert bad.requests, "the model server was asked and refused"
    assert result["errors"] and not result["ok"]
    for text in replies:
        assert LLM_KEY not in text and "sk-live" not in text and "Incorrect API key" not in text, text[:300]
    assert all(error.endswith("(the server log has the details)") for error in result["errors"])
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Incorrect API key" in logged, "the operator still sees what went wrong"


def test_error_text_quoted_in_an_answer_is_replaced_even_split_across_pieces() -> None:
    """The writer's fallback once quoted node errors in the answer; whatever the engine writes, the raw
    error text and the server's secrets never reach a client, streamed or whole."""
    from mindsearch import events as ev
    from mindsearch.api import RunRedactor

    raw = f"http://127.0.0.1:1/v1/chat/completions answered HTTP 401: {UPSTREAM_401}"
    answer = f"I could not answer. Who directed Jaws?: {raw} Sorry; key {LLM_KEY} again."
    redactor = RunRedactor([LLM_KEY], "test")
    sent: list[ev.Event] = []
    for event in [
        ev.Error(stage="node", node_id="q1", message=raw),
        ev.NodeDone(node_id="q1", ok=False, answer="", references=[], error=raw),
        *[ev.AnswerDelta(text=answer[i : i + 7]) for i in range(0, len(answer), 7)],
        ev.References(references=[]),
        ev.Done(answer=answer, references=[], nodes=[], seconds=1.0, ok=False),
    ]:
        sent += redactor.public(event)
    streamed = "".join(e.text for e in sent if isinstance(e, ev.AnswerDelta))
    done = next(e for e in sent if isinstance(e, ev.Done))
    assert streamed == done.answer, "the stream and the final answer agree"
    assert "Who directed Jaws?: a sub-question could not be answered (the server log" in streamed
    text = json.dumps([e.model_dump() for e in sent])
    for secret in ("Incorrect API key", LLM_KEY, "sk-live", "127.0.0.1:1"):
        assert secret not in text, secret


def test_a_research_reports_section_text_is_redacted_like_the_answer() -> None:
    """Research mode's sections go out as section_delta and section_done too: the same replacements."""
    from mindsearch import events as ev
    from mindsearch.api import RunRedactor

    raw = f"http://127.0.0.1:1/v1/chat/completions answered HTTP 401: {UPSTREAM_401}"
    text = f"Part of the report. {raw} And the key {LLM_KEY}."
    redactor = RunRedactor([LLM_KEY], "test")
    sent: list[ev.Event] = []
    for event in [
        ev.Error(stage="node", node_id="s1q1", message=raw),
        ev.SectionDelta(section_id="s1", text=text),
        ev.SectionDone(section_id="s1", ok=False, text=text, error=raw),
    ]:
        sent += redactor.public(event)
    dumped = json.dumps([e.model_dump() for e in sent])
    assert "Part of the report." in dumped
    for secret in ("Incorrect API key", LLM_KEY, "127.0.0.1:1"):
        assert secret not in dumped, secret


async def test_the_model_servers_address_is_not_told_to_clients(
    tmp_path: Path, llm: FakeOpenAIServer
) -> None:
    api, _engine = await started(tmp_path, llm)
    async with api, aiohttp.ClientSession() as client:
        async with client.post(f"{api.url}/v1/search", json={"question": QUESTION}) as r:
            events = await read_sse(r)
    started_event = events[0][1]
    assert started_event["type"] == "run_started" and started_event["llm"] == "openai:fake"
    assert str(llm.port) not in json.dumps([data for _, data in events])


# --- the Host allow-list ------------------------------------------------------------------------------
async def test_requests_for_other_host_names_are_refused(tmp_path: Path, llm: FakeOpenAIServer) -> None:
    """DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 calls the API."""
    api, _engine = await started(tmp_path, llm)
    async with api, aiohttp.ClientSession() as client:
        statuses = {}
        for host in (
            "evil.example",
            f"evil.example:{api.port}",
            "127.0.0.1",
            f"localhost:{api.port}",
            "[::1]",
        ):
            async with client.get(f"{api.url}/v1/models", headers={"Host": host}) as r:
                statuses[host] = r.status
    assert statuses == {
        "evil.example": 400,
        f"evil.example:{api.port}": 400,
        "127.0.0.1": 200,
        f"localhost:{api.port}": 200,
        "[::1]": 200,
    }


async def test_the_host_allow_list_is_a_setting(tmp_path: Path, llm: FakeOpenAIServer) -> None:
    api, _engine = await started(tmp_path, llm, allowed_hosts=["search.example", "*.corp.example"])
    async with api, aiohttp.ClientSession() as client:
        statuses = {}
        for host in ("search.example", "a.corp.example", "127.0.0.1", "evil.example"):
            async with client.get(f"{api.url}/v1/models", headers={"Host": host}) as r:
                statuses[host] = r.status
    assert statuses == {"search.example": 200, "a.corp.example": 200, "127.0.0.1": 400, "evil.example": 400}


# --- lone surrogates ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/solve", '{"inputs": "Who directed Jaws? \\ud800"}'),
        ("/solve", '{"inputs": [{"role": "user", "content": "\\udfff"}]}'),
        ("/v1/search", '{"question": "Who directed Jaws? \\ud800"}'),
        ("/v1/search", '{"question": "Who directed Jaws? \\ud800", "stream": false}'),
        (
            "/v1/chat/completions",
            '{"messages": [{"role": "user", "content": "a \\ud83d"}, {"role": "assistant", "content": "b"},'
            ' {"role": "user", "content": "Who directed Jaws?"}]}',
        ),
    ],
)
async def test_a_lone_surrogate_is_refused_before_the_run(
    tmp_path: Path, llm: FakeOpenAIServer, path: str, body: str
) -> None:
    api, _engine = await started(tmp_path, llm)
    async with api, aiohttp.ClientSession() as client:
        headers = {"Content-Type": "application/json"}
        async with client.post(f"{api.url}{path}", data=body.encode(), headers=headers) as r:
            status, text = r.status, await r.text()
    assert status == 422 and ("lone surrogate" in text or "unicode" in text), text[:300]
    assert not llm.requests, "no run started"


# --- per-request engines ------------------------------------------------------------------------------
async def test_no_route_runs_an_engine_the_server_has_not_enabled(
    tmp_path: Path, llm: FakeOpenAIServer
) -> None:
    """Only /v1/search takes per-run options (422 for an engine the server lacks); /solve and the OpenAI
    route take none, so whatever a body says, their runs use the server's engines."""
    api, _engine = await started(tmp_path, llm)
    wish = {"settings": {"engines": ["duckduckgo"]}, "agent_cfg": {"searcher_type": "DuckDuckGoSearch"}}
    chat = {"messages": [{"role": "user", "content": QUESTION}], "stream": True}
    async with api, aiohttp.ClientSession() as client:
        async with client.post(f"{api.url}/v1/search", json={"question": QUESTION, **wish}) as r:
            search_status = r.status
        engines = []
        for path, body in (
            ("/solve", {"inputs": QUESTION, **wish}),
            ("/v1/chat/completions", {**chat, **wish}),
        ):
            async with client.post(f"{api.url}{path}", json=body) as r:
                assert r.status == 200
                await r.read()
        async with client.post(f"{api.url}/solve", json={"inputs": QUESTION, **wish}) as r:
            engines = (await read_sse(r))[0][1]["engines"]
    assert search_status == 422
    assert engines == ["memory"]
    assert not any("duckduckgo" in json.dumps(r.body) for r in llm.requests)


# --- connection limits, against serve.py with real slow sockets -----------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_py(tmp_path: Path, **env: str) -> Iterator[int]:
    port = free_port()
    variables = {**clean_env(), **{f"MINDSEARCH_{k.upper()}": v for k, v in env.items()}}
    process = subprocess.Popen(
        [sys.executable, "serve.py", "--port", str(port), "--data-dir", str(tmp_path / "data")],
        cwd=ROOT,
        env=variables,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    if sock.recv(64).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError("serve.py did not come up")
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[int]:
    yield from serve_py(
        tmp_path, header_timeout="0.6", body_timeout="0.6", keep_alive_timeout="1", max_header_bytes="4096"
    )


def read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed; fails when it
    is still open after ``limit`` seconds."""
    start, data = time.monotonic(), b""
    sock.settimeout(limit)
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except TimeoutError as exc:
        raise AssertionError(
            f"the server kept the connection open for {limit} s (sent {data[:80]!r})"
        ) from exc
    return data, time.monotonic() - start


def test_a_client_that_sends_nothing_is_cut_off(slow_server: int) -> None:
    with socket.create_connection(("127.0.0.1", slow_server)) as sock:
        data, took = read_until_closed(sock, 5)
    assert data.startswith(b"HTTP/1.1 408") and took < 2.5


def test_headers_dripped_a_byte_at_a_time_are_cut_off(slow_server: int) -> None:
    """Slowloris: every byte arrives before the last one would time out, the headers never end."""
    with socket.create_connection(("127.0.0.1", slow_server)) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        sock.settimeout(0.15)
        start, reply = time.monotonic(), None
        while time.monotonic() - start < 5:
            try:
                sock.sendall(b"a")
                reply = sock.recv(4096)  # anything (or b"" when it closed) means the server gave up
                break
            except TimeoutError:
                continue  # nothing yet: drip on
            except OSError:  # reset while writing
                reply = b""
                break
        took = time.monotonic() - start
    assert reply is not None and took < 2.5, f"still open after {took:.1f} s"
    assert reply == b"" or reply.startswith(b"HTTP/1.1 408")


def test_a_body_sent_too_slowly_gets_408(slow_server: int) -> None:
    with socket.create_connection(("127.0.0.1", slow_server)) as sock:
        sock.sendall(
            b"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + b'{"question": "'
        )
        data, took = read_until_closed(sock, 5)
    assert data.startswith(b"HTTP/1.1 408") and b"did not arrive within 0.6 s" in data and took < 2.5


def test_idle_keep_alive_connections_are_closed(slow_server: int) -> None:
    with socket.create_connection(("127.0.0.1", slow_server)) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data, took = read_until_closed(sock, 4)
    assert data.startswith(b"HTTP/1.1 200") and 0.8 < took < 3


def test_oversized_headers_are_refused(slow_server: int) -> None:
    with socket.create_connection(("127.0.0.1", slow_server)) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n")
        whole, _took = read_until_closed(sock, 5)
        sock2 = socket.create_connection(("127.0.0.1", slow_server))
        sock2.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 2000)
        time.sleep(0.1)
        sock2.sendall(b"a" * 6000)  # in pieces: h11 refuses the incomplete headers itself
        pieces, _took = read_until_closed(sock2, 5)
        sock2.close()
    assert whole.startswith(b"HTTP/1.1 431") and pieces.startswith(b"HTTP/1.1 400")


def test_connections_beyond_the_cap_get_503(tmp_path: Path) -> None:
    for port in serve_py(tmp_path, max_connections="3", header_timeout="30"):
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            refused, _took = read_until_closed(sock, 5)
        for sock in idle:
            sock.close()
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            served, _took = read_until_closed(sock, 5)
    assert refused.startswith(b"HTTP/1.1 503") and served.startswith(b"HTTP/1.1 200")
