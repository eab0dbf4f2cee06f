"""CPU work (decoding, extraction, ranking) in a few worker threads of its own, shared by every run.

Not the default executor: aiohttp's threaded resolver looks host names up there, and 20 pages being
parsed must not queue ahead of the lookups for the next pages. Few threads: the work holds Python's GIL
most of the time, so more threads add little speed, and each busy one is one more the event loop takes
turns with.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_POOLS: dict[int, ThreadPoolExecutor] = {}


async def run_cpu(threads: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` in the shared pool of ``threads`` worker threads (one pool per size)."""
    pool = _POOLS.get(threads)
    if pool is None:
        pool = _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="mindsearch-cpu")
    return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(fn, *args, **kwargs))
