"""A circuit breaker per engine: a transient failure does not cost an engine the run, a dead engine is
skipped after a few failures in a row and tried again after a cool-down."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from mindsearch import MindSearch, Settings
from mindsearch.llm.base import ModelRequest
from mindsearch.search.base import SearchEngine, SearchError, SearchHit
from mindsearch.search.breaker import CircuitBreaker
from mindsearch.testing import MemoryEngine, ScriptedModel, doc_hit, kind_of, plan_json

DOCS = [doc_hit("Mozilla", "The Mozilla community was created in 1998 by members of Netscape.")]
FLAKY_DOC = doc_hit("Netscape", "Netscape released the Mozilla source code in 1998.", engine="flaky")
QUESTION = "What is the early history of the Mozilla project?"


class Flaky(SearchEngine):
    """Fails the calls numbered in ``failing`` (1 is the first) by timing out or raising; answers others."""

    is_web = False

    def __init__(self, failing: set[int], *, timeout: bool = False) -> None:
        self.name = "flaky"
        self.failing, self.timeout = failing, timeout
        self.queries: list[str] = []

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        self.queries.append(query)
        if len(self.queries) in self.failing:
            if self.timeout:
                await asyncio.sleep(5)
            raise SearchError("flaky: cannot connect")
        return [FLAKY_DOC]


def sub_question(request: ModelRequest) -> str:
    match = re.search(r"Sub-question: (.*)", request.text)
    return match.group(1) if match else ""


def chain(*questions: str) -> str:
    """A plan where each sub-question waits for the one before."""
    ids = [f"n{i}" for i in range(len(questions))]
    return plan_json(*[(ids[i], q, ids[i - 1 : i]) for i, q in enumerate(questions)])


def script(plan: str, slow: str = "", seconds: float = 0.0) -> Any:
    async def handler(request: ModelRequest) -> str:
        kind = kind_of(request)
        if kind == "plan":
            return plan
        if kind == "queries":
            return json.dumps({"queries": [sub_question(request)]})
        if kind == "answer" and slow and sub_question(request) == slow:
            await asyncio.sleep(seconds)  # time passes between two nodes' searches
        return "The Mozilla community was created in 1998 [1]."

    return handler


QUESTIONS = [
    "When was Mozilla founded?",
    "Which company released the Mozilla source code?",
    "Who maintains Firefox today?",
    "Where is the Mozilla Foundation based?",
    "What license does Mozilla software use?",
]


def searched_by_flaky(events: list[Any]) -> list[str]:
    """The node ids whose search results include an answer from the flaky engine."""
    return [
        e.node_id for e in events if e.type == "search_results" and any(h.engine == "flaky" for h in e.hits)
    ]


def search_errors(events: list[Any]) -> list[str]:
    return [e.message for e in events if e.type == "error" and e.stage == "search"]


async def test_an_engine_that_times_out_once_is_still_used_by_later_nodes(settings: Settings) -> None:
    settings.search_timeout = 0.2
    settings.follow_up_rounds = 0  # one query per node: the engine's own calls are what is counted
    flaky = Flaky({1}, timeout=True)
    model = ScriptedModel(script(chain(*QUESTIONS[:2])))
    async with MindSearch(settings, model=model, engines=[flaky, MemoryEngine(DOCS)]) as ms:
        events = [e async for e in ms.stream(QUESTION)]
    assert flaky.queries == QUESTIONS[:2], "the second node asks the engine again"
    assert searched_by_flaky(events) == ["n1"]
    assert search_errors(events) == ["flaky: no answer within 0.2 s; going on with memory"]
    assert events[-1].ok


async def test_a_failing_engine_is_skipped_after_the_threshold_and_tried_again_after_the_cool_down(
    settings: Settings,
) -> None:
    settings.engine_max_failures, settings.engine_retry_after = 2, 0.3
    settings.follow_up_rounds = 0  # one query per node: the engine's own calls are what is counted
    flaky = Flaky({1, 2})  # fails twice, then answers
    # n2 searches right after the second failure; its answer takes 0.5 s, so n3 comes after the cool-down
    model = ScriptedModel(script(chain(*QUESTIONS), slow=QUESTIONS[2], seconds=0.5))
    async with MindSearch(settings, model=model, engines=[flaky, MemoryEngine(DOCS)]) as ms:
        events = [e async for e in ms.stream(QUESTION)]
    skipped = QUESTIONS[2]
    assert flaky.queries == [q for q in QUESTIONS if q != skipped], "n2 skipped, n3 the trial, n4 after it"
    assert searched_by_flaky(events) == ["n3", "n4"], "the trial's success closed the circuit"
    errors = search_errors(events)
    assert errors == ["flaky: cannot connect; going on with memory"], "one error per engine and run"
    assert events[-1].ok


async def test_an_open_circuit_carries_over_to_the_next_run_and_says_so(settings: Settings) -> None:
    settings.engine_max_failures, settings.engine_retry_after = 2, 60
    flaky = Flaky(set(range(1, 100)))
    siblings = plan_json(("a", QUESTIONS[0], []), ("b", QUESTIONS[1], []))
    async with MindSearch(
        settings, model=ScriptedModel(script(siblings)), engines=[flaky, MemoryEngine(DOCS)]
    ) as ms:
        first = [e async for e in ms.stream(QUESTION)]
        second = [e async for e in ms.stream(QUESTION)]
    assert flaky.queries == QUESTIONS[:2], "the second run does not wait on a dead engine"
    assert search_errors(first) == ["flaky: cannot connect; going on with memory"]
    [error] = search_errors(second)
    assert (
        error.startswith("flaky: skipped for ") and "after 2 failures in a row; going on with memory" in error
    )
    assert first[-1].ok and second[-1].ok


# -- the breaker itself ---------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_failures_in_a_row_and_lets_one_trial_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(max_failures=3, retry_after=10, clock=clock)
    breaker.failed()
    breaker.failed()
    breaker.succeeded()  # a success in between: the count starts over
    breaker.failed()
    breaker.failed()
    assert breaker.allow() and breaker.state == "closed"
    breaker.failed()
    assert breaker.state == "open" and not breaker.allow() and breaker.retry_in() == 10
    clock.now = 9.9
    assert not breaker.allow()
    clock.now = 10
    assert breaker.state == "half-open"
    assert breaker.allow(), "one trial"
    assert not breaker.allow(), "only one"
    breaker.failed()  # the trial failed: open for another cool-down
    assert breaker.state == "open" and breaker.retry_in() == 10
    clock.now = 20
    assert breaker.allow()
    breaker.abandoned()  # the trial was cancelled: the next query is the trial
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()
