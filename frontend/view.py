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
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import Field

from mindsearch.state import RunState

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
