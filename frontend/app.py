"""The mindsearch chat UI: ``streamlit run frontend/app.py``. It talks to one REST server only.

The server's address and key are the operator's (``MINDSEARCH_SERVER_URL``, default
http://127.0.0.1:8002, and ``MINDSEARCH_API_KEY``): visitors never see them and cannot change them.
With ``MINDSEARCH_UI_VISITOR_KEYS=1`` visitors may type their own key. ``frontend/.streamlit/config.toml``
binds the UI to 127.0.0.1 and turns Streamlit's usage statistics off, however the UI is started.

Every string that did not come from this code is escaped before Streamlit renders it (see ``view``).
"""

from __future__ import annotations

import functools
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
    collections,
    escape,
    export_bytes,
    one_line,
    outline_markdown,
    printable,
    references_markdown,
    report_markdown,
    server_engines,
    stream_events,
    upload_documents,
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


@st.cache_data(ttl=10, show_spinner=False, max_entries=64)
def known_collections(server_url: str, key: str) -> list[str]:
    """The collections the visitor may search, asked at most every 10 s (and after an upload)."""
    return collections(UIConfig(server_url=server_url, api_key=key))


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
    depth = st.selectbox(
        "Depth",
        ["normal", "quick", "deep"],
        help="quick: one sub-question, one round; deep: research mode, an outlined report of cited sections",
    )
    time_range = st.selectbox("Time range", list(TIME_RANGES), format_func=TIME_RANGES.__getitem__)
    if st.button("New conversation"):
        st.session_state.turns = []
        st.session_state.session_id = None
        st.rerun()
    with st.expander("Your documents"):
        uploads = st.file_uploader(
            "PDF, DOCX, HTML, Markdown, text, JSON", accept_multiple_files=True, key="uploads"
        )
        target = st.text_input("Collection", "default", max_chars=64)
        if st.button("Upload", disabled=not uploads):
            try:
                landed, refused = upload_documents(
                    config, [(f.name, f.getvalue()) for f in uploads or []], target, visitor_key
                )
            except ServerError as exc:
                st.error(escape(str(exc)))
            else:
                if landed:
                    known_collections.clear()
                    st.success(escape(f"added to {target}: {', '.join(landed)}"))
                for line in refused:
                    st.error(escape(line))
        try:
            known = known_collections(config.server_url, config.key_for(visitor_key))
        except ServerError:
            known = []
        chosen_collections = st.multiselect(
            "Search only these collections",
            known,
            default=[],
            placeholder="none: the server's usual sources",
            disabled=not known,
        )


def options() -> dict[str, Any]:
    chosen: dict[str, Any] = {"language": language, "depth": depth}
    if engines:
        chosen["engines"] = engines
    if chosen_collections:  # documents are searched by the local engine
        chosen["collections"] = chosen_collections
        chosen["engines"] = list(dict.fromkeys([*engines, "local"]))
    if time_range:
        chosen["time_range"] = time_range
    return chosen


def as_dicts(references: list[Reference]) -> list[dict[str, Any]]:
    """References as the Markdown helpers take them."""
    return [reference.model_dump() for reference in references]


def remember_session(session_id: str) -> None:
    st.session_state.session_id = session_id


def show_run(view: RunView, *, downloads: bool = True) -> None:
    """One run: errors, the graph, the answer with citations, references, and a panel per node."""
    for error in view.error_messages():
        st.error(escape(error))
    if view.sections:  # research mode: the outline with its progress, then the report as it is written
        show_report(view, downloads=downloads)
        return
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
        if downloads:
            show_downloads(view)


def show_report(view: RunView, *, downloads: bool) -> None:
    st.subheader(one_line(view.title or view.question))
    st.markdown("**Outline**  \n" + outline_markdown(view))
    report = report_markdown(view)
    if report:
        st.markdown(report)
    elif view.status == "running":
        st.caption("Researching the sections…")
    if view.references:
        st.markdown("**References**  \n" + references_markdown(as_dicts(view.references)))
    if view.finished:
        count = len(view.section_progress())
        st.caption(f"{count} sections, {len(view.nodes)} sub-questions, {view.seconds:.1f} s")
        if downloads:
            show_downloads(view)


def show_downloads(view: RunView) -> None:
    """Download buttons for the finished run; each file is asked of the server when clicked."""
    if not view.run_id or not view.answer:
        return
    formats = {
        "md": ("Markdown", "text/markdown"),
        "html": ("HTML", "text/html"),
        "pdf": ("PDF", "application/pdf"),
    }
    formats["docx"] = ("DOCX", "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    columns = st.columns(len(formats))
    for column, (fmt, (label, mime)) in zip(columns, formats.items(), strict=True):
        with column:
            st.download_button(
                label,
                data=functools.partial(export_bytes, config, view.run_id, fmt, visitor_key),
                file_name=f"mindsearch-{view.run_id[:16]}.{fmt}",
                mime=mime,
                key=f"download-{view.run_id}-{fmt}",
                on_click="ignore",
            )


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
                        show_run(view, downloads=False)  # the buttons come once, when it is over
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
