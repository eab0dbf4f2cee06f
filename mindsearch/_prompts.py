"""Loads prompt templates from ``prompts/<style>/<name>.<lang>.md``; no prompt text lives in code.

A file holds a ``## system`` section (optional) and a ``## user`` section. Placeholders are
``$name`` (``string.Template``), filled once, so text from pages can never add placeholders.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from string import Template
from typing import Literal

from ._errors import MindSearchError
from .llm.base import Message

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
_SECTION = re.compile(r"^## (system|user)\s*$", re.MULTILINE)


class PromptError(MindSearchError, LookupError):
    pass


@functools.cache
def _load(style: str, name: str, language: str) -> tuple[tuple[str, str], ...]:
    path = PROMPTS_DIR / style / f"{name}.{language}.md"
    if not path.exists():
        raise PromptError(f"missing prompt file {path}")
    text = path.read_text(encoding="utf-8")
    parts = _SECTION.split(text)
    sections = []
    for role, body in zip(parts[1::2], parts[2::2], strict=False):
        sections.append((role, body.strip("\n")))
    if not sections:
        sections.append(("user", text.strip("\n")))
    return tuple(sections)


def render(
    name: str, *, style: Literal["chat", "base", "common"], language: Literal["en", "zh"], **values: str
) -> list[Message]:
    """The messages of prompt ``name`` with ``values`` filled in."""
    messages = []
    for role, body in _load(style, name, language):
        try:
            content = Template(body).substitute(values)
        except KeyError as exc:
            raise PromptError(f"prompt {style}/{name}.{language} needs a value for {exc}") from exc
        messages.append(Message(role="system" if role == "system" else "user", content=content))
    return messages


_EXAMPLES = re.compile(r"^\s*examples:\s*(.+?)\s*(?:-->)?\s*$", re.MULTILINE)


@functools.cache
def example_names(name: str, *, style: str, language: str) -> tuple[str, ...]:
    """The invented names a prompt's few-shot examples use (its ``examples:`` comment line).

    A small model that copies an example writes one of them; an answer that names one the sources do
    not is a copy, not an answer.
    """
    path = PROMPTS_DIR / style / f"{name}.{language}.md"
    if not path.exists():
        return ()
    found = _EXAMPLES.search(path.read_text(encoding="utf-8"))
    if found is None:
        return ()
    return tuple(part.strip() for part in found.group(1).split(";") if part.strip())


def echoes_examples(text: str, grounds: str, *, name: str, style: str, language: str) -> str | None:
    """The example name ``text`` repeats although ``grounds`` (question, passages, facts) never says it."""
    for example in example_names(name, style=style, language=language):
        # whole words for Latin names ("Emil" is not in "Emily"); Chinese has no spaces to match
        pattern = re.compile(rf"\b{re.escape(example)}\b" if example.isascii() else re.escape(example), re.I)
        if pattern.search(text) and not pattern.search(grounds):
            return example
    return None
