"""Two API replicas and two workers as real processes on one real Redis (tests/scale/conftest.py): what a
team gets when it sets MINDSEARCH_REDIS_URL and runs `mindsearch serve` and `mindsearch worker` on several
machines. The tests run in order on one fleet; a test that kills a process starts it again."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from multidict import CIMultiDict

from tests.scale.conftest import OPERATOR, PREFIX, Fleet
from tests.scale.upstream import SLOW_ANSWER

QUESTION = "Who directed Jaws?"
FOLLOW_UP = "Where was he born?"


def auth(fleet: Fleet, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {fleet.keys[user]}"}


async def ask(
    client: aiohttp.ClientSession,
    fleet: Fleet,
    replica: str,
    question: str,
    *,
    user: str = "alice",
    **body: Any,
) -> tuple[int, CIMultiDict[str], dict[str, Any]]:
    payload = {"question": question, "stream": False, **body}
    async with client.post(f"{fleet.url(replica)}/v1/search", json=payload, headers=auth(fleet, user)) as r:
        return r.status, r.headers.copy(), await r.json()


async def read_events(
    response: aiohttp.ClientResponse, limit: int | None = None
) -> list[tuple[int, str, Any]]:
    """(id, event, data) of each server-sent event, up to ``limit`` of them."""
    events: list[tuple[int, str, Any]] = []
    fields: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line:
            name, _, value = line.partition(": ")
            fields[name] = value
            continue
        if "data" in fields:
            events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
            if limit is not None and len(events) >= limit:
                break
        fields = {}
    return events


async def test_a_follow_up_on_replica_b_sees_the_turn_asked_on_replica_a(fleet: Fleet) -> None:
    async with aiohttp.ClientSession() as client:
        status, headers, first = await ask(client, fleet, "a", QUESTION)
        assert status == 200 and first["ok"], first
        session = headers["X-Session-Id"]
        assert first["session_id"] == session and headers["X-Run-Id"]
        status, _, second = await ask(client, fleet, "b", FOLLOW_UP, session_id=session)
    assert status == 200 and second["ok"], second
    assert second["question"] == "Where was Steven Spielberg born?", "rewritten with turn 1 as history"
    assert "Cincinnati" in second["answer"]


async def test_a_stream_cut_on_replica_a_resumes_on_b_with_gapless_unique_ids(fleet: Fleet) -> None:
    async with aiohttp.ClientSession() as client:
        body = {"question": "Who directed Jaws? (slow)", "stream": True}
        async with client.post(f"{fleet.url('a')}/v1/search", json=body, headers=auth(fleet, "alice")) as r:
            assert r.status == 200
            run = r.headers["X-Run-Id"]
            seen = await read_events(r, limit=12)
            fleet.kill("a")  # the replica dies mid-stream: the run goes on in its worker
        resumed_at = time.monotonic()
        headers = {**auth(fleet, "alice"), "Last-Event-ID": str(seen[-1][0])}
        async with client.get(f"{fleet.url('b')}/v1/runs/{run}/events", headers=headers) as r:
            assert r.status == 200
            first_byte = time.monotonic() - resumed_at
            rest = await read_events(r)
        async with client.get(f"{fleet.url('b')}/v1/runs/{run}", headers=auth(fleet, "alice")) as r:
            info = await r.json()
    fleet.start("a")
    ids = [event_id for event_id, _, _ in seen + rest]
    assert ids == list(range(1, len(ids) + 1)), "every event once, in order, none missing"
    assert rest[-1][1] == "done" and rest[-1][2]["ok"], [e for e in seen + rest if e[1] == "error"]
    deltas = [data["text"] for _, name, data in seen + rest if name == "node_answer_delta"]
    assert "".join(deltas).split() == SLOW_ANSWER.split(), "no piece of the answer lost or repeated"
    assert len(rest) > 3 and "done" not in [name for _, name, _ in seen], "the cut came mid-run"
    assert info["state"] == "done" and info["ok"] and info["events"] == len(ids)
    assert info["answer"] == rest[-1][2]["answer"]
    assert first_byte < 5
    fleet.wait_ready("a")


async def test_a_killed_workers_run_ends_within_the_lease(fleet: Fleet) -> None:
    store = aioredis.from_url(fleet.redis.url, decode_responses=True)
    async with aiohttp.ClientSession() as client:
        body = {"question": "Who directed Jaws? (stall)", "stream": True}
        async with client.post(f"{fleet.url('b')}/v1/search", json=body, headers=auth(fleet, "alice")) as r:
            run = r.headers["X-Run-Id"]
            for _ in range(100):  # until a worker has taken it
                worker = await store.hget(f"{PREFIX}:run:{run}", "worker")
                if worker:
                    break
                await asyncio.sleep(0.1)
            pid = int(str(worker).rsplit(":", 1)[1])
            name = next(n for n, p in fleet.procs.items() if p.pid == pid)
            fleet.kill(name)
            killed = time.monotonic()
            events = await asyncio.wait_for(read_events(r), 30)
            ended = time.monotonic() - killed
    await store.aclose()
    fleet.start(name)
    assert [name for _, name, _ in events[-2:]] == ["error", "done"]
    assert events[-1][2]["ok"] is False and "stopped answering" in events[-2][2]["message"]
    assert ended < 3 + 4, f"ended {ended:.1f} s after the kill; the lease is 3 s (reaped each second)"
    fleet.wait_ready(name)


async def test_the_fleet_wide_cap_refuses_on_either_replica_and_cancel_frees_it(fleet: Fleet) -> None:
    async with aiohttp.ClientSession() as client:
        runs = []
        for replica in ("a", "b"):  # the cap is 2 runs for the whole fleet
            body = {"question": f"stall {replica}", "stream": True}
            async with client.post(
                f"{fleet.url(replica)}/v1/search", json=body, headers=auth(fleet, "bob")
            ) as r:
                assert r.status == 200
                runs.append(r.headers["X-Run-Id"])
        for replica in ("a", "b"):
            status, headers, refused = await ask(client, fleet, replica, QUESTION)
            assert status == 503 and headers["Retry-After"].isdigit()
            assert "MINDSEARCH_MAX_CONCURRENT_RUNS" in refused["error"]["message"]
        for run in runs:
            asked = time.monotonic()
            async with client.delete(f"{fleet.url('a')}/v1/runs/{run}", headers=auth(fleet, "bob")) as r:
                assert r.status == 202
            headers = {**auth(fleet, "bob"), "Last-Event-ID": "0"}
            async with client.get(f"{fleet.url('b')}/v1/runs/{run}/events", headers=headers) as r:
                events = await read_events(r)
            assert events[-1][1] == "done" and events[-1][2]["ok"] is False
            assert "cancelled" in events[-2][2]["message"]
            # the worker looks every 0.25 s; the rest is two requests on a loaded 2-core machine
            assert time.monotonic() - asked < 2, "a worker stops a cancelled run within a second"
        status, _, result = await ask(client, fleet, "b", QUESTION)
        assert status == 200 and result["ok"], "the cancelled runs gave their slots back"


async def test_a_page_fetched_through_replica_a_is_a_cache_hit_on_b(fleet: Fleet) -> None:
    question = f"Who directed Jaws, asked once {secrets.token_hex(4)}?"
    async with aiohttp.ClientSession() as client:
        body = {"question": question, "stream": True}
        for replica in ("a", "b"):
            async with client.post(
                f"{fleet.url(replica)}/v1/search", json=body, headers=auth(fleet, "alice")
            ) as r:
                events = await read_events(r)
            pages = [data for _, name, data in events if name == "page_read"]
            assert pages and all(page["ok"] for page in pages)
            assert all(page["cached"] is (replica == "b") for page in pages), replica
        async with client.get(f"http://127.0.0.1:{fleet.site}/fetched") as r:
            fetched = await r.json()
    counts = [count for path, count in fetched.items() if "once" in path]
    assert counts and set(counts) == {1}, "each page fetched once in the whole fleet"


async def test_key_x_cannot_read_continue_or_cancel_key_ys_session_or_run(fleet: Fleet) -> None:
    async with aiohttp.ClientSession() as client:
        status, headers, _ = await ask(client, fleet, "a", QUESTION, user="alice")
        assert status == 200
        session, run = headers["X-Session-Id"], headers["X-Run-Id"]
        for replica in ("a", "b"):
            base = fleet.url(replica)
            bob = auth(fleet, "bob")
            status, _, body = await ask(client, fleet, replica, FOLLOW_UP, user="bob", session_id=session)
            assert status == 404, body
            for method, path in (("GET", ""), ("GET", "/events"), ("DELETE", "")):
                async with client.request(method, f"{base}/v1/runs/{run}{path}", headers=bob) as r:
                    assert r.status == 404, (method, path)
            # ids nobody was given are as absent as another's
            for _ in range(20):
                guess = secrets.token_hex(16)
                async with client.get(f"{base}/v1/runs/{guess}", headers=bob) as r:
                    assert r.status == 404
                async with client.get(f"{base}/v1/runs/{guess}/events", headers=bob) as r:
                    assert r.status == 404
            async with client.get(f"{base}/v1/runs/{run}", headers={"Authorization": "Bearer nope"}) as r:
                assert r.status == 401
        async with client.get(f"{fleet.url('b')}/v1/runs/{run}", headers=auth(fleet, "alice")) as r:
            assert r.status == 200 and (await r.json())["state"] == "done", "alice still sees her run"


async def test_sigterm_drains_a_worker_its_run_finishes(fleet: Fleet) -> None:
    store = aioredis.from_url(fleet.redis.url, decode_responses=True)
    async with aiohttp.ClientSession() as client:
        body = {"question": "Who directed Jaws? (slow, drained)", "stream": True}
        async with client.post(f"{fleet.url('a')}/v1/search", json=body, headers=auth(fleet, "alice")) as r:
            run = r.headers["X-Run-Id"]
            worker = None
            for _ in range(100):
                worker = await store.hget(f"{PREFIX}:run:{run}", "worker")
                if worker:
                    break
                await asyncio.sleep(0.1)
            pid = int(str(worker).rsplit(":", 1)[1])
            name = next(n for n, p in fleet.procs.items() if p.pid == pid)
            fleet.procs[name].send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            events = await asyncio.wait_for(read_events(r), 30)
    await store.aclose()
    exited = await asyncio.to_thread(fleet.procs[name].wait, 30)
    drained = time.monotonic() - stopped
    fleet.start(name)
    assert events[-1][1] == "done" and events[-1][2]["ok"], "the stopping worker finished its run"
    assert exited == 0 and drained < 15, f"exited {exited} after {drained:.1f} s: it left once its run ended"
    fleet.wait_ready(name)


async def test_solve_and_the_openai_route_run_as_queued_jobs_too(fleet: Fleet) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.post(
            f"{fleet.url('a')}/solve", json={"inputs": QUESTION}, headers=auth(fleet, "alice")
        ) as r:
            assert r.status == 200 and r.headers["X-Run-Id"]
            events = await read_events(r)
        assert events[-1][1] == "done" and events[-1][2]["ok"]
        body = {"model": "mindsearch", "messages": [{"role": "user", "content": QUESTION}]}
        async with client.post(
            f"{fleet.url('b')}/v1/chat/completions", json=body, headers=auth(fleet, "bob")
        ) as r:
            completion = await r.json()
    assert completion["choices"][0]["message"]["content"].startswith("Jaws was directed by Steven Spielberg")


async def test_health_reports_redis_the_queue_and_the_workers(fleet: Fleet) -> None:
    async with aiohttp.ClientSession() as client:
        headers = {"Authorization": f"Bearer {OPERATOR}"}
        for _ in range(50):  # a worker killed by an earlier test is counted until its presence expires
            async with client.get(f"{fleet.url('b')}/health", headers=headers) as r:
                report = await r.json()
            if report.get("queue", {}).get("workers") == 2 and not report["queue"]["active"]:
                break
            await asyncio.sleep(0.2)
    assert r.status == 200 and report["status"] == "ok", report
    assert report["redis"]["ok"] and report["redis"]["detail"].startswith("127.0.0.1:")
    assert report["queue"] == {"waiting": 0, "active": 0, "limit": 2, "workers": 2}


@pytest.mark.timeout(120)
async def test_redis_down_is_a_clear_503_and_service_resumes_with_sessions_kept(fleet: Fleet) -> None:
    async with aiohttp.ClientSession() as client:
        status, headers, _ = await ask(client, fleet, "a", QUESTION)
        assert status == 200
        session = headers["X-Session-Id"]
        fleet.redis.stop()
        try:
            async with client.get(f"{fleet.url('a')}/health") as r:
                assert r.status == 503
                assert "Redis" in (await r.json())["reason"]
            async with client.get(f"{fleet.url('a')}/health", headers=auth(fleet, "alice")) as r:
                assert r.status == 503
            status, _, refused = await ask(client, fleet, "b", FOLLOW_UP, session_id=session)
            assert status == 503 and "Redis" in refused["error"]["message"]
        finally:
            fleet.redis.start()
        for _ in range(100):  # the workers reconnect on their next poll
            status, _, result = await ask(client, fleet, "b", FOLLOW_UP, session_id=session)
            if status == 200:
                break
            await asyncio.sleep(0.2)
    assert status == 200 and result["question"] == "Where was Steven Spielberg born?", "the session survived"
