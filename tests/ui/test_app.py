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
from streamlit.testing.v1 import AppTest

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
sys.path.insert(0, str(FRONTEND))
from view import RunView, cited_markdown, escape, references_markdown  # noqa: E402

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
    script: ClassVar[list[dict[str, Any]]] = []
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        SSEHandler.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for event in self.script:
            self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def sse_server() -> Iterator[str]:
    SSEHandler.script, SSEHandler.bodies = events(), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SSEHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
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
    assert "Searching… 1 sub-question(s) running" in texts(at)
    dot = at.get("graphviz_chart")[0].proto.spec
    assert "#f4c542" in dot and "q1 -> q2" in dot.replace('"', "")


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
    assert [e.label for e in at.expander] == [
        ":green[●] q1: Who directed Jaws?",
        ":red[●] q2: When was Jaws released?",
    ]
    assert at.warning[0].value == "timed out"


def test_error_state_says_what_to_do_without_a_traceback() -> None:
    at = app()
    at.run()
    at.sidebar.text_input[0].set_value("http://127.0.0.1:9")
    at.chat_input[0].set_value("Who directed Jaws?").run()
    assert not at.exception
    assert "cannot reach the mindsearch server at http://127.0.0.1:9" in at.error[0].value
    assert "mindsearch serve" in at.error[0].value


def test_a_question_streams_from_the_server_and_is_rendered(sse_server: str) -> None:
    at = app()
    at.run()
    at.sidebar.text_input[0].set_value(sse_server)
    at.sidebar.selectbox[1].set_value("quick")
    at.chat_input[0].set_value("Who directed Jaws?").run()
    assert not at.exception
    body = texts(at)
    assert "Jaws was directed by Steven Spielberg" in body and "**References**" in body
    sent = SSEHandler.bodies[0]
    assert sent["question"] == "Who directed Jaws?" and sent["settings"]["depth"] == "quick"
    assert sent["session_id"]
    assert not re.search(r"(?<!\\)<img", body) and "](javascript" not in body  # page text is escaped


def test_escaping_keeps_pages_from_injecting_markup() -> None:
    assert "<" not in escape(EVIL).replace("\\<", "")
    assert (
        "javascript" not in cited_markdown("see [1]", [{"n": 1, "url": "javascript:alert(1)"}]).split("(")[-1]
    )
    refs = references_markdown([{"n": 1, "title": EVIL, "url": "javascript:alert(1)"}])
    assert "](javascript" not in refs and "\\<img" in refs
