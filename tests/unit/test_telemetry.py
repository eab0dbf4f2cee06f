"""What a run tells an operator: one JSON log line per run, node, model call, engine query and page fetch
(with the run id, timings, outcome and tokens, and no secrets), ``model_call`` events with token usage
that ``RunState`` sums, Prometheus metrics, and OpenTelemetry spans run -> node -> call / fetch."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from mindsearch import MindSearch, Settings
from mindsearch import _logs as logs
from mindsearch import _telemetry as telemetry
from mindsearch import events as ev
from mindsearch._telemetry import metrics, tracing
from mindsearch._telemetry.redact import remember
from mindsearch.llm.base import LLMError, Message, ModelRequest
from mindsearch.search.base import SearchHit
from mindsearch.state import RunState
from mindsearch.testing import MemoryEngine, ScriptedModel, StaticSite, kind_of, plan_json

QUESTION = "Who directed Jaws, and where was he born?"
PLAN = plan_json(("q1", "Who directed Jaws?", []), ("q2", "Where was Steven Spielberg born?", []))
SECRET = "sk-abcdefgh12345678"  # in the pages' URLs: no log line or span may show it
PAGES = {
    "/jaws": (
        "Jaws (film)",
        "Jaws is a 1975 American thriller film directed by Steven Spielberg. It was based on the novel "
        "by Peter Benchley. The film follows a police chief who hunts a great white shark.",
    ),
    "/born": (
        "Steven Spielberg",
        "Steven Spielberg was born in Cincinnati, Ohio, in 1946. He is an American film director and "
        "producer, and one of the founding pioneers of the New Hollywood era.",
    ),
}


def reply(request: ModelRequest) -> Any:
    kind = kind_of(request)
    if "Standalone question" in request.text or "standalone" in request.text.lower():
        return "Where was Steven Spielberg born?"
    if kind == "plan":
        return PLAN
    if kind == "queries":
        return '{"queries": ["jaws director"]}'
    if kind == "answer":
        if "born" in request.text.split("Sub-question:", 1)[-1][:80]:
            return "Steven Spielberg was born in Cincinnati, Ohio [1]."
        return ["Jaws was directed ", "by Steven Spielberg [1]."]
    return "Jaws was directed by Steven Spielberg [1], who was born in Cincinnati, Ohio [2]."


async def page(request: web.Request) -> web.Response:
    title, text = PAGES[request.path]
    body = f"<article><h1>{title}</h1><p>{text}</p></article>"
    html = f"<html><head><title>{title}</title></head><body>{body}</body></html>"
    return web.Response(text=html, content_type="text/html")


@pytest.fixture
async def site() -> AsyncIterator[StaticSite]:
    async with StaticSite(routes={path: page for path in PAGES}) as served:
        yield served


def web_engine(site: StaticSite) -> MemoryEngine:
    hits = [
        SearchHit(f"{site.url}{path}?token={SECRET}", title, text[:80], "memory")
        for path, (title, text) in PAGES.items()
    ]
    return MemoryEngine(hits, is_web=True)


def make(tmp_path: Path, site: StaticSite, model: ScriptedModel | None = None) -> MindSearch:
    settings = Settings(data_dir=tmp_path / "data", allow_hosts=["127.0.0.1"], llm_api_key=SECRET)
    remember(telemetry.secrets_of(settings))  # what the commands and the server do: keys are never logged
    return MindSearch(settings, model=model or ScriptedModel(reply), engines=[web_engine(site)])


@contextlib.contextmanager
def json_log() -> Iterator[list[dict[str, Any]]]:
    """The telemetry records written while inside, read back from their JSON lines."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger(logs.TELEMETRY)
    saved = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)
        text = out.getvalue()
        assert SECRET not in text and "token=" not in text, "a secret reached the log"
        lines.extend(json.loads(line) for line in text.splitlines())


async def run(engine: MindSearch, question: str = QUESTION, **kwargs: Any) -> list[ev.Event]:
    try:
        return [event async for event in engine.stream(question, **kwargs)]
    finally:
        await engine.aclose()


async def test_a_run_writes_one_json_line_per_run_node_model_call_engine_query_and_fetch(
    tmp_path: Path, site: StaticSite
) -> None:
    with json_log() as lines:
        events = await run(make(tmp_path, site))
    started, done = events[0], events[-1]
    assert isinstance(started, ev.RunStarted) and isinstance(done, ev.Done) and done.ok
    run_id = started.run_id
    assert len(run_id) == 16 and all(line["run_id"] == run_id for line in lines)
    assert all(line["level"] == "info" and line["logger"] == "mindsearch.telemetry" for line in lines)
    assert all(line["ts"].endswith("+00:00") for line in lines)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_kind.setdefault(line["event"], []).append(line)
    assert set(by_kind) == {"run", "node", "model_call", "engine_query", "fetch"}

    (whole,) = by_kind["run"]
    assert lines[-1] is whole, "the run's line is the last"
    calls = [e for e in events if isinstance(e, ev.ModelCall)]
    assert whole["outcome"] == "ok" and whole["seconds"] == done.seconds
    assert (whole["nodes"], whole["nodes_failed"], whole["model_calls"]) == (2, 0, len(calls))
    assert whole["prompt_tokens"] == sum(c.usage.prompt_tokens for c in calls) > 0
    assert whole["completion_tokens"] == sum(c.usage.completion_tokens for c in calls) > 0
    assert whole["tokens_estimated"] is True  # the scripted model counts nothing: estimates, said so
    assert whole["llm"] == "scripted" and whole["engines"] == ["memory"] and "error" not in whole

    assert sorted(line["node_id"] for line in by_kind["node"]) == ["q1", "q2"]
    assert all(line["outcome"] == "ok" and line["seconds"] >= 0 for line in by_kind["node"])

    steps = sorted((line["step"], line.get("node_id", "")) for line in by_kind["model_call"])
    assert steps == [
        ("answer", "q1"),
        ("answer", "q2"),
        ("plan", ""),
        ("queries", "q1"),
        ("queries", "q2"),
        ("write", ""),
    ]
    for line in by_kind["model_call"]:
        assert line["outcome"] == "ok" and line["model"] == "scripted" and line["usage_source"] == "estimate"
        assert line["total_tokens"] == line["prompt_tokens"] + line["completion_tokens"] > 0
        assert line["seconds"] >= line["first_token_seconds"] >= 0

    assert all(
        (line["engine"], line["outcome"], line["hits"]) == ("memory", "ok", 2)
        for line in by_kind["engine_query"]
    )
    fetched = by_kind["fetch"]
    assert sorted(line["url"] for line in fetched) == [f"{site.url}/born", f"{site.url}/jaws"]
    host = site.url.removeprefix("http://")
    assert all(
        (line["host"], line["outcome"], line["status"]) == (host, "ok", 200) and line["chars"] > 0
        for line in fetched
    )


async def test_model_calls_are_events_with_usage_and_run_state_sums_them(
    tmp_path: Path, site: StaticSite
) -> None:
    events = await run(make(tmp_path, site))
    calls = [e for e in events if isinstance(e, ev.ModelCall)]
    assert [c.step for c in calls].count("write") == 1 and calls[0].step == "plan"
    types = [e.type for e in events]
    assert types.index("model_call") > types.index("run_started") and types[-1] == "done"
    for call in calls:
        assert call.model == "scripted" and call.outcome == "ok" and call.error is None
        assert call.usage.source == "estimate" and call.usage.total_tokens > 0
    state = RunState.from_events(events)
    assert state.run_id == events[0].run_id  # type: ignore[union-attr]
    assert state.usage.calls == len(calls) and state.usage.estimated
    assert state.usage.total_tokens == sum(c.usage.total_tokens for c in calls)
    assert state.nodes["q1"].usage.calls == 2 and state.nodes["q2"].usage.calls == 2
    usage = state.usage.openai()
    assert (
        usage["estimated"] is True
        and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    )
    # a reader of JSON (the UI, a client of the API) folds them the same
    from_json = RunState()
    for event in events:
        from_json.apply_json(json.loads(event.model_dump_json()))
    assert from_json.usage == state.usage


async def test_run_started_stays_first_when_a_follow_up_is_rewritten_before_it(
    tmp_path: Path, site: StaticSite
) -> None:
    history = [("Who directed Jaws?", "Steven Spielberg [1].")]
    events = await run(make(tmp_path, site), "Where was he born?", history=history)
    assert events[0].type == "run_started" and events[0].rewrite == "rewritten"  # type: ignore[union-attr]
    assert isinstance(events[1], ev.ModelCall) and events[1].step == "rewrite" and events[1].node_id is None


async def test_a_failed_call_is_logged_with_a_short_redacted_reason(tmp_path: Path, site: StaticSite) -> None:
    def failing(request: ModelRequest) -> Any:
        if kind_of(request) == "queries":
            return LLMError(
                f"http://user:pw@127.0.0.1:1/v1/chat/completions?key=x answered HTTP 401: {SECRET}"
            )
        return reply(request)

    with json_log() as lines:
        events = await run(make(tmp_path, site, ScriptedModel(failing)))
    failed = [e for e in events if isinstance(e, ev.ModelCall) and e.outcome == "error"]
    assert failed and all(call.step == "queries" for call in failed)
    for call in failed:
        assert call.error is not None and SECRET not in call.error and "pw@" not in call.error
        assert "127.0.0.1:1/v1/chat/completions" in call.error and call.usage.total_tokens == 0
    logged = [line for line in lines if line["event"] == "model_call" and line["outcome"] == "error"]
    assert len(logged) == len(failed) and all("[redacted]" in line["error"] for line in logged)


async def test_a_cancelled_run_is_told_as_cancelled(tmp_path: Path, site: StaticSite) -> None:
    engine = make(tmp_path, site, ScriptedModel(reply, delay=5))
    with json_log() as lines:
        async with contextlib.aclosing(engine.stream(QUESTION)) as stream:
            async for event in stream:
                if event.type == "run_started":
                    break
        await engine.aclose()
    (whole,) = [line for line in lines if line["event"] == "run"]
    assert whole["outcome"] == "cancelled"
    assert [line["outcome"] for line in lines if line["event"] == "model_call"] == ["cancelled"]


def sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_metrics_count_runs_calls_tokens_engines_fetches_and_the_cache(
    tmp_path: Path, site: StaticSite
) -> None:
    before = {
        "ok": sample("mindsearch_runs_finished_total", outcome="ok"),
        "started": sample("mindsearch_runs_started_total"),
        "calls": sample(
            "mindsearch_model_call_duration_seconds_count", model="scripted", step="answer", outcome="ok"
        ),
        "tokens": sample("mindsearch_model_tokens_total", model="scripted", type="prompt", source="estimate"),
        "queries": sample("mindsearch_engine_queries_total", engine="memory", outcome="ok"),
        "fetches": sample("mindsearch_page_fetches_total", outcome="ok"),
        "misses": sample("mindsearch_cache_lookups_total", kind="page", result="miss"),
        "hits": sample("mindsearch_cache_lookups_total", kind="page", result="hit"),
        "nodes": sample("mindsearch_node_duration_seconds_count", outcome="ok"),
    }
    events = await run(make(tmp_path, site))
    prompt = sum(e.usage.prompt_tokens for e in events if isinstance(e, ev.ModelCall))
    assert sample("mindsearch_runs_finished_total", outcome="ok") == before["ok"] + 1
    assert sample("mindsearch_runs_started_total") == before["started"] + 1
    assert sample("mindsearch_runs_active") == 0
    assert sample("mindsearch_node_duration_seconds_count", outcome="ok") == before["nodes"] + 2
    calls = sample(
        "mindsearch_model_call_duration_seconds_count", model="scripted", step="answer", outcome="ok"
    )
    assert calls == before["calls"] + 2
    tokens = sample("mindsearch_model_tokens_total", model="scripted", type="prompt", source="estimate")
    assert tokens == before["tokens"] + prompt
    assert sample("mindsearch_engine_queries_total", engine="memory", outcome="ok") > before["queries"]
    assert sample("mindsearch_page_fetches_total", outcome="ok") == before["fetches"] + 2
    assert sample("mindsearch_cache_lookups_total", kind="page", result="miss") == before["misses"] + 2
    await run(make(tmp_path, site))  # the same question again: the pages come from the cache
    assert sample("mindsearch_page_fetches_total", outcome="ok") == before["fetches"] + 2
    assert sample("mindsearch_cache_lookups_total", kind="page", result="hit") == before["hits"] + 2
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain") and b"mindsearch_runs_finished_total" in body


@pytest.fixture
def spans() -> Iterator[Any]:
    sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="the otel extra is not installed")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_tracer_provider(provider)
    try:
        yield exporter
    finally:
        tracing.use_tracer_provider(None)
        provider.shutdown()


async def test_a_run_makes_spans_run_node_and_call_or_fetch_with_ids_tokens_and_hosts(
    tmp_path: Path, site: StaticSite, spans: Any
) -> None:
    events = await run(make(tmp_path, site))
    run_id = events[0].run_id  # type: ignore[union-attr]
    finished = spans.get_finished_spans()
    by_id = {span.context.span_id: span for span in finished}
    (root,) = [s for s in finished if s.name == "mindsearch.run"]
    assert root.parent is None and root.attributes["mindsearch.outcome"] == "ok"
    assert all(s.attributes["mindsearch.run_id"] == run_id for s in finished)
    assert all(s.context.trace_id == root.context.trace_id for s in finished)
    nodes = {s.attributes["mindsearch.node_id"]: s for s in finished if s.name == "mindsearch.node"}
    assert set(nodes) == {"q1", "q2"} and all(
        s.parent.span_id == root.context.span_id for s in nodes.values()
    )

    def parent(span: Any) -> Any:
        return by_id[span.parent.span_id]

    calls = [s for s in finished if s.name.startswith("mindsearch.model_call")]
    assert len(calls) == len([e for e in events if isinstance(e, ev.ModelCall)])
    for call in calls:
        attributes = call.attributes
        assert (
            attributes["gen_ai.request.model"] == "scripted" and attributes["gen_ai.usage.input_tokens"] > 0
        )
        assert (
            attributes["gen_ai.usage.output_tokens"] > 0
            and attributes["mindsearch.usage.source"] == "estimate"
        )
        if attributes["mindsearch.step"] in ("queries", "answer"):
            assert parent(call) is nodes[attributes["mindsearch.node_id"]]
        else:
            assert attributes["mindsearch.step"] in ("plan", "write") and parent(call) is root
    fetches = [s for s in finished if s.name == "mindsearch.fetch"]
    searches = [s for s in finished if s.name == "mindsearch.search"]
    assert len(fetches) == 2 and searches
    for span in [*fetches, *searches]:
        assert parent(span) is nodes[span.attributes["mindsearch.node_id"]]
    host = site.url.removeprefix("http://")
    for span in fetches:
        assert (
            span.attributes["server.address"] == host and span.attributes["http.response.status_code"] == 200
        )
    assert SECRET not in repr([dict(s.attributes) for s in finished]) and "/jaws" not in repr(
        [dict(s.attributes) for s in finished]
    )


async def test_without_a_tracer_provider_spans_are_no_ops(tmp_path: Path, site: StaticSite) -> None:
    events = await run(make(tmp_path, site))
    assert events[-1].ok  # type: ignore[union-attr]


# --- logs: quiet by default, JSON for a server ------------------------------------------------------
@pytest.fixture
def logging_restored() -> Iterator[None]:
    names = ["mindsearch", logs.TELEMETRY, "mindsearch.api", *logs.CHATTY]
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, {name: logging.getLogger(name).level for name in names})
    try:
        yield
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
        logs._state.update(verbosity=0, format="text", level="auto")


@pytest.mark.usefixtures("logging_restored")
def test_the_commands_are_quiet_and_a_server_logs_json_at_info() -> None:
    logs.configure(0, fmt="text", level="auto")
    assert not logging.getLogger(logs.TELEMETRY).isEnabledFor(logging.INFO)
    logs.configure(1)  # -v: mindsearch's details, not one line per call
    assert not logging.getLogger(logs.TELEMETRY).isEnabledFor(logging.INFO)
    logs.configure(2)
    assert logging.getLogger(logs.TELEMETRY).isEnabledFor(logging.INFO)
    logs.apply_settings(Settings(), server=True)
    assert logs.is_json() and logging.getLogger(logs.TELEMETRY).isEnabledFor(logging.INFO)
    assert logging.getLogger("mindsearch.api").isEnabledFor(logging.INFO)
    logs.apply_settings(Settings(log_format="json", log_level="warning"))
    assert logs.is_json() and not logging.getLogger(logs.TELEMETRY).isEnabledFor(logging.INFO)
    logs.apply_settings(Settings(log_level="info"))  # text, at info: the records as key=value lines
    assert not logs.is_json() and logging.getLogger(logs.TELEMETRY).isEnabledFor(logging.INFO)
    logs.apply_settings(Settings(log_format="json"))
    logs.configure(0)  # a command that configures again (the MCP server does) keeps the settings' choice
    assert logs.is_json() and logging.getLogger(logs.TELEMETRY).isEnabledFor(logging.INFO)


def test_json_lines_are_redacted_and_carry_the_records_fields() -> None:
    remember(telemetry.secrets_of(Settings(api_key="server-key-123456")))
    formatter = logs.JsonFormatter()
    plain = logging.LogRecord(
        "mindsearch.api",
        logging.WARNING,
        __file__,
        1,
        "upstream said %s",
        ("key server-key-123456 at http://u:p@h/x?q=1",),
        None,
    )
    line = json.loads(formatter.format(plain))
    assert line["level"] == "warning" and line["logger"] == "mindsearch.api"
    assert (
        "server-key-123456" not in line["message"]
        and "u:p@" not in line["message"]
        and "q=1" not in line["message"]
    )
    assert "http://h/x" in line["message"]
    record = logging.LogRecord("mindsearch.telemetry", logging.INFO, __file__, 1, "run", (), None)
    record.telemetry = {"event": "run", "run_id": "abc", "error": "said server-key-123456", "seconds": 1.5}
    line = json.loads(formatter.format(record))
    assert (line["event"], line["run_id"], line["seconds"]) == ("run", "abc", 1.5)
    assert line["error"] == "said [redacted]" and "message" not in line
    text = logs.RedactingFormatter(logs.FORMAT).format(plain)
    assert "server-key-123456" not in text and text.startswith("mindsearch.api: upstream said")


def test_estimates_count_about_four_characters_or_one_cjk_character_per_token() -> None:
    assert telemetry.estimate_tokens("") == 0
    assert telemetry.estimate_tokens("abcdefgh") == 2
    assert telemetry.estimate_tokens("披萨店") == 3
    request = ModelRequest([Message("user", "x" * 40)])
    usage = telemetry.call_usage(request, "y" * 8)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.source) == (13, 2, "estimate")
    assert telemetry.call_usage(ModelRequest([Message("user", "x" * 40)]), "").total_tokens == 0
    counted = ModelRequest([Message("user", "x")])
    counted.meter.record(7, 3, "server")
    assert telemetry.call_usage(counted, "whatever") == ev.Usage(
        prompt_tokens=7, completion_tokens=3, total_tokens=10, source="server"
    )
    half = ModelRequest([Message("user", "x" * 40)])
    half.meter.record(9, None, "server")  # a count for the prompt only: the sum is an estimate
    usage = telemetry.call_usage(half, "y" * 8)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.source) == (9, 2, "estimate")
    bad = ModelRequest([Message("user", "x")])
    bad.meter.record("7", -1, "server")  # not counts: ignored
    assert bad.meter.source is None


def test_spans_go_out_over_otlp_when_the_standard_variables_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http", reason="the otel extra is not installed")
    from opentelemetry import trace

    chosen: list[Any] = []
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.ProxyTracerProvider())
    monkeypatch.setattr(trace, "set_tracer_provider", chosen.append)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert not tracing.configure_from_env() and not chosen  # nothing asked: nothing set up
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing.configure_from_env() and not chosen
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    assert tracing.configure_from_env() and len(chosen) == 1
    provider = chosen[0]
    try:
        assert provider.resource.attributes["service.name"] == "mindsearch"
    finally:
        provider.shutdown()
