"""Issue 9 at the unit level: how a recovered plan, a follow-up's rewrite and an engine failure are told,
what the run state keeps of them, and the logging that keeps the commands quiet."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from mindsearch import MindSearch, Settings
from mindsearch import events as ev
from mindsearch._graph import QuestionGraph
from mindsearch._planner import FELL_BACK, REPAIRED, Planner
from mindsearch.llm.base import LLMError, ModelRequest
from mindsearch.search import failures
from mindsearch.state import RunState
from mindsearch.testing import MemoryEngine, ScriptedModel, doc_hit, kind_of, plan_json

QUESTION = "Where was the director of Jaws born?"
DOCS = [
    doc_hit("Jaws (film)", "Jaws is a 1975 American thriller film directed by Steven Spielberg."),
    doc_hit("Steven Spielberg", "Steven Spielberg was born in Cincinnati, Ohio, in 1946."),
]
DUPLICATE = plan_json(("q1", "Who directed Jaws?", []), ("q1", "Where was Spielberg born?", []))
HISTORY = [("Who directed Jaws?", "Jaws was directed by Steven Spielberg [1].")]


def handler(plans: list[str], rewrite: Any = "Where was Steven Spielberg born?") -> Any:
    replies = iter(plans)

    def reply(request: ModelRequest) -> Any:
        if "Standalone question" in request.text:
            return rewrite(request) if callable(rewrite) else rewrite
        kind = kind_of(request)
        if kind == "plan":
            return next(replies, '{"add": [], "finish": true}')
        if kind == "queries":
            return '{"queries": ["spielberg born"]}'
        return "Steven Spielberg was born in Cincinnati, Ohio [1]."

    return reply


async def run(settings: Settings, model: ScriptedModel, question: str = QUESTION, **kw: Any) -> list[Any]:
    engine = MindSearch(settings, model=model, engines=[MemoryEngine(DOCS)])
    return [event async for event in engine.stream(question, **kw)]


def of(events: list[Any], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


# --- the planner ----------------------------------------------------------------------------------------
async def test_an_invalid_plan_twice_says_the_error_once() -> None:
    model = ScriptedModel(lambda r: DUPLICATE)
    outcome = await Planner(model, style="chat", language="en", max_rounds=3, max_tokens=200).plan(
        QUESTION, QuestionGraph(8), 1
    )
    assert outcome.action is None and outcome.error is not None
    assert outcome.error.count("duplicate id 'q1'") == 1, outcome.error
    assert "first error" not in outcome.error


async def test_a_repaired_plan_is_a_short_note_and_says_what_was_wrong() -> None:
    replies = iter([DUPLICATE, plan_json(("q1", "Who directed Jaws?", []))])
    model = ScriptedModel(lambda r: next(replies))
    outcome = await Planner(model, style="chat", language="en", max_rounds=3, max_tokens=200).plan(
        QUESTION, QuestionGraph(8), 1
    )
    assert outcome.note == REPAIRED and "duplicate id 'q1'" in outcome.recovered_from


# --- the run: a plan that fell back is a note; a later round that fails is an error -------------------
async def test_a_first_round_that_fails_falls_back_to_the_question_with_a_note(settings: Settings) -> None:
    events = await run(settings, ScriptedModel(handler([DUPLICATE, DUPLICATE])))
    [plan] = of(events, ev.Plan)
    assert plan.note == FELL_BACK and "duplicate id 'q1'" in plan.recovered_from
    assert [(n.id, n.question) for n in plan.added] == [("q1", QUESTION)]
    assert not of(events, ev.Error) and of(events, ev.Done)[0].ok


async def test_a_planner_model_that_fails_at_once_falls_back_too(settings: Settings) -> None:
    def reply(request: ModelRequest) -> Any:
        if kind_of(request) == "plan":
            return LLMError("the server said 500")
        return handler([])(request)

    events = await run(settings, ScriptedModel(reply))
    [plan] = of(events, ev.Plan)
    assert plan.note == FELL_BACK and "the server said 500" in plan.recovered_from
    assert not of(events, ev.Error)


async def test_a_later_round_that_fails_is_one_error_and_the_answer_is_not_complete(
    settings: Settings,
) -> None:
    first = plan_json(("q1", "Who directed Jaws?", []), finish=False)
    events = await run(settings, ScriptedModel(handler([first, DUPLICATE, DUPLICATE])))
    [error] = of(events, ev.Error)
    assert error.stage == "plan" and error.message.startswith("planning stopped at round 2: invalid plan")
    assert error.message.count("duplicate id 'q1'") == 1
    assert not of(events, ev.Done)[0].ok


# --- the run: a follow-up's rewrite --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rewrite", "status", "searched", "why"),
    [
        ("Where was Steven Spielberg born?", "rewritten", "Where was Steven Spielberg born?", ""),
        ("\nWhere was Steven Spielberg born?\nQ: more", "rewritten", "Where was Steven Spielberg born?", ""),
        ('"Where was he born?"', "unchanged", "Where was he born?", ""),
        ("", "failed", "Where was he born?", "the model's rewrite was empty"),
        (
            LLMError("connection refused"),
            "failed",
            "Where was he born?",
            "the model failed: connection refused",
        ),
        ("x" * 3000, "failed", "Where was he born?", "the model's rewrite was too long (3000 characters)"),
    ],
    ids=["rewritten", "leading-newline", "unchanged", "empty", "model-error", "too-long"],
)
async def test_run_started_says_what_became_of_the_follow_up(
    settings: Settings, rewrite: Any, status: str, searched: str, why: str
) -> None:
    model = ScriptedModel(handler([], rewrite=rewrite))
    events = await run(settings, model, "Where was he born?", history=HISTORY, options={"depth": "quick"})
    [started] = of(events, ev.RunStarted)
    assert (started.rewrite, started.question, started.rewrite_error) == (status, searched, why)
    assert started.asked == "Where was he born?"
    assert not of(events, ev.Error), "the rewrite is told by run_started, not by an error"
    assert of(events, ev.Plan)[0].added[0].question == searched


async def test_a_question_without_history_is_not_rewritten(settings: Settings) -> None:
    model = ScriptedModel(handler([]))
    events = await run(settings, model, options={"depth": "quick"})
    [started] = of(events, ev.RunStarted)
    assert started.rewrite == "none" and started.rewrite_error == ""
    assert not [c for c in model.calls if "Standalone question" in c.request.text]


# --- the state every reader folds -----------------------------------------------------------------------
def test_the_state_keeps_the_rewrite_and_the_plan_notes() -> None:
    state = RunState()
    state.apply(
        ev.RunStarted(
            question="Q?",
            asked="q?",
            language="en",
            llm="m",
            engines=["local"],
            rewrite="failed",
            rewrite_error="empty",
        )
    )
    plan = ev.Plan(round=1, added=[], finish=True, note=FELL_BACK, recovered_from="not JSON")
    state.apply(plan)
    state.apply(ev.Plan(round=2, added=[], finish=True))
    assert (state.rewrite, state.rewrite_error) == ("failed", "empty")
    assert state.plan_notes == [plan]


def test_the_state_reads_events_from_before_these_fields() -> None:
    state = RunState()
    state.apply_json(
        {"v": 2, "type": "run_started", "question": "Q", "language": "en", "llm": "m", "engines": []}
    )
    state.apply_json({"v": 2, "type": "plan", "round": 1, "added": [], "finish": True, "note": ""})
    assert state.rewrite == "none" and state.plan_notes == [] and not state.protocol_errors


# --- engine failures in a few words ---------------------------------------------------------------------
def ddgs_error(message: str) -> Exception:
    """An exception as ddgs raises it: its DDGSException around the HTTP client's error text."""

    class DDGSException(Exception):
        pass

    return DDGSException(DDGSException(message))


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (  # the report, word for word up to the cut
            ddgs_error(
                "DNSError('error sending request for url (https://search.yahoo.com/search;_ylt=AwrE"
                "&p=The+Exies) > dns error: failed to lookup address information')"
            ),
            "no network",
        ),
        (
            ddgs_error(
                "ConnectError: ConnectError('error sending request for url (https://html.duckduckgo.com"
                "/html/) > Connection refused (os error 111)')"
            ),
            "cannot connect",
        ),
        (ddgs_error("RatelimitException: 202 Ratelimit"), "rate limited"),
        (ddgs_error("TimeoutException: operation timed out"), "no answer in time"),
        (OSError(101, "Network is unreachable"), "no network"),
        (ValueError("something else entirely"), "failed (-v shows why)"),
    ],
    ids=["dns", "refused", "ratelimit", "timeout", "unreachable", "unknown"],
)
def test_an_engine_failure_is_a_few_words(exc: Exception, said: str) -> None:
    assert failures.reason(exc) == said


def test_the_raw_failure_is_one_line_for_the_log() -> None:
    line = failures.raw(ddgs_error("a\nb " + "x" * 2000))
    assert "\n" not in line and len(line) == 1000 and line.startswith("DDGSException: a b")


# --- logging: quiet by default ----------------------------------------------------------------------------
@pytest.fixture
def restore_logging() -> Any:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    from mindsearch import _logs as logs

    names = ["mindsearch", *logs.CHATTY]
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize(
    ("verbosity", "ddgs_info", "own_info", "ddgs_warning"),
    [(0, False, False, False), (1, False, True, True), (2, True, True, True)],
)
def test_logging_is_quiet_by_default(
    restore_logging: Any, verbosity: int, ddgs_info: bool, own_info: bool, ddgs_warning: bool
) -> None:
    from mindsearch import _logs as logs

    logs.configure(verbosity)
    assert logging.getLogger("ddgs.ddgs").isEnabledFor(logging.INFO) is ddgs_info
    assert logging.getLogger("ddgs.ddgs").isEnabledFor(logging.WARNING) is ddgs_warning
    assert logging.getLogger("mindsearch.search").isEnabledFor(logging.INFO) is own_info
    assert logging.getLogger("mindsearch.search").isEnabledFor(logging.WARNING)
    logging.basicConfig(level=logging.INFO)  # what the MCP SDK does: a configured root is left alone
    assert logging.getLogger().level == [logging.WARNING, logging.INFO, logging.DEBUG][verbosity]


def test_llama_cpp_lines_are_joined_and_logged_below_warning(
    restore_logging: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from mindsearch.llm.llamacpp import _on_llama_log

    caplog.set_level(logging.DEBUG, logger="mindsearch.llamacpp")
    _on_llama_log(3, b"llama_kv_cache_iswa: using full-size SWA cache (ref: ", None)  # type: ignore[arg-type]
    _on_llama_log(5, b"https://github.com/ggml-org/llama.cpp/pull/13194)\n", None)  # type: ignore[arg-type]
    _on_llama_log(2, b"load_tensors: one\nload_tensors: two\n", None)  # type: ignore[arg-type]
    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "mindsearch.llamacpp"]
    assert records == [
        (
            logging.INFO,
            "llama_kv_cache_iswa: using full-size SWA cache (ref: https://github.com/ggml-org/llama.cpp/pull/13194)",
        ),
        (logging.DEBUG, "load_tensors: one"),
        (logging.DEBUG, "load_tensors: two"),
    ]
