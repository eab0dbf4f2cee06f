"""What the chat UI shows of one run, built from the server's events.

No Streamlit here, so it is tested alone.

The UI talks to the REST endpoint only (``POST /v1/search``, server-sent events). Everything that came
from a web page or a model (titles, snippets, answers) is escaped before it reaches Markdown, so a page
cannot inject HTML, images or links; only http(s) URLs become links.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

STATE_COLOURS = {"waiting": "#d0d7de", "running": "#f4c542", "done": "#7cc47f", "failed": "#e5534b"}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")
_MARKER = re.compile(r"\[(\d{1,3})\]")


def escape(text: str) -> str:
    """Markdown-safe text: every character Markdown or HTML would act on is escaped."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text.replace("&", "&amp;"))


def safe_url(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url.replace(")", "%29").replace("(", "%28").replace(" ", "%20")


@dataclass
class NodeView:
    id: str
    question: str
    depends_on: list[str]
    state: str = "waiting"
    queries: list[str] = field(default_factory=list)
    hits: list[dict[str, Any]] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)
    answer: str = ""
    references: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass
class RunView:
    question: str
    status: str = "streaming"  # streaming, done, error
    asked_as: str = ""
    nodes: dict[str, NodeView] = field(default_factory=dict)
    answer: str = ""
    references: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def apply(self, event: dict[str, Any]) -> None:
        """Fold one event (as JSON) into the view."""
        kind = event.get("type")
        node = self.nodes.get(str(event.get("node_id", "")))
        if kind == "run_started":
            self.asked_as = event.get("question", "")
        elif kind == "plan":
            for added in event.get("added", []):
                self.nodes[added["id"]] = NodeView(
                    added["id"], added["question"], list(added.get("depends_on", []))
                )
        elif kind == "node_started" and node:
            node.state = "running"
        elif kind == "queries" and node:
            node.queries = list(event.get("queries", []))
        elif kind == "search_results" and node:
            node.hits.extend(event.get("hits", []))
        elif kind == "page_read" and node:
            node.pages.append(event)
        elif kind == "node_answer_delta" and node:
            node.answer += event.get("text", "")
        elif kind == "node_done" and node:
            node.state = "done" if event.get("ok") else "failed"
            node.answer = event.get("answer", node.answer)
            node.references = list(event.get("references", []))
            node.error = event.get("error")
        elif kind == "answer_delta":
            self.answer += event.get("text", "")
        elif kind == "references":
            self.references = list(event.get("references", []))
        elif kind == "error":
            where = f" ({event['node_id']})" if event.get("node_id") else ""
            self.errors.append(f"{event.get('stage', 'error')}{where}: {event.get('message', '')}")
            if event.get("fatal"):
                self.status = "error"
        elif kind == "done":
            self.answer = event.get("answer", self.answer)
            self.references = list(event.get("references", self.references))
            self.seconds = float(event.get("seconds", 0.0))
            if self.status != "error":
                self.status = "done" if event.get("ok") else "error"

    def fail(self, message: str) -> None:
        self.errors.append(message)
        self.status = "error"

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


def references_markdown(references: list[dict[str, Any]]) -> str:
    lines = []
    for ref in references:
        url = safe_url(str(ref.get("url", "")))
        title = escape(str(ref.get("title", "")) or str(ref.get("url", "")))
        where = f"[{title}]({url})" if url else f"{title} \\- `{escape(str(ref.get('url', '')))}`"
        lines.append(f"{int(ref['n'])}\\. {where}")
    return "  \n".join(lines)


def _dot_label(text: str) -> str:
    text = text if len(text) <= 60 else text[:57] + "..."
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _dot_id(node_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-]", "_", node_id)


# --- talking to the server -----------------------------------------------------------------------------
class ServerError(RuntimeError):
    """The server could not be reached or refused the request; the message is for people."""


def stream_events(
    server: str,
    question: str,
    *,
    session_id: str,
    options: dict[str, Any],
    api_key: str = "",
    timeout: float = 900.0,
) -> Iterator[dict[str, Any]]:
    """The events of one run, read from ``POST /v1/search`` as server-sent events."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    body = {"question": question, "session_id": session_id, "settings": options or None}
    url = server.rstrip("/") + "/v1/search"
    try:
        with httpx.stream(
            "POST", url, json=body, headers=headers, timeout=httpx.Timeout(timeout, connect=5.0)
        ) as response:
            if response.status_code != 200:
                response.read()
                raise ServerError(
                    f"the server refused the question (HTTP {response.status_code}): {_reason(response)}"
                )
            data: list[str] = []
            for line in response.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    yield json.loads("\n".join(data))
                    data = []
    except httpx.ConnectError as exc:
        raise ServerError(
            f"cannot reach the mindsearch server at {server}. Start it with `mindsearch serve` "
            "or set the server URL in the sidebar."
        ) from exc
    except httpx.TimeoutException as exc:
        raise ServerError(f"the server at {server} did not answer in time") from exc
    except httpx.HTTPError as exc:
        raise ServerError(f"the connection to {server} failed: {type(exc).__name__}") from exc


def _reason(response: httpx.Response) -> str:
    try:
        data = response.json()
        return str(data.get("error", {}).get("message") or data)
    except (ValueError, AttributeError):
        return response.text[:200]
