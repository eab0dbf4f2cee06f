"""The mindsearch chat UI: ``streamlit run frontend/app.py``. It talks to one REST server only.

The server's address and key are the operator's (``MINDSEARCH_SERVER_URL``, default
http://127.0.0.1:8002, and ``MINDSEARCH_API_KEY``): visitors never see them and cannot change them.
With ``MINDSEARCH_UI_VISITOR_KEYS=1`` visitors may type their own key. ``frontend/.streamlit/config.toml``
binds the UI to 127.0.0.1 and turns Streamlit's usage statistics off, however the UI is started.

Every string that did not come from this code is escaped before Streamlit renders it (see ``view``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import streamlit as st

from mindsearch.events import Reference
from mindsearch.state import RunNode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from view import (
    RunView,
    ServerError,
    SessionLost,
    UIConfig,
    cited_markdown,
    escape,
    one_line,
    printable,
    references_markdown,
    server_engines,
    stream_events,
)

# coloured dots in Streamlit's label markup: no emoji font is needed to see a node's state
STATE_ICONS = {"waiting": ":gray[●]", "running": ":orange[●]", "done": ":green[●]", "failed": ":red[●]"}

st.set_page_config(page_title="mindsearch", page_icon="🔎", layout="wide")
config = UIConfig.from_env()

if "turns" not in st.session_state:
    st.session_state.turns = []
if "session_id" not in st.session_state:
    st.session_state.session_id = None  # issued by the server with the first answer

TIME_RANGES = {
    "": "the server's default",
    "any": "any time",
    "day": "past day",
    "week": "past week",
    "month": "past month",
    "year": "past year",
}


@st.cache_data(ttl=60, show_spinner=False, max_entries=64)
def offered_engines(server_url: str, key: str) -> list[str]:
    """The engines the server has enabled, asked at most once a minute (a failure is not kept)."""
    return server_engines(UIConfig(server_url=server_url, api_key=key))


with st.sidebar:
    st.header("mindsearch")
    visitor_key = ""
    if config.visitor_keys:
        visitor_key = st.text_input("Your API key", "", type="password", help="sent to this UI's server only")
    try:  # only what this server can search is offered
        offered = offered_engines(config.server_url, config.key_for(visitor_key))
    except ServerError:
        offered = []
    engines = st.multiselect(
        "Search engines",
        offered,
        default=[],
        placeholder="the server's default",
        disabled=not offered,
        help=None if offered else "the server's engines could not be listed; it searches its default ones",
    )
    language = st.selectbox("Answer language", ["auto", "en", "zh"])
    depth = st.selectbox("Depth", ["normal", "quick", "deep"], help="quick: one sub-question, one round")
    time_range = st.selectbox("Time range", list(TIME_RANGES), format_func=TIME_RANGES.__getitem__)
    if st.button("New conversation"):
        st.session_state.turns = []
        st.session_state.session_id = None
        st.rerun()


def options() -> dict[str, Any]:
    chosen: dict[str, Any] = {"language": language, "depth": depth}
    if engines:
        chosen["engines"] = engines
    if time_range:
        chosen["time_range"] = time_range
    return chosen


def as_dicts(references: list[Reference]) -> list[dict[str, Any]]:
    """References as the Markdown helpers take them."""
    return [reference.model_dump() for reference in references]


def remember_session(session_id: str) -> None:
    st.session_state.session_id = session_id


def show_run(view: RunView) -> None:
    """One run: errors, the graph, the answer with citations, references, and a panel per node."""
    for error in view.error_messages():
        st.error(escape(error))
    if view.nodes:
        st.graphviz_chart(view.dot())
    if view.answer:
        st.markdown(cited_markdown(view.answer, as_dicts(view.references)))
    elif view.status == "running":
        st.caption(escape(view.progress()))
    if view.references:
        st.markdown("**References**  \n" + references_markdown(as_dicts(view.references)))
    for node in view.nodes.values():
        with st.expander(f"{STATE_ICONS[node.state]} {one_line(node.id)}: {one_line(node.question)}"):
            show_node(node)
    if view.finished:  # the server's done arrived, complete or not
        count = len(view.nodes)
        st.caption(f"{count} sub-question{'' if count == 1 else 's'}, {view.seconds:.1f} s")


def show_node(node: RunNode) -> None:
    if node.queries:
        st.markdown("**Queries:** " + ", ".join(f"“{one_line(q)}”" for q in node.queries))
    hits = node.hits
    if hits:
        st.markdown("**Search results**")
        for hit in hits[:10]:
            st.markdown(f"- {one_line(hit.title)}: {one_line(hit.snippet[:200])}")
    if node.pages:
        st.markdown("**Pages read**")
        for page in node.pages:
            mark = "✓" if page.ok else f"✗ {one_line(str(page.error))}"
            st.markdown(f"- {escape(printable(page.url))} {mark}")
    if node.answer:
        st.markdown("**Answer:** " + cited_markdown(node.answer, as_dicts(node.references)))
    if node.error:
        st.warning(escape(node.error))


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
                config,
                question,
                session_id=st.session_state.session_id,
                options=options(),
                visitor_key=visitor_key,
                on_session=remember_session,
            ):
                view.apply_json(event)
                if time.monotonic() - shown > 0.1 or event.get("type") == "done":
                    with live.container():
                        show_run(view)
                    shown = time.monotonic()
        except SessionLost as exc:
            st.session_state.session_id = None
            view.fail(str(exc))
        except ServerError as exc:
            view.fail(str(exc))
        except Exception as exc:  # never a traceback in the page: say what broke, in one line
            view.fail(f"the answer could not be shown ({type(exc).__name__})")
        if view.status == "running":
            view.fail("the answer stopped before it was finished")
        with live.container():
            show_run(view)
