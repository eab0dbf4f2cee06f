"""The Streamlit UI with Streamlit's AppTest: its states, and a real run over SSE from a loopback server."""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
sys.path.insert(0, str(FRONTEND))
from view import RunView, cited_markdown, escape, references_markdown, safe_url  # noqa: E402

APP = str(FRONTEND / "app.py")
EVIL = "<img src=x onerror=alert(1)> **bold** [link](javascript:alert(1))"


def events(answer: str = "Jaws was directed by Steven Spielberg [1].") -> list[dict[str, Any]]:
    ref = {"n": 1, "title": "Jaws (film)", "url": "https://en.wikipedia.org/wiki/Jaws_(film)"}
    return [
        {
            "v": 2,
            "type": "run_started",
            "question": "Who directed Jaws?",
            "asked": "",
            "language": "en",
            "llm": "fake",
            "engines": ["local"],
        },
        {
            "v": 2,
            "type": "plan",
            "round": 1,
            "finish": True,
            "note": "",
            "added": [
                {"id": "q1", "question": "Who directed Jaws?", "depends_on": []},
                {"id": "q2", "question": "When was Jaws released?", "depends_on": ["q1"]},
            ],
        },
        {"v": 2, "type": "node_started", "node_id": "q1", "question": "Who directed Jaws?"},
        {
            "v": 2,
            "type": "search_results",
            "node_id": "q1",
            "query": "jaws",
            "hits": [{"url": ref["url"], "title": EVIL, "snippet": EVIL, "engine": "local"}],
        },
        {
            "v": 2,
            "type": "node_done",
            "node_id": "q1",
            "ok": True,
            "answer": answer,
            "references": [ref],
            "error": None,
        },
        {
            "v": 2,
            "type": "node_done",
            "node_id": "q2",
            "ok": False,
            "answer": "",
            "references": [],
            "error": "timed out",
        },
        {"v": 2, "type": "answer_delta", "text": answer},
        {"v": 2, "type": "references", "references": [ref]},
        {
            "v": 2,
            "type": "done",
            "answer": answer,
            "references": [ref],
            "nodes": [],
            "seconds": 1.5,
            "ok": True,
        },
    ]


class SSEHandler(BaseHTTPRequestHandler):
    """A loopback stand-in for the REST server: replies with ``script`` as SSE (or with ``status`` and
    ``body``), issues ``session`` in X-Session-Id, and records every request's body and headers;
    ``GET /v1/engines`` lists ``enabled`` (or answers ``engines_status``), its headers in ``gets``."""

    script: ClassVar[list[dict[str, Any]]] = []
    bodies: ClassVar[list[dict[str, Any]]] = []
    headers_seen: ClassVar[list[dict[str, str]]] = []
    status: ClassVar[int] = 200
    body: ClassVar[bytes] = b""
    extra_headers: ClassVar[dict[str, str]] = {}
    session: ClassVar[str] = "issued-by-the-server-1"
    enabled: ClassVar[list[Any]] = ["local"]
    engines_status: ClassVar[int] = 200
    gets: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        SSEHandler.gets.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        body = json.dumps(
            {"enabled": self.enabled, "engines": [{"name": n, "enabled": True} for n in self.enabled]}
        ).encode()
        self.send_response(self.engines_status if self.path == "/v1/engines" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        SSEHandler.bodies.append(json.loads(self.rfile.read(length)))
        SSEHandler.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(self.status)
        for name, value in self.extra_headers.items():
            self.send_header(name, value)
        if self.status != 200:
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body)
            return
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("X-Session-Id", self.session)
        self.end_headers()
        for event in self.script:
            self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()

    def log_message(self, *args: Any) -> None:
        pass


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def sse_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The stand-in, as the UI's configured server (MINDSEARCH_SERVER_URL)."""
    SSEHandler.script, SSEHandler.bodies, SSEHandler.headers_seen = events(), [], []
    SSEHandler.status, SSEHandler.body, SSEHandler.extra_headers = 200, b"", {}
    SSEHandler.session = "issued-by-the-server-1"
    SSEHandler.enabled, SSEHandler.engines_status, SSEHandler.gets = ["local"], 200, []
    st.cache_data.clear()  # the UI keeps the server's engine list for a minute
    server, url = serve(SSEHandler)
    monkeypatch.setenv("MINDSEARCH_SERVER_URL", url)
    yield url
    server.shutdown()


def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=30)


def texts(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown) + "\n".join(c.value for c in at.caption)


def test_empty_state_invites_a_question() -> None:
    at = app().run()
    assert not at.exception
    assert at.title[0].value.endswith("mindsearch") and len(at.chat_input) == 1
    assert not at.chat_message


def test_streaming_state_shows_the_graph_and_progress() -> None:
    view = RunView(typed="Who directed Jaws?")
    for event in events()[:4]:
        view.apply_json(event)
    at = app()
    at.session_state["turns"] = [view]
    at.run()
    assert not at.exception
    assert "Searching… running q1" in texts(at) and "sub-question(s)" not in texts(at)
    dot = at.get("graphviz_chart")[0].proto.spec
    assert "#f4c542" in dot and "q1 -> q2" in dot.replace('"', "")


def test_progress_names_what_is_running_not_a_count() -> None:
    view = RunView()
    assert view.progress() == "Planning…"
    for event in events()[:2]:
        view.apply_json(event)
    assert view.progress() == "Searching… waiting for q1, q2", "planned, none started: never '0 running'"
    view.apply_json(events()[2])
    assert view.progress() == "Searching… running q1"
    for event in events()[4:6]:
        view.apply_json(event)
    assert view.progress() == "Writing the answer…"


def test_done_state_shows_cited_answer_references_and_nodes() -> None:
    view = RunView(typed="Who directed Jaws?")
    for event in events():
        view.apply_json(event)
    at = app()
    at.session_state["turns"] = [view]
    at.run()
    assert not at.exception
    body = texts(at)
    assert (
        "Jaws was directed by Steven Spielberg [\\[1\\]](https://en.wikipedia.org/wiki/Jaws_%28film%29)"
        in body
    )
    assert "**References**" in body and "2 sub-questions, 1.5 s" in body
    assert [e.label for e in at.main.expander] == [
        ":green[●] q1: Who directed Jaws?",
        ":red[●] q2: When was Jaws released?",
    ]
    assert at.warning[0].value == "timed out"


def test_error_state_says_what_to_do_without_a_traceback_or_the_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MINDSEARCH_SERVER_URL", "http://127.0.0.1:9")
    at = app()
    at.run()
    at.chat_input[0].set_value("Who directed Jaws?").run()
    assert not at.exception
    assert "cannot reach the mindsearch server" in at.error[0].value
    assert "mindsearch serve" in at.error[0].value
    assert "127.0.0.1:9" not in at.error[0].value, "the server's address is the operator's, not shown"


def test_a_question_streams_from_the_server_and_is_rendered(sse_server: str) -> None:
    at = app()
    at.run()
    at.sidebar.selectbox[1].set_value("quick")
    at.chat_input[0].set_value("Who directed Jaws?").run()
    assert not at.exception
    body = texts(at)
    assert "Jaws was directed by Steven Spielberg" in body and "**References**" in body
    sent = SSEHandler.bodies[0]
    assert sent["question"] == "Who directed Jaws?" and sent["settings"]["depth"] == "quick"
    assert "session_id" not in sent, "the first question asks the server for a session"
    assert not re.search(r"(?<!\\)<img", body) and "](javascript" not in body  # page text is escaped
    at.chat_input[0].set_value("And when was it released?").run()
    assert SSEHandler.bodies[1]["session_id"] == "issued-by-the-server-1", "the issued id continues it"
    at.sidebar.button[0].click().run()  # a new conversation
    at.chat_input[0].set_value("Who wrote Dune?").run()
    assert "session_id" not in SSEHandler.bodies[2]


def test_a_session_the_server_does_not_know_starts_over(sse_server: str) -> None:
    SSEHandler.status, SSEHandler.body = 404, b'{"error": {"message": "no such session", "status": 404}}'
    at = app()
    at.session_state["session_id"] = "expired"
    at.run()
    at.chat_input[0].set_value("Where was he born?").run()
    assert not at.exception and "your next question starts a new one" in at.error[0].value
    assert at.session_state["session_id"] is None


def test_the_operators_server_and_key_are_neither_shown_nor_changeable(
    sse_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the key was pre-filled into a sidebar field a visitor could read, and the server URL was
    a field a visitor could point anywhere (the UI then POSTed the key there)."""
    monkeypatch.setenv("MINDSEARCH_API_KEY", "operator-k3y-0123")
    at = app()
    at.run()
    fields = [f.label for f in at.text_input]  # the sidebar's fields too
    assert fields == ["Collection"], "no server URL or key field (only the documents' collection)"
    at.chat_input[0].set_value("Who directed Jaws?").run()
    assert not at.exception
    assert SSEHandler.headers_seen[0]["authorization"] == "Bearer operator-k3y-0123"
    shown = json.dumps([str(element) for element in at.main]) + json.dumps([str(e) for e in at.sidebar])
    assert "operator-k3y-0123" not in shown and sse_server.rsplit(":", 1)[1] not in shown
    state = {key: repr(at.session_state[key]) for key in ("turns", "session_id")}
    assert "operator-k3y-0123" not in json.dumps(state), "the key is in no widget and no session state"


def test_visitors_bring_their_own_key_only_when_the_operator_allows_it(
    sse_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MINDSEARCH_API_KEY", "operator-k3y-0123")
    monkeypatch.setenv("MINDSEARCH_UI_VISITOR_KEYS", "1")
    at = app()
    at.run()
    field, _collection = at.sidebar.text_input
    assert field.label == "Your API key"
    assert field.value == "" and field.proto.type == field.proto.PASSWORD, "never pre-filled"
    at.chat_input[0].set_value("Who directed Jaws?").run()
    field.set_value("visitor-key-42").run()
    at.chat_input[0].set_value("Who wrote Dune?").run()
    sent = [h["authorization"] for h in SSEHandler.headers_seen]
    assert sent[0] == "Bearer operator-k3y-0123" and len(sent) >= 2
    assert set(sent[1:]) == {"Bearer visitor-key-42"}, "the visitor's key replaces the operator's"


@pytest.mark.parametrize(
    ("status", "body", "shown", "hidden"),
    [
        (500, b"Traceback (most recent call last): /srv/secret/app.py line 3", "HTTP 500", "/srv/secret"),
        (502, b"<html><img src=http://h.example/x.png>upstream sk-live-123</html>", "HTTP 502", "sk-live"),
        (401, b'{"error": {"message": "missing or wrong API key"}}', "needs an API key", "missing or wrong"),
        (
            422,
            b'{"error": {"message": "settings.max_nodes may be at most 8 ![b](http://h.example/x.png)"}}',
            "max\\_nodes may be at most 8",
            "](http://h.example",
        ),
    ],
)
def test_a_refusal_body_is_never_echoed(
    sse_server: str, status: int, body: bytes, shown: str, hidden: str
) -> None:
    SSEHandler.status, SSEHandler.body = status, body
    at = app()
    at.run()
    at.chat_input[0].set_value("Who directed Jaws?").run()
    assert not at.exception
    message = at.error[0].value
    assert shown in message and hidden not in message, message


def test_redirects_are_not_followed_so_the_key_stays_with_the_server(
    sse_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Elsewhere(BaseHTTPRequestHandler):
        seen: ClassVar[list[str]] = []

        def do_POST(self) -> None:
            Elsewhere.seen.append(self.headers.get("Authorization", ""))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    other, other_url = serve(Elsewhere)
    monkeypatch.setenv("MINDSEARCH_API_KEY", "operator-k3y-0123")
    SSEHandler.status, SSEHandler.extra_headers = 307, {"Location": f"{other_url}/v1/search"}
    at = app()
    at.run()
    at.chat_input[0].set_value("Who directed Jaws?").run()
    other.shutdown()
    assert not at.exception and "HTTP 307" in at.error[0].value
    assert Elsewhere.seen == [], "nothing (and no key) went to where the redirect pointed"


def test_no_proxy_from_the_environment_sees_the_key(sse_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    class Proxy(BaseHTTPRequestHandler):
        seen: ClassVar[list[str]] = []

        def do_POST(self) -> None:
            Proxy.seen.append(self.headers.get("Authorization", ""))
            self.send_response(502)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    proxy, proxy_url = serve(Proxy)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy_url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MINDSEARCH_API_KEY", "operator-k3y-0123")
    at = app()
    at.run()
    at.chat_input[0].set_value("Who directed Jaws?").run()
    proxy.shutdown()
    assert not at.exception and Proxy.seen == []
    assert SSEHandler.headers_seen[0]["authorization"] == "Bearer operator-k3y-0123", "straight to the server"


def hostile(host: str = "h.example") -> str:
    """Model-written Markdown that would load an image from ``host`` and show a phishing link."""
    return f"![b](http://{host}/x.png) [Verify your account](http://{host}/phish) <b>bold</b> :red[x]"


def injected_url(host: str = "h.example") -> str:
    """A result URL whose newlines, once rendered raw, define and show an image (urlsplit drops them)."""
    return f"http://{host}/ref\n\n![p][r]\n\n[r]:\nhttp://{host}/img.png"


HOSTILE = hostile()
INJECTED_URL = injected_url()


def hostile_events(host: str = "h.example") -> list[dict[str, Any]]:
    """Every string the UI renders, written by a model or a page, holding Markdown that would load an
    image and show a link."""
    text, url = hostile(host), injected_url(host)
    node = f"q1 {text}"
    run = events(answer=f"{text} [1]")
    run[1]["added"] = [{"id": node, "question": text, "depends_on": []}]
    for event in run[2:6]:
        if "node_id" in event:
            event["node_id"] = node
    run[2]["question"] = text
    run[3]["query"] = text
    run[3]["hits"] = [{"url": url, "title": text, "snippet": text, "engine": "local"}]
    run[4]["answer"] = f"{text} [1]"
    run[4]["references"] = [{"n": 1, "title": text, "url": url}]
    run[5]["error"] = text
    run.insert(4, {"v": 2, "type": "queries", "node_id": node, "queries": [text]})
    page = {"v": 2, "type": "page_read", "node_id": node, "url": url, "title": text}
    run.insert(5, {**page, "ok": False, "error": text})
    run.insert(6, {"v": 2, "type": "error", "stage": "plan", "message": f"invalid plan: {text}"})
    run.insert(7, {"v": 2, "type": "error", "stage": "node", "node_id": "q2", "message": text})
    refs = [{"n": 1, "title": text, "url": url}, {"n": 2, "title": "", "url": url}]
    run[-2]["references"] = run[-1]["references"] = refs
    return run


def test_model_and_page_text_is_escaped_everywhere(sse_server: str) -> None:
    SSEHandler.script = hostile_events()
    at = app()
    at.run()
    at.chat_input[0].set_value("Who directed Jaws?").run()
    assert not at.exception
    rendered = [m.value for m in at.markdown] + [c.value for c in at.caption]
    rendered += [e.value for e in at.error] + [w.value for w in at.warning] + [x.label for x in at.expander]
    assert len([e for e in at.error]) >= 2 and at.warning and at.expander
    for text in rendered:
        assert not re.search(r"(?<!\\)!\[", text), text  # no image
        assert not re.search(r"(?<!\\)\]\((?!https?://en\.wikipedia)", text), text  # no link but ours
        assert not re.search(r"(?<!\\)<b>", text), text
        assert not re.search(r"(?<!\\)\[r\](?!\\)", text), text  # no reference definition
        assert not re.search(r"(?<!\\):red\[x", text), text  # no Streamlit colour directive
    assert any("Verify your account" in text for text in [x.label for x in at.expander])
    assert any("Verify your account" in e.value for e in at.error)


def test_escaping_keeps_pages_from_injecting_markup() -> None:
    assert "<" not in escape(EVIL).replace("\\<", "")
    assert (
        "javascript" not in cited_markdown("see [1]", [{"n": 1, "url": "javascript:alert(1)"}]).split("(")[-1]
    )
    refs = references_markdown([{"n": 1, "title": EVIL, "url": "javascript:alert(1)"}])
    assert "](javascript" not in refs and "\\<img" in refs
    # the renderer autolinks after parsing, escapes or not: an invisible word joiner breaks the patterns
    assert escape("see http://h.example/phish or www.h.example or a@h.example") == (
        "see http\u2060\\://h\\.example/phish or www\u2060\\.h\\.example or a\\@\u2060h\\.example"
    ), "no autolinks"


@pytest.mark.parametrize(
    "url",
    [
        "http://h.example/ref\n\n![p][r]\n\n[r]:\nhttp://h.example/img.png",
        "http://h.example/a\rb",
        "http://h.example/\tx",
        "http://h.example/\x00",
        "https://h.example/\u2028x",
    ],
)
def test_a_url_with_a_control_character_is_never_a_link(url: str) -> None:
    """urlsplit drops \\r\\n\\t, so the URL passed the check while the raw string was rendered."""
    assert safe_url(url) is None
    refs = references_markdown([{"n": 1, "title": "t", "url": url}])
    assert "\n" not in refs and "](" not in refs
    assert "](" not in cited_markdown("see [1]", [{"n": 1, "url": url}])


def test_safe_urls_are_normalised_and_percent_encoded() -> None:
    assert (
        safe_url("HTTPS://en.wikipedia.org/wiki/Jaws_(film)")
        == "https://en.wikipedia.org/wiki/Jaws_%28film%29"
    )
    assert safe_url('http://h.example/a b<c>"`') == "http://h.example/a%20b%3Cc%3E%22%60"
    assert safe_url("http:///no-host") is None and safe_url("http://h.example:99999/") is None


def test_the_streamlit_config_ships_with_the_ui() -> None:
    """frontend/.streamlit/config.toml sits beside the script, so Streamlit reads it however the UI is
    started; the browser tests prove the first two settings in a running UI."""
    import tomllib

    config = tomllib.loads((FRONTEND / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["browser"]["gatherUsageStats"] is False
    assert config["client"]["showErrorDetails"] == "none", "no tracebacks for visitors"


# --- the engines offered are the server's ----------------------------------------------------------------
def test_the_engines_offered_are_those_the_server_has_enabled(
    sse_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, the UI offered a fixed list of six engines whatever the server had (and a plugin's none):
    choosing one the server had not enabled got a 422."""
    monkeypatch.setenv("MINDSEARCH_API_KEY", "operator-k3y-0123")
    SSEHandler.enabled = ["local", "myengine"]
    at = app()
    at.run()
    engines, _collections = at.sidebar.multiselect
    assert engines.options == ["local", "myengine"] and not engines.disabled
    assert SSEHandler.gets[0]["path"] == "/v1/engines"
    assert SSEHandler.gets[0]["authorization"] == "Bearer operator-k3y-0123", "asked as a question is"
    engines.set_value(["myengine"]).run()
    at.chat_input[0].set_value("Who directed Jaws?").run()
    assert not at.exception
    assert SSEHandler.bodies[0]["settings"]["engines"] == ["myengine"]


def test_an_engine_name_that_is_not_one_is_never_offered(sse_server: str) -> None:
    SSEHandler.enabled = ["local", "<img src=x onerror=alert(1)>", "**bold**", 7, "searxng"]
    at = app()
    at.run()
    assert not at.exception
    assert at.sidebar.multiselect[0].options == ["local", "searxng"]


@pytest.mark.parametrize("status", [401, 404, 500])
def test_without_the_servers_list_no_engine_is_offered_and_questions_still_work(
    sse_server: str, status: int
) -> None:
    """An older server (404), a visitor without a key yet (401), a failing server: the server's default
    engines are searched, and the UI offers none it cannot vouch for."""
    SSEHandler.engines_status = status
    at = app()
    at.run()
    engines, _collections = at.sidebar.multiselect
    assert engines.options == [] and engines.disabled
    at.chat_input[0].set_value("Who directed Jaws?").run()
    assert not at.exception and "Jaws was directed by Steven Spielberg" in texts(at)
    assert "engines" not in SSEHandler.bodies[0]["settings"]


def test_the_time_range_is_sent_only_when_chosen(sse_server: str) -> None:
    at = app()
    at.run()
    at.chat_input[0].set_value("Who directed Jaws?").run()
    assert "time_range" not in SSEHandler.bodies[0]["settings"], "the server's default"
    at.sidebar.selectbox[2].set_value("week").run()
    at.chat_input[0].set_value("What is new about Jaws?").run()
    assert not at.exception and SSEHandler.bodies[1]["settings"]["time_range"] == "week"


def research_events() -> list[dict[str, Any]]:
    """A research run as the server streams it: an outline, sections researched and written, a summary."""
    ref = {"n": 1, "title": "Alder River", "url": "https://example.org/alder"}
    text = "The Alder River is 412 km long [1]."
    return [
        {
            "v": 2,
            "type": "run_started",
            "run_id": "run-1234",
            "question": "Tollen",
            "language": "en",
            "llm": "m",
            "engines": ["local"],
        },
        {
            "v": 3,
            "type": "outline",
            "title": f"The Tollen region {EVIL}",
            "sections": [
                {"id": "s1", "title": "Alder River", "questions": ["a?"], "node_ids": ["s1q1"]},
                {"id": "s2", "title": f"Brenn {EVIL}", "questions": ["b?"], "node_ids": ["s2q1"]},
            ],
        },
        {"v": 3, "type": "section_started", "section_id": "s1", "title": "Alder River"},
        {"v": 3, "type": "section_started", "section_id": "s2", "title": "Brenn"},
        {"v": 2, "type": "answer_delta", "text": "# The Tollen region\n\n## Alder River\n\n"},
        {"v": 3, "type": "section_delta", "section_id": "s1", "text": text},
        {"v": 2, "type": "answer_delta", "text": text},
        {"v": 3, "type": "section_done", "section_id": "s1", "ok": True, "text": text},
        {"v": 3, "type": "section_done", "section_id": "s2", "ok": False, "text": EVIL, "error": "time"},
        {"v": 2, "type": "references", "references": [ref]},
        {
            "v": 2,
            "type": "done",
            "answer": f"# The Tollen region\n\n## Alder River\n\n{text}",
            "references": [ref],
            "nodes": [],
            "seconds": 2.0,
            "ok": False,
        },
    ]


def test_a_research_report_shows_its_outline_sections_references_and_downloads(sse_server: str) -> None:
    SSEHandler.script = research_events()
    at = app()
    at.run()
    at.sidebar.selectbox[1].set_value("deep")
    at.chat_input[0].set_value("Tollen").run()
    assert not at.exception
    body = texts(at)
    assert SSEHandler.bodies[0]["settings"]["depth"] == "deep"
    assert "Alder River" in body and "\\(done\\)" in body and "\\(incomplete\\)" in body
    assert "The Alder River is 412 km long [\\[1\\]](https://example.org/alder)" in body
    assert ":red[incomplete]" in body and "**References**" in body
    assert not re.search(r"(?<!\\)<img", body) and "](javascript" not in body  # model text is escaped
    downloads = at.get("download_button")
    assert len(downloads) == 4
