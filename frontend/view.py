"""What the chat UI shows of one run, built from the server's events, and how it talks to the server.

No Streamlit here, so it is tested alone.

The UI talks to one REST server only (``POST /v1/search``, server-sent events, and ``GET /v1/engines``
for the engines it may offer): its address and key are
the operator's settings (``UIConfig``: ``MINDSEARCH_SERVER_URL``, ``MINDSEARCH_API_KEY``), never shown
to visitors and never sent anywhere else. Everything that did not come from this code (page titles,
snippets, answers, sub-questions, node ids, error text, the server's refusals) is escaped before it
reaches Markdown, so neither a page nor a model can inject HTML, images or links; only http(s) URLs of
references become links, normalised and percent-encoded.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import Field

from mindsearch.state import RunState

STATE_COLOURS = {"waiting": "#d0d7de", "running": "#f4c542", "done": "#7cc47f", "failed": "#e5534b"}
DEFAULT_SERVER = "http://127.0.0.1:8002"
# every ASCII character Markdown (CommonMark, GFM, Streamlit's :colour[] and :emoji: directives, LaTeX)
# acts on
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:@=])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_IN_URL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MARKER = re.compile(r"\[(\d{1,3})\]")
_TRUE = ("1", "true", "yes", "on")
# an engine name as the server's registry allows it: shown as an option only when it is one
_ENGINE_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")


# Streamlit's renderer turns URLs and e-mail addresses in plain text into links after parsing, so
# escaping cannot stop it: an invisible WORD JOINER (U+2060) after "http", "www" ... and "@" does.
_AUTOLINK = re.compile(r"(?i)(?<![^\W_])(https?|ftp|mailto|xmpp|www)(?=\\?[:.])|@")
WORD_JOINER = "\u2060"


def escape(text: str) -> str:
    """Markdown-safe text: every character Markdown or HTML would act on is escaped, URLs and e-mail
    addresses are kept from becoming links, control characters (but tabs and newlines) become U+FFFD."""
    text = _CONTROL.sub("\ufffd", text).replace("&", "&amp;")
    text = _AUTOLINK.sub(lambda m: m.group() + WORD_JOINER, text)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def one_line(text: str) -> str:
    """Escaped text on one line (widget labels)."""
    return escape(" ".join(text.split()))


def printable(text: str) -> str:
    """Text with every control character (newlines too) shown as U+FFFD: a URL as it really is."""
    return _CONTROL_IN_URL.sub("\ufffd", text)


def safe_url(url: str) -> str | None:
    """The URL as a Markdown link may hold it, or None when it must not be a link.

    Only http(s) URLs with a host; none with a control character (URL parsers drop ``\\r\\n\\t``, so the
    raw string would differ from what is linked). The URL returned is the parsed one, rebuilt, with
    everything Markdown could read as syntax percent-encoded.
    """
    if _CONTROL_IN_URL.search(url):
        return None
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  (a malformed port raises here)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    rebuilt = urlunsplit((parts.scheme.lower(), parts.netloc, parts.path, parts.query, parts.fragment))
    return quote(rebuilt, safe="/:?#[]@!$&'*+,;=%~")


@dataclass(frozen=True)
class UIConfig:
    """The operator's settings for the UI, from the environment; visitors can change none of them.

    ``server_url`` (``MINDSEARCH_SERVER_URL``) is the one server the UI talks to; ``api_key``
    (``MINDSEARCH_API_KEY``) is sent to it and to nothing else; with ``visitor_keys``
    (``MINDSEARCH_UI_VISITOR_KEYS=1``) visitors may type their own key, sent instead of the operator's.
    """

    server_url: str = DEFAULT_SERVER
    api_key: str = ""
    visitor_keys: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> UIConfig:
        env = os.environ if env is None else env
        return cls(
            server_url=env.get("MINDSEARCH_SERVER_URL", "").strip() or DEFAULT_SERVER,
            api_key=env.get("MINDSEARCH_API_KEY", "").strip(),
            visitor_keys=env.get("MINDSEARCH_UI_VISITOR_KEYS", "").strip().lower() in _TRUE,
        )

    def key_for(self, visitor_key: str = "") -> str:
        """The key sent: the visitor's when visitors may bring one and did, else the operator's."""
        return visitor_key.strip() if self.visitor_keys and visitor_key.strip() else self.api_key

    def __repr__(self) -> str:  # the key never reaches a log or a traceback
        return f"UIConfig(server_url={self.server_url!r}, visitor_keys={self.visitor_keys})"


class RunView(RunState):
    """One run in the chat: the shared ``RunState``, fed the server's JSON with ``apply_json``.

    It adds what only the UI knows: the question as the user typed it (the server may rewrite a
    follow-up), and the errors the client met itself (the server unreachable, the stream cut).
    """

    typed: str = ""
    client_errors: list[str] = Field(default_factory=list)

    def fail(self, message: str) -> None:
        """The client could not finish reading the run: say why, and show the run as failed."""
        self.client_errors.append(message)
        self.status = "failed"

    def progress(self) -> str:
        """What is happening while the answer is not there yet: "running q1, q3", not a count."""
        if not self.nodes:
            return "Planning…"
        running = [node.id for node in self.nodes.values() if node.state == "running"]
        if running:
            return "Searching… running " + ", ".join(running)
        waiting = [node.id for node in self.nodes.values() if node.state == "waiting"]
        if waiting:
            return "Searching… waiting for " + ", ".join(waiting)
        return "Writing the answer…"

    def section_progress(self) -> list[tuple[str, str]]:
        """A research report's sections as (title, state), in outline order: what the outline shows."""
        return [
            (section.title, section.state) for section in self.sections.values() if section.kind == "section"
        ]

    def error_messages(self) -> list[str]:
        """Every error of the run, one line each: the server's as they came, then the client's."""
        lines = [
            f"{error.stage}{f' ({error.node_id})' if error.node_id else ''}: {error.message}"
            for error in self.errors
        ]
        return lines + self.client_errors

    # -- rendering helpers ---------------------------------------------------------------------------
    def dot(self) -> str:
        """The graph in Graphviz DOT, nodes coloured by state."""
        lines = [
            "digraph G {",
            "  rankdir=LR;",
            '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
        ]
        for node in self.nodes.values():
            label = _dot_label(f"{node.id}: {node.question}")
            lines.append(
                f'  "{_dot_id(node.id)}" [label="{label}", fillcolor="{STATE_COLOURS[node.state]}"];'
            )
        for node in self.nodes.values():
            for parent in node.depends_on:
                lines.append(f'  "{_dot_id(parent)}" -> "{_dot_id(node.id)}";')
        lines.append("}")
        return "\n".join(lines)


def cited_markdown(text: str, references: list[dict[str, Any]]) -> str:
    """Escaped answer text whose [n] markers link to their sources."""
    urls = {int(ref["n"]): safe_url(str(ref.get("url", ""))) for ref in references}
    out, last = [], 0
    for match in _MARKER.finditer(text):
        out.append(escape(text[last : match.start()]))
        number = int(match.group(1))
        url = urls.get(number)
        out.append(f"[\\[{number}\\]]({url})" if url else f"\\[{number}\\]")
        last = match.end()
    out.append(escape(text[last:]))
    return "".join(out)


SECTION_ICONS = {
    "waiting": ":gray[○]",
    "researching": ":orange[●]",
    "writing": ":blue[●]",
    "done": ":green[●]",
    "incomplete": ":red[●]",
}


def outline_markdown(view: RunState) -> str:
    """The outline with each section's progress, one line each (escaped)."""
    lines = []
    for title, state in [(s.title, s.state) for s in view.sections.values() if s.kind == "section"]:
        lines.append(rf"{SECTION_ICONS.get(state, '')} {one_line(title)} \({escape(state)}\)")
    return "  \n".join(lines)


def report_markdown(view: RunState) -> str:
    """A research report as it stands: each section (then the summary) under its heading, its citations
    linked; the title and headings are the model's text, so they are escaped like everything else."""
    refs = [reference.model_dump() for reference in view.references]
    parts = []
    for section in view.sections.values():
        if not section.text:
            continue
        parts.append(f"#### {one_line(section.title)}\n\n{cited_markdown(section.text, refs)}")
        if section.state == "incomplete":
            parts.append(":red[incomplete]")
    return "\n\n".join(parts)


def references_markdown(references: list[dict[str, Any]]) -> str:
    lines = []
    for ref in references:
        url = safe_url(str(ref.get("url", "")))
        title = one_line(str(ref.get("title", "")) or printable(str(ref.get("url", ""))))
        where = f"[{title}]({url})" if url else f"{title} \\- {escape(printable(str(ref.get('url', ''))))}"
        lines.append(f"{int(ref['n'])}\\. {where}")
    return "  \n".join(lines)


def _dot_label(text: str) -> str:
    text = text if len(text) <= 60 else text[:57] + "..."
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _dot_id(node_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-]", "_", node_id)


# --- talking to the server -----------------------------------------------------------------------------
class ServerError(RuntimeError):
    """The server could not be reached or refused the request; the message is for people (and says
    nothing of the server's address or key)."""


class SessionLost(ServerError):
    """The server does not know the conversation (404): the next question starts a new one."""


def stream_events(
    config: UIConfig,
    question: str,
    *,
    session_id: str | None,
    options: dict[str, Any],
    visitor_key: str = "",
    on_session: Callable[[str], None] | None = None,
    timeout: float = 900.0,
) -> Iterator[dict[str, Any]]:
    """The events of one run, read from ``POST /v1/search`` on the configured server as server-sent
    events. ``on_session`` gets the session id the server issued (the ``X-Session-Id`` header)."""
    key = config.key_for(visitor_key)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body: dict[str, Any] = {"question": question, "settings": options or None}
    if session_id:
        body["session_id"] = session_id
    url = config.server_url.rstrip("/") + "/v1/search"
    try:
        with httpx.stream(
            "POST",
            url,
            json=body,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=5.0),
            follow_redirects=False,  # the key goes to the configured server, never where it points
            trust_env=False,  # nor through a proxy from the environment
        ) as response:
            if response.status_code != 200:
                response.read()
                raise refusal(response.status_code, response, config)
            issued = response.headers.get("x-session-id", "")
            if issued and on_session is not None:
                on_session(issued)
            data: list[str] = []
            for line in response.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    yield json.loads("\n".join(data))
                    data = []
    except httpx.ConnectError as exc:
        raise ServerError(
            "cannot reach the mindsearch server. Start it with `mindsearch serve`; the UI's operator "
            "sets its address with MINDSEARCH_SERVER_URL."
        ) from exc
    except httpx.TimeoutException as exc:
        raise ServerError("the server did not answer in time") from exc
    except httpx.HTTPError as exc:
        raise ServerError(f"the connection to the server failed ({type(exc).__name__})") from exc


def _headers(config: UIConfig, visitor_key: str) -> dict[str, str]:
    key = config.key_for(visitor_key)
    return {"Authorization": f"Bearer {key}"} if key else {}


def upload_documents(
    config: UIConfig,
    files: list[tuple[str, bytes]],
    collection: str,
    visitor_key: str = "",
    timeout: float = 120.0,
) -> tuple[list[str], list[str]]:
    """Upload files to a collection (``POST /v1/documents``): the names that landed, and one line per
    refused file naming it and why (the server's own reason, cut short)."""
    url = config.server_url.rstrip("/") + "/v1/documents"
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    try:
        response = httpx.post(
            url,
            data={"collection": collection},
            files=parts,
            headers=_headers(config, visitor_key),
            timeout=httpx.Timeout(timeout, connect=5.0),
            follow_redirects=False,
            trust_env=False,
        )
    except httpx.HTTPError as exc:
        raise ServerError(f"the upload failed ({type(exc).__name__})") from exc
    try:
        body = response.json()
        landed = [str(d["filename"]) for d in body.get("documents", [])]
        refused = [f"{e['file']}: {e['message']}"[:300] for e in body.get("errors", [])]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ServerError(f"the upload was refused (HTTP {response.status_code})") from exc
    if response.status_code == 413 and not refused:
        refused = ["the upload is larger than the server takes"]
    return landed, refused


def collections(config: UIConfig, visitor_key: str = "", timeout: float = 5.0) -> list[str]:
    """The collections of documents the visitor may search (``GET /v1/documents``), by name."""
    url = config.server_url.rstrip("/") + "/v1/documents"
    try:
        response = httpx.get(
            url,
            headers=_headers(config, visitor_key),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
        )
        found = response.json()["documents"] if response.status_code == 200 else []
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise ServerError(f"the documents could not be listed ({type(exc).__name__})") from exc
    names = [str(doc.get("collection", "")) for doc in found if isinstance(doc, dict)]
    return sorted({name for name in names if re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", name)})


def export_bytes(
    config: UIConfig, run_id: str, fmt: str, visitor_key: str = "", timeout: float = 60.0
) -> bytes:
    """A finished run in a format (``GET /v1/runs/{run_id}/export``), for a download button."""
    url = config.server_url.rstrip("/") + f"/v1/runs/{quote(run_id, safe='')}/export"
    try:
        response = httpx.get(
            url,
            params={"format": fmt},
            headers=_headers(config, visitor_key),
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
        )
    except httpx.HTTPError as exc:
        raise ServerError(f"the export failed ({type(exc).__name__})") from exc
    if response.status_code != 200:
        raise ServerError(f"the export failed (HTTP {response.status_code})")
    return response.content


def server_engines(config: UIConfig, visitor_key: str = "", timeout: float = 5.0) -> list[str]:
    """The engines the configured server has enabled (``GET /v1/engines``), in its order: what the UI
    offers. A name that is not a plain engine name is left out; any failure is a ServerError."""
    key = config.key_for(visitor_key)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = config.server_url.rstrip("/") + "/v1/engines"
    try:
        response = httpx.get(
            url,
            headers=headers,
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,  # the key goes to the configured server only, as for a question
            trust_env=False,
        )
    except httpx.HTTPError as exc:
        raise ServerError(f"the server's engines could not be listed ({type(exc).__name__})") from exc
    if response.status_code != 200:
        raise ServerError(f"the server's engines could not be listed (HTTP {response.status_code})")
    try:
        enabled = response.json()["enabled"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ServerError("the server's engines could not be listed (an unexpected reply)") from exc
    if not isinstance(enabled, list):
        raise ServerError("the server's engines could not be listed (an unexpected reply)")
    names = [name for name in enabled if isinstance(name, str) and _ENGINE_NAME.fullmatch(name)]
    return list(dict.fromkeys(names))


def refusal(status: int, response: httpx.Response, config: UIConfig) -> ServerError:
    """What to tell the visitor about a reply that is not the event stream. Only this server's own
    reasons for a bad question (413, 422) are repeated, cut short; no other body is ever shown."""
    if status == 401:
        where = (
            "enter your key in the sidebar" if config.visitor_keys else "its operator sets MINDSEARCH_API_KEY"
        )
        return ServerError(f"the server needs an API key: {where}")
    if status == 404:
        return SessionLost("the server does not know this conversation; your next question starts a new one")
    if status in (413, 422):
        return ServerError(f"the server refused the question: {_reason(response)}")
    if status == 503:
        return ServerError("the server is busy; try again shortly")
    return ServerError(f"the server refused the question (HTTP {status})")


def _reason(response: httpx.Response) -> str:
    try:
        data = response.json()
        message = data["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return "no reason given"
    text = str(message)
    return text if len(text) <= 300 else text[:297] + "..."
