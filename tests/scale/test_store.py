"""The store's two implementations and the run log, against a real private redis-server (no mocks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mindsearch import Settings
from mindsearch import events as ev
from mindsearch._scale.runs import Busy, RunLog
from mindsearch._store import open_cache, open_store
from mindsearch._store.redis import RedisCache, RedisKeys, RedisSessions, connect
from mindsearch._store.sqlite import SqliteKeys, SqliteSessions
from mindsearch.api import create_app
from mindsearch.testing import AppServer


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Any]:
    redis = connect(Settings(redis_url=redis_url))
    await redis.flushdb()
    yield redis
    await redis.aclose()


def test_without_a_redis_url_everything_stays_in_sqlite(tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path))
    assert isinstance(store.sessions, SqliteSessions) and isinstance(store.keys, SqliteKeys)
    assert store.redis is None
    cache, _close = open_cache(Settings(data_dir=tmp_path))
    assert not isinstance(cache, RedisCache)


async def test_redis_sessions_keep_ownership_history_and_expiry(client: Any) -> None:
    sessions = RedisSessions(client, "t", max_turns=2, ttl=1)
    alice = await sessions.issue("token:alice")
    assert await sessions.lookup(alice, "token:alice") == "ok"
    assert await sessions.lookup(alice, "token:bob") == "foreign"
    assert await sessions.lookup("never-issued", "token:alice") == "unknown"
    for turn in range(3):
        await sessions.append(alice, f"q{turn}", f"a{turn}")
    assert await sessions.history(alice) == [("q1", "a1"), ("q2", "a2")], "the last max_turns turns"
    assert all(alice not in key for key in await client.keys("*")), "ids are stored only as digests"
    await asyncio.sleep(1.3)
    assert await sessions.lookup(alice, "token:alice") == "unknown", "expired with its history"
    assert await client.keys("t:session:*") == []


async def test_the_redis_cache_is_shared_and_expires(redis_url: str, client: Any) -> None:
    one = RedisCache(client, "t", ttl=60)
    other_client = connect(Settings(redis_url=redis_url))
    other = RedisCache(other_client, "t", ttl=60)
    await one.store("page", "http://x/1", {"title": "T", "text": "body"})
    await one.store("page", "http://x/2", {"error": "HTTP 404"}, ttl=0.2)
    assert await other.lookup("page", "http://x/1") == {"title": "T", "text": "body"}
    await asyncio.sleep(0.4)
    assert await other.lookup("page", "http://x/2") is None, "a failure is kept only failure_ttl"
    assert await RedisCache(client, "t", ttl=0).lookup("page", "http://x/1") is None, "ttl 0: off"
    await other_client.aclose()


async def test_user_keys_are_stored_hashed_and_can_be_removed(client: Any) -> None:
    keys = RedisKeys(client, "t")
    assert not await keys.any()
    key = await keys.add("alice")
    assert key.startswith("msk_") and await keys.verify(key) == "alice"
    assert await keys.verify(key + "x") is None
    with pytest.raises(ValueError, match="exists"):
        await keys.add("alice")
    dumped = str(await client.hgetall("t:keys")) + str(await client.hgetall("t:keynames"))
    assert key not in dumped, "only the digest is kept"
    assert await keys.names() == ["alice"] and await keys.remove("alice")
    assert await keys.verify(key) is None and not await keys.any()


async def test_the_fleet_cap_holds_and_a_crashed_holder_leaks_no_slot(redis_url: str, client: Any) -> None:
    settings = Settings(redis_url=redis_url, redis_prefix="t", max_concurrent_runs=2, queue_timeout=1)
    runs = RunLog(client, settings)
    made = {"owner": "o", "question": "q", "session": "", "request_id": "r", "options": {}, "history": []}
    await runs.create("r1", **made)
    await runs.create("r2", **made)
    with pytest.raises(Busy):
        await runs.create("r3", **made)
    await runs.release("r1")
    await runs.create("r3", **made)  # a released slot is free at once
    # nobody heartbeats r2 and r3 (their replica "crashed"): after their hold, the slots are free again
    await asyncio.sleep(1.2)
    await runs.create("r4", **made)
    await runs.create("r5", **made)
    assert sorted(await runs.reap()) == ["r2", "r3"], "the reaper ends what nobody took"
    events = await runs.all_events("r2")
    assert [e.type for e in events] == ["error", "done"] and "no worker" in events[0].message  # type: ignore[union-attr]


async def test_per_key_rate_limits_hold_across_clients(redis_url: str, client: Any) -> None:
    settings = Settings(redis_url=redis_url, redis_prefix="t", key_runs_per_minute=2)
    replica_a, replica_b = RunLog(client, settings), RunLog(connect(settings), settings)
    assert await replica_a.rate("token:x") == 0 and await replica_b.rate("token:x") == 0
    wait = await replica_a.rate("token:x")
    assert 0 < wait <= 60, "the third run of the minute waits for the next minute"
    assert await replica_b.rate("token:y") == 0, "another key has its own count"
    assert await RunLog(client, Settings(redis_url=redis_url)).rate("token:x") == 0, "0: no limit"
    await replica_b.client.aclose()


async def test_the_run_log_is_gapless_resumable_and_closed_once_ended(redis_url: str, client: Any) -> None:
    settings = Settings(redis_url=redis_url, redis_prefix="t")
    runs = RunLog(client, settings)
    made = {"owner": "o", "question": "q", "session": "", "request_id": "r", "options": {}, "history": []}
    await runs.create("run", **made)
    assert await runs.append("run", [ev.AnswerDelta(text="no")], allowed=("running",)) == -1, "not claimed"
    assert await runs.claim("run", "w") is not None and await runs.claim("run", "w2") is None
    for index in range(5):
        assert await runs.append("run", [ev.AnswerDelta(text=str(index))], allowed=("running",)) == index + 1
    assert await runs.finish("run", "stopped", state="failed", allowed=("running",))
    assert await runs.append("run", [ev.AnswerDelta(text="late")], allowed=("running",)) == -1
    followed = [seq async for seq, _data in runs.follow("run", after=3)]
    assert followed == [4, 5, 6, 7], "after Last-Event-ID 3: the rest, then error and done"
    assert (await runs.get("run")).state == "failed"  # type: ignore[union-attr]


async def test_user_keys_on_a_single_machine_server_isolate_sessions(tmp_path: Path) -> None:
    """`mindsearch keys add` without Redis: keys.sqlite3 in the data folder; the server then needs a key."""
    settings = Settings(data_dir=tmp_path, llm="openai", base_url="http://127.0.0.1:9/v1", model="m")
    store = open_store(settings)
    alice, bob = await store.keys.add("alice"), await store.keys.add("bob")
    await store.close()
    async with AppServer(create_app(settings)) as api, aiohttp.ClientSession() as http:
        async with http.get(f"{api.url}/v1/models") as r:
            assert r.status == 401, "a server with user keys is closed to callers without one"
        async with http.get(f"{api.url}/v1/models", headers={"Authorization": f"Bearer {alice}"}) as r:
            assert r.status == 200
        server = api.server.config.app.state.server  # type: ignore[union-attr]
        session = await server.sessions.issue(server_owner(alice))
        body = {"question": "q", "session_id": session, "stream": False}
        async with http.post(
            f"{api.url}/v1/search", json=body, headers={"Authorization": f"Bearer {bob}"}
        ) as r:
            assert r.status == 404, "bob cannot continue alice's session"


def server_owner(token: str) -> str:
    from mindsearch._sessions import owner_of

    return owner_of(token)


async def test_a_quiet_run_gives_keep_alive_ticks_to_its_followers(redis_url: str, client: Any) -> None:
    runs = RunLog(client, Settings(redis_url=redis_url, redis_prefix="t"))
    made = {"owner": "o", "question": "q", "session": "", "request_id": "r", "options": {}, "history": []}
    await runs.create("quiet", **made)
    followed = runs.follow("quiet", idle=True, block_ms=100)
    assert await anext(followed) == (0, ""), "nothing written for a while: a tick (an SSE comment)"
    await runs.finish("quiet", "stopped", state="failed", allowed=("queued",))
    assert [seq async for seq, _ in followed if seq] == [1, 2]
