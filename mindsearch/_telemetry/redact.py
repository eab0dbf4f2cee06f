"""What may be written down about a run: text without secrets, URLs without user info or query.

Error text comes from upstream servers (an LLM server's 401 echoes the key it was sent), from model
replies and from pages. Before any of it reaches a client, a log line or a span, the known secrets (the
server's keys, the LLM and engine keys: ``remember``), key-like words, and URLs' user info, query and
fragment are taken out.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk|key|tok)-[A-Za-z0-9_\-*.]{6,}")
# "Bearer abc...", "api_key=abc...", "token: abc...": the value goes; plain words after them are prose
# ("a bearer token", "API key provided") and stay
_PROSE = (
    r"(?:token|tokens|key|keys|header|required|missing|invalid|expired|provided|is|was|not|the|a|an|for)\b"
)
_CREDENTIAL_WORDS = re.compile(
    rf"(?i)\b(bearer|api[_ -]?key|token|password|secret)(\s*[:=]\s*|\s+)(?!{_PROSE}|<)[^\s,;]+"
)
MIN_SECRET = 4  # shorter "secrets" are common words: replacing them would garble every line

_known: set[str] = set()
_lock = threading.Lock()


def remember(secrets: Iterable[str | None]) -> None:
    """Secrets every later ``redact`` takes out (keys from the settings; called once per server/command)."""
    with _lock:
        _known.update(secret for secret in secrets if secret and len(secret) >= MIN_SECRET)


def known() -> list[str]:
    with _lock:
        return sorted(_known, key=len, reverse=True)


def drop_known(text: str) -> str:
    """Text without the secrets ``remember``ed (and nothing else changed: safe inside JSON)."""
    for secret in known():
        text = text.replace(secret, "[redacted]")
    return text


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """Text without the secrets it may hold: the given ones (by default those ``remember``ed), key-like
    words, and URLs' user info, query and fragment (``http://user:pw@host/v1?key=x`` becomes
    ``http://host/v1``)."""
    for secret in known() if secrets is None else secrets:
        if len(secret) >= MIN_SECRET:
            text = text.replace(secret, "[redacted]")
    text = _URL_IN_TEXT.sub(lambda match: bare_url(match.group()), text)
    text = _KEY_LIKE.sub("[redacted]", text)
    return _CREDENTIAL_WORDS.sub(lambda m: f"{m.group(1)} [redacted]", text)


def bare_url(url: str) -> str:
    """``url`` without user info, query and fragment: what a log may say of an address."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "[url]"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def host_of(url: str) -> str:
    """The host (and port, when one is given) of ``url``; ``""`` when it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    host = parts.hostname or ""
    return f"{host}:{port}" if host and port else host


def brief(text: str, limit: int = 200) -> str:
    """A failure's reason for a log line or a span: one line, redacted, at most ``limit`` characters."""
    text = " ".join(redact(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
