"""Sessions are the server's: ids it issued, bound to the caller's token, expiring (uvicorn on loopback)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mindsearch.testing import FakeOpenAIServer
from tests.api.test_api import QUESTION, read_sse, reply, started

FOLLOW_UP = "Where was he born?"


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(reply) as server:
        yield server


def rewrites(llm: FakeOpenAIServer) -> int:
    """How many follow-ups were rewritten with a history (only a run that has history rewrites)."""
    return sum("Standalone question" in r.prompt for r in llm.requests)


async def ask(
    client: aiohttp.ClientSession, url: str, question: str, session: str | None = None, **headers: str
) -> tuple[int, str, dict[str, Any]]:
    body: dict[str, Any] = {"question": question, "stream": False}
    if session is not None:
        body["session_id"] = session
    async with client.post(f"{url}/v1/search", json=body, headers=headers) as r:
        return r.status, r.headers.get("X-Session-Id", ""), await r.json()


async def test_two_clients_that_both_say_me_never_share_history(
    tmp_path: Path, llm: FakeOpenAIServer
) -> None:
    """The README's example id: before, the second client read the first one's turn and added its own."""
    api, _engine = await started(tmp_path, llm)
    async with api, aiohttp.ClientSession() as alice, aiohttp.ClientSession() as mallory:
        status, alice_id, first = await ask(alice, api.url, QUESTION, "me")
        assert status == 200 and first["ok"]
        status, mallory_id, poisoned = await ask(mallory, api.url, FOLLOW_UP, "me")
        assert status == 200
    assert rewrites(llm) == 0, "the second 'me' had no history to rewrite with"
    assert poisoned["question"] == FOLLOW_UP
    assert alice_id and mallory_id and len({alice_id, mallory_id, "me"}) == 3, "each got a fresh session"
    store: Any = api.server.config.app.state.server.sessions.sync  # type: ignore[union-attr]
    assert store.history("me") == [], "an id the server did not issue stores nothing"
    assert [q for q, _ in store.history(alice_id)] == [QUESTION]
    assert [q for q, _ in store.history(mallory_id)] == [FOLLOW_UP]


async def test_issued_ids_are_unguessable_and_carried_by_header_and_body(
    tmp_path: Path, llm: FakeOpenAIServer
) -> None:
    api, _engine = await started(tmp_path, llm)
    async with api, aiohttp.ClientSession() as client:
        ids = []
        for _ in range(3):
            status, header, body = await ask(client, api.url, QUESTION)
            assert status == 200 and body["session_id"] == header
            ids.append(header)
        async with client.post(f"{api.url}/v1/search", json={"question": QUESTION}) as r:
            streamed = r.headers["X-Session-Id"]
            events = await read_sse(r)
        async with client.post(f"{api.url}/solve", json={"inputs": QUESTION}) as r:
            solved = r.headers["X-Session-Id"]
            await read_sse(r)
    assert events[-1][0] == "done"
    ids += [streamed, solved]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9_\-]{43}", i) for i in ids), "256 random bits, URL-safe"
    db = (tmp_path / "data" / "sessions.sqlite3").read_bytes()
    assert not any(i.encode() in db for i in ids), "the database holds digests, not ids"


async def test_another_callers_session_is_a_404_on_search_and_a_new_session_on_solve(
    tmp_path: Path, llm: FakeOpenAIServer
) -> None:
    api, _engine = await started(tmp_path, llm, api_key="alice-key", api_keys=["bob-key"])
    alice = {"Authorization": "Bearer alice-key"}
    bob = {"Authorization": "Bearer bob-key"}
    async with api, aiohttp.ClientSession() as client:
        status, alice_id, _ = await ask(client, api.url, QUESTION, **alice)
        assert status == 200
        status, _, refused = await ask(client, api.url, FOLLOW_UP, alice_id, **bob)
        assert status == 404 and refused["error"]["message"] == "no such session"
        async with client.post(
            f"{api.url}/solve", json={"inputs": FOLLOW_UP, "session_id": alice_id}, headers=bob
        ) as r:
            bob_id = r.headers["X-Session-Id"]
            events = await read_sse(r)
        assert bob_id != alice_id and events[0][1]["question"] == FOLLOW_UP
        assert rewrites(llm) == 0, "bob never saw alice's turn"
        status, same, result = await ask(client, api.url, FOLLOW_UP, alice_id, **alice)
    assert status == 200 and same == alice_id, "alice goes on with her own session"
    assert rewrites(llm) == 1 and result["question"] == "Where was Steven Spielberg born?"


@pytest.mark.parametrize(
    ("session_id", "why"),
    [
        ("x" * 60_000, "a 60,000-character id was stored"),
        (True, "true aliased to 1"),
        ("../etc/passwd", "not an id"),
        ("me\n", "a newline"),
        (-1, "a negative counter"),
        (1.5, "not an integer"),
        ({"$ne": None}, "an object"),
    ],
)
async def test_solve_validates_its_session_id_like_the_other_routes(
    tmp_path: Path, llm: FakeOpenAIServer, session_id: Any, why: str
) -> None:
    api, _engine = await started(tmp_path, llm)
    async with api, aiohttp.ClientSession() as client:
        body = {"inputs": QUESTION, "session_id": session_id}
        async with client.post(f"{api.url}/solve", json=body) as r:
            status, data = r.status, await r.json()
    assert status == 422, why
    assert "session_id" in data["error"]["message"]
    assert not llm.requests, "no run started"


async def test_solve_counters_start_a_new_session_each(tmp_path: Path, llm: FakeOpenAIServer) -> None:
    """MindSearch's clients send counters (0, 1, ...): never issued here, so never shared."""
    api, _engine = await started(tmp_path, llm)
    async with api, aiohttp.ClientSession() as client:
        issued = []
        for counter, question in ((7, QUESTION), (7, FOLLOW_UP)):
            async with client.post(f"{api.url}/solve", json={"inputs": question, "session_id": counter}) as r:
                issued.append(r.headers["X-Session-Id"])
                assert (await read_sse(r))[-1][0] == "done"
    assert "7" not in issued and issued[0] != issued[1]
    assert rewrites(llm) == 0


async def test_sessions_expire(tmp_path: Path, llm: FakeOpenAIServer) -> None:
    api, _engine = await started(tmp_path, llm, session_ttl=0.5)
    async with api, aiohttp.ClientSession() as client:
        _, first, _ = await ask(client, api.url, QUESTION)
        _, kept, _ = await ask(client, api.url, FOLLOW_UP, first)
        assert kept == first and rewrites(llm) == 1, "a live session goes on"
        await asyncio.sleep(0.8)
        _, later, result = await ask(client, api.url, FOLLOW_UP, first)
    assert later != first, "an expired session is not continued"
    assert rewrites(llm) == 1 and result["question"] == FOLLOW_UP
    store: Any = api.server.config.app.state.server.sessions.sync  # type: ignore[union-attr]
    await asyncio.sleep(0.6)
    assert store.purge(force=True) >= 2 and store.history(first) == []


def test_the_store_binds_sessions_to_their_owner(tmp_path: Path) -> None:
    from mindsearch._sessions import SessionStore, owner_of

    store = SessionStore(tmp_path / "s.sqlite3", max_turns=5, ttl=60)
    alice, bob = owner_of("alice-key"), owner_of("bob-key")
    session = store.issue(alice)
    store.append(session, "q", "a")
    assert store.lookup(session, alice) == "ok"
    assert store.lookup(session, bob) == "foreign"
    assert store.lookup("me", alice) == "unknown"
    assert store.lookup(session + "x", alice) == "unknown"
    assert owner_of(None) == owner_of("") == "open" and alice != bob
    store.close()


def test_the_old_unbound_history_is_dropped(tmp_path: Path) -> None:
    """The first schema kept turns under client-chosen ids; they must not survive the upgrade."""
    from mindsearch._sessions import SessionStore

    path = tmp_path / "sessions.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE turns (session TEXT, turn INTEGER, question TEXT, answer TEXT, created REAL)")
    conn.execute("INSERT INTO turns VALUES ('me', 0, 'my secret question', 'its answer', 0)")
    conn.commit()
    conn.close()
    store = SessionStore(path, max_turns=5)
    assert store.lookup("me", "open") == "unknown" and store.history("me") == []
    store.close()
    tables = sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    assert ("turns",) not in tables and b"my secret question" not in path.read_bytes()
