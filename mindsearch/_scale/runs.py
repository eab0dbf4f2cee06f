"""Runs as records in Redis: who owns each, its state, and its events in a Redis Stream.

Every change is one Lua script, so Redis orders them: an event is appended only while the run is in the
state its writer expects (``running`` for its worker), and the run's sequence number rises by one per
event. The stream ids are ``0-<n>`` with ``n`` = 1, 2, 3...: a client that re-attaches with
``Last-Event-ID: n`` reads from ``n + 1`` on, with no gap and no repeat, on any replica.

The fleet-wide run cap is a sorted set of run ids scored by when their hold expires (Redis' own clock):
a worker's heartbeat moves the expiry on; a crashed replica or worker stops moving it, so its slots free
themselves. Leases use the same clock: a run whose worker stopped sending heartbeats is ended (an ``error``
event and ``done(ok=false)``) by whichever replica or worker reaps first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from .. import events as ev
from ..settings import Settings

RunStateName = Literal["queued", "running", "done", "failed", "cancelled"]
LIVE = ("queued", "running")

# KEYS: run record, events. ARGV: allowed states (comma-separated), new state or '', ttl seconds,
# then (type, data) pairs. Returns the last sequence number written, or -1 when the state did not allow.
_APPEND = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or not string.find(',' .. ARGV[1] .. ',', ',' .. state .. ',', 1, true) then return -1 end
local n = 0
for i = 4, #ARGV, 2 do
  n = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  redis.call('XADD', KEYS[2], '0-' .. n, 'type', ARGV[i], 'data', ARGV[i + 1])
end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'state', ARGV[2]) end
redis.call('EXPIRE', KEYS[2], ARGV[3])
return n
"""

# KEYS: slots. ARGV: limit, member, hold milliseconds. 1 when a slot was taken, else 0.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
return 1
"""

# KEYS: slots, leases. ARGV: member, milliseconds. Moves both expiries on (only for members present).
_EXTEND = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[2]), ARGV[1])
return now
"""

# KEYS: leases. ARGV: none. The run ids whose lease has run out.
_EXPIRED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 100)
"""


class Busy(Exception):
    """The fleet is running as many questions as MINDSEARCH_MAX_CONCURRENT_RUNS allows."""


@dataclass
class RunRecord:
    id: str
    owner: str
    state: RunStateName
    question: str
    session: str
    request_id: str
    options: dict[str, Any]
    history: list[tuple[str, str]]
    created: float
    cancel: bool


def final_events(message: str, seconds: float) -> list[ev.Event]:
    """What ends a run that cannot go on: a fatal error saying why, then ``done(ok=false)``."""
    return [
        ev.Error(stage="run", message=message, fatal=True),
        ev.Done(answer="", references=[], nodes=[], seconds=round(seconds, 3), ok=False),
    ]


class RunLog:
    """Run records, their event streams, the fleet's slots and the leases, in one Redis."""

    def __init__(self, client: Any, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        p = settings.redis_prefix
        self.prefix = p
        self.slots = f"{p}:slots"
        self.leases = f"{p}:leases"
        self._append = client.register_script(_APPEND)
        self._acquire = client.register_script(_ACQUIRE)
        self._extend = client.register_script(_EXTEND)
        self._expired = client.register_script(_EXPIRED)

    def record_key(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}"

    def events_key(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}:events"

    @property
    def ttl(self) -> int:
        return max(1, int(self.settings.run_ttl))

    # -- creating and reading ------------------------------------------------------------------------
    async def create(
        self,
        run_id: str,
        *,
        owner: str,
        question: str,
        session: str,
        request_id: str,
        options: dict[str, Any],
        history: list[tuple[str, str]],
    ) -> None:
        """A queued run holding one of the fleet's slots (``Busy`` when none is free). Until a worker
        takes it, its hold lasts ``queue_timeout``; then the reaper ends it."""
        wait_ms = int(self.settings.queue_timeout * 1000)
        if not await self._acquire(
            keys=[self.slots], args=[self.settings.max_concurrent_runs, run_id, wait_ms]
        ):
            raise Busy
        record = {
            "owner": owner,
            "state": "queued",
            "question": question,
            "session": session,
            "request_id": request_id,
            "options": json.dumps(options),
            "history": json.dumps(history),
            "created": time.time(),
            "seq": 0,
            "cancel": 0,
        }
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.record_key(run_id), mapping=record)
            pipe.expire(self.record_key(run_id), self.ttl)
            pipe.zadd(self.leases, {run_id: (await self.client.time())[0] * 1000 + wait_ms})
            await pipe.execute()

    async def rate(self, owner: str) -> int:
        """Count one run for ``owner`` in this minute (Redis' clock); 0 when allowed, else the seconds
        until the next minute (``key_runs_per_minute``, 0: no limit)."""
        limit = self.settings.key_runs_per_minute
        if not limit:
            return 0
        now = int((await self.client.time())[0])
        key = f"{self.prefix}:rate:{hashlib.sha256(owner.encode()).hexdigest()}:{now // 60}"
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = await pipe.execute()
        return 0 if int(count) <= limit else 60 - now % 60

    async def release(self, run_id: str) -> None:
        """Give the run's slot back and drop its lease (it has ended)."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zrem(self.slots, run_id)
            pipe.zrem(self.leases, run_id)
            await pipe.execute()

    async def get(self, run_id: str) -> RunRecord | None:
        raw = await self.client.hgetall(self.record_key(run_id))
        if not raw:
            return None
        return RunRecord(
            id=run_id,
            owner=raw["owner"],
            state=raw["state"],
            question=raw["question"],
            session=raw.get("session", ""),
            request_id=raw.get("request_id", ""),
            options=json.loads(raw.get("options") or "{}"),
            history=[(str(q), str(a)) for q, a in json.loads(raw.get("history") or "[]")],
            created=float(raw.get("created", 0)),
            cancel=raw.get("cancel") == "1",
        )

    async def owned(self, run_id: str, owner: str) -> RunRecord | None:
        """The run when it exists and belongs to ``owner``; another owner's is as absent as none."""
        record = await self.get(run_id)
        if record is None or not hmac.compare_digest(record.owner.encode(), owner.encode()):
            return None
        return record

    # -- writing events ------------------------------------------------------------------------------
    async def append(
        self, run_id: str, events: list[ev.Event], *, allowed: tuple[str, ...], to: str = ""
    ) -> int:
        """Append ``events`` if the run is in one of the ``allowed`` states (then move it ``to`` one);
        the last sequence number, or -1 when the run was not in such a state (ended by someone else)."""
        args: list[Any] = [",".join(allowed), to, self.ttl]
        for event in events:
            args += [event.type, event.model_dump_json()]
        result = await self._append(keys=[self.record_key(run_id), self.events_key(run_id)], args=args)
        return int(result)

    async def claim(self, run_id: str, worker: str) -> RunRecord | None:
        """A worker takes a queued run: it becomes ``running`` and its hold a lease of ``run_lease``."""
        if await self.append(run_id, [], allowed=("queued",), to="running") < 0:
            return None
        await self.heartbeat(run_id)
        await self.client.hset(self.record_key(run_id), "worker", worker)  # for operators (and tests)
        return await self.get(run_id)

    async def heartbeat(self, run_id: str) -> None:
        await self._extend(keys=[self.slots, self.leases], args=[run_id, int(self.settings.run_lease * 1000)])

    async def finish(
        self, run_id: str, message: str, *, state: RunStateName, allowed: tuple[str, ...]
    ) -> bool:
        """End a live run with ``message`` as its fatal error and ``done(ok=false)``; whether it was live."""
        record = await self.get(run_id)
        seconds = time.time() - record.created if record is not None else 0.0
        ended = await self.append(run_id, final_events(message, seconds), allowed=allowed, to=state) >= 0
        await self.release(run_id)
        return ended

    async def cancel(self, run_id: str) -> RunStateName | None:
        """Cancel a run: a queued one ends now, a running one is flagged for its worker (which stops it
        within ``cancel_poll``). The state it was in; ``None`` for an unknown run."""
        record = await self.get(run_id)
        if record is None:
            return None
        if record.state == "queued" and await self.finish(
            run_id, "the run was cancelled", state="cancelled", allowed=("queued",)
        ):
            return "queued"
        await self.client.hset(self.record_key(run_id), "cancel", 1)
        return record.state

    async def reap(self) -> list[str]:
        """End the runs whose lease ran out (their worker died, or no worker took them in time)."""
        ended = []
        for run_id in await self._expired(keys=[self.leases]):
            record = await self.get(run_id)
            if record is None:
                await self.release(run_id)
                continue
            if record.state == "queued":
                message = (
                    f"no worker started the run within {self.settings.queue_timeout:g} s "
                    "(is `mindsearch worker` running?)"
                )
            else:
                message = (
                    f"the worker running this question stopped answering for "
                    f"{self.settings.run_lease:g} s (MINDSEARCH_RUN_LEASE); the run was ended"
                )
            if await self.finish(run_id, message, state="failed", allowed=LIVE):
                ended.append(run_id)
            await self.unqueue(run_id)
        return ended

    async def unqueue(self, run_id: str) -> None:
        """Take an ended run's job out of arq's queue (a dead worker's job would stay there, counted as
        waiting, until arq's own in-progress key expired)."""
        from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix

        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zrem(f"{self.prefix}:queue", run_id)
            pipe.delete(job_key_prefix + run_id, in_progress_key_prefix + run_id, retry_key_prefix + run_id)
            await pipe.execute()

    # -- reading events ------------------------------------------------------------------------------
    async def follow(
        self, run_id: str, after: int = 0, *, block_ms: int = 1000, idle: bool = False
    ) -> AsyncIterator[tuple[int, str]]:
        """``(sequence number, event JSON)`` after ``after``, as they are written, until ``done``; with
        ``idle``, also ``(0, "")`` after each ``block_ms`` without an event (for keep-alive comments)."""
        last = f"0-{after}"
        key = self.events_key(run_id)
        while True:
            found = await self.client.xread({key: last}, count=200, block=block_ms)
            if not found:
                if not await self.client.exists(self.record_key(run_id)):
                    return  # expired (run_ttl) while followed
                if idle:
                    yield 0, ""
                continue
            for _stream, entries in found:
                for entry_id, fields in entries:
                    last = entry_id
                    yield int(entry_id.split("-", 1)[1]), fields["data"]
                    if fields["type"] == "done":
                        return

    async def all_events(self, run_id: str) -> list[ev.Event]:
        entries = await self.client.xrange(self.events_key(run_id))
        return [ev.parse_event(fields["data"]) for _id, fields in entries]

    async def counts(self) -> dict[str, int]:
        """Runs holding slots now (queued or running) and live workers, in the whole fleet."""
        seconds, micro = await self.client.time()
        now = int(seconds) * 1000 + int(micro) // 1000
        return {
            "active": int(await self.client.zcard(self.slots)),
            "workers": int(await self.client.zcount(f"{self.prefix}:workers", now, "+inf")),
        }

    async def present(self, worker: str) -> None:
        """Say that ``worker`` is alive for another ``run_lease`` (for /health and operators)."""
        seconds, micro = await self.client.time()
        now = int(seconds) * 1000 + int(micro) // 1000
        key = f"{self.prefix}:workers"
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {worker: now + int(self.settings.run_lease * 1000)})
            pipe.zremrangebyscore(key, "-inf", now)
            await pipe.execute()

    async def absent(self, worker: str) -> None:
        await self.client.zrem(f"{self.prefix}:workers", worker)
