"""The mindsearch chat UI: ``streamlit run frontend/app.py``. It talks to the REST server only.

The server URL comes from the sidebar (default ``MINDSEARCH_SERVER_URL`` or http://127.0.0.1:8002).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import streamlit as st

from mindsearch.events import Reference
from mindsearch.state import RunNode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from view import (
    RunView,
    ServerError,
    cited_markdown,
    escape,
    references_markdown,
    stream_events,
)

ENGINES = ["local", "duckduckgo", "searxng", "brave", "serper", "tavily"]
# coloured dots in Streamlit's label markup: no emoji font is needed to see a node's state
STATE_ICONS = {"waiting": ":gray[●]", "running": ":orange[●]", "done": ":green[●]", "failed": ":red[●]"}

st.set_page_config(page_title="mindsearch", page_icon="🔎", layout="wide")

if "turns" not in st.session_state:
    st.session_state.turns = []
if "session_id" not in st.session_state:
    st.session_state.session_id = uuid.uuid4().hex

with st.sidebar:
    st.header("mindsearch")
    server = st.text_input("Server URL", os.environ.get("MINDSEARCH_SERVER_URL", "http://127.0.0.1:8002"))
    api_key = st.text_input(
        "API key (if the server needs one)", os.environ.get("MINDSEARCH_API_KEY", ""), type="password"
    )
    engines = st.multiselect("Search engines", ENGINES, default=[], placeholder="the server's default")
    language = st.selectbox("Answer language", ["auto", "en", "zh"])
    depth = st.selectbox("Depth", ["normal", "quick", "deep"], help="quick: one sub-question, one round")
    if st.button("New conversation"):
        st.session_state.turns = []
        st.session_state.session_id = uuid.uuid4().hex
        st.rerun()


def options() -> dict[str, Any]:
    chosen: dict[str, Any] = {"language": language, "depth": depth}
    if engines:
        chosen["engines"] = engines
    return chosen


def as_dicts(references: list[Reference]) -> list[dict[str, Any]]:
    """References as the Markdown helpers take them."""
    return [reference.model_dump() for reference in references]


def show_run(view: RunView) -> None:
    """One run: errors, the graph, the answer with citations, references, and a panel per node."""
    for error in view.error_messages():
        st.error(error)
    if view.nodes:
        st.graphviz_chart(view.dot())
    if view.answer:
        st.markdown(cited_markdown(view.answer, as_dicts(view.references)))
    elif view.status == "running":
        running = sum(1 for n in view.nodes.values() if n.state == "running")
        st.caption(f"Searching… {running} sub-question(s) running" if view.nodes else "Planning…")
    if view.references:
        st.markdown("**References**  \n" + references_markdown(as_dicts(view.references)))
    for node in view.nodes.values():
        with st.expander(f"{STATE_ICONS[node.state]} {node.id}: {node.question}"):
            show_node(node)
    if view.status == "done":
        st.caption(f"{len(view.nodes)} sub-questions, {view.seconds:.1f} s")


def show_node(node: RunNode) -> None:
    if node.queries:
        st.markdown("**Queries:** " + ", ".join(f"`{escape(q)}`" for q in node.queries))
    hits = node.hits
    if hits:
        st.markdown("**Search results**")
        for hit in hits[:10]:
            st.markdown(f"- {escape(hit.title)}: {escape(hit.snippet[:200])}")
    if node.pages:
        st.markdown("**Pages read**")
        for page in node.pages:
            mark = "✓" if page.ok else f"✗ {escape(str(page.error))}"
            st.markdown(f"- {escape(page.url)} {mark}")
    if node.answer:
        st.markdown("**Answer:** " + cited_markdown(node.answer, as_dicts(node.references)))
    if node.error:
        st.warning(node.error)


if not st.session_state.turns:
    st.title("mindsearch")
    st.markdown(
        "Ask a hard question. It is split into sub-questions that are searched at once, "
        "and the answer cites its sources."
    )

for turn in st.session_state.turns:
    with st.chat_message("user"):
        st.markdown(escape(turn.typed))
    with st.chat_message("assistant"):
        show_run(turn)

question = st.chat_input("Ask a question")
if question:
    view = RunView(typed=question)
    st.session_state.turns.append(view)
    with st.chat_message("user"):
        st.markdown(escape(question))
    with st.chat_message("assistant"):
        live = st.empty()
        shown = 0.0
        try:
            for event in stream_events(
                server, question, session_id=st.session_state.session_id, options=options(), api_key=api_key
            ):
                view.apply_json(event)
                if time.monotonic() - shown > 0.1 or event.get("type") == "done":
                    with live.container():
                        show_run(view)
                    shown = time.monotonic()
        except ServerError as exc:
            view.fail(str(exc))
        except Exception as exc:  # never a traceback in the page: say what broke, in one line
            view.fail(f"the answer could not be shown: {type(exc).__name__}: {exc}")
        if view.status == "running":
            view.fail("the answer stopped before it was finished")
        with live.container():
            show_run(view)
