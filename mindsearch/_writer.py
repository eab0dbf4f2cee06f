"""The final answer: written from the node answers, streamed, its citations checked and renumbered.

Node answers cite with numbers local to each node. For the writer they are rewritten to one shared
provisional numbering (by source); the writer's own markers then go through a ``CitationStream`` whose
registry numbers sources in order of first use in the final answer, so the reader sees 1..N.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

from ._graph import Node, NodeState
from ._prompts import render
from ._searcher import NodeResult
from ._text import quoted, similarity
from .citations import CitationStream, Dropped, Registry, Source, renumber
from .llm.base import ChatModel
from .settings import Settings


@dataclass
class Draft:
    """What the writer is given: node answers under one provisional numbering, and those sources."""

    answers: list[tuple[Node, str]]
    sources: dict[int, Source]


def pool(nodes: list[Node], results: dict[str, NodeResult], run_sources: dict[str, Source]) -> Draft:
    provisional: dict[str, int] = {}
    sources: dict[int, Source] = {}
    answers = []
    for node in nodes:
        result = results.get(node.id)
        if node.state is not NodeState.DONE or result is None:
            continue
        mapping = {}
        for local, source in enumerate(result.sources, start=1):
            if source.key not in provisional:
                provisional[source.key] = len(provisional) + 1
                sources[provisional[source.key]] = run_sources.get(source.key, source)
            mapping[local] = provisional[source.key]
        answers.append((node, renumber(node.answer, mapping)))
    return Draft(answers, sources)


class Writer:
    def __init__(
        self,
        model: ChatModel,
        settings: Settings,
        *,
        style: Literal["chat", "base"],
        language: Literal["en", "zh"],
        on_drop: Callable[[Dropped], None],
    ) -> None:
        self.model = model
        self.settings = settings
        self.style = style
        self.language = language
        self.on_drop = on_drop
        self.registry = Registry()

    async def write(
        self, question: str, draft: Draft, history: str, failures: list[str]
    ) -> AsyncIterator[str]:
        """Yield the answer text piece by piece; ``self.registry`` holds the references afterwards."""
        if not draft.answers:  # why is in the error events; the answer says it plainly, in its language
            yield not_found(self.language)
            return
        async for text in self.checked(self._pieces(question, draft, history), draft, question):
            yield text

    async def checked(
        self, pieces: AsyncIterator[str], draft: Draft, question: str = ""
    ) -> AsyncIterator[str]:
        """Pass model text through the citation checks; numbers come from ``self.registry``.

        If the model fails mid-stream, the sentence held back for checking is still given (checked)
        before the error goes on: text the reader was about to see is never lost.
        """
        stream = CitationStream(
            draft.sources,
            self.registry,
            min_support=self.settings.citation_min_support,
            attach_support=self.settings.citation_attach_support,
            on_drop=self.on_drop,
            question=question,
        )
        try:
            async for piece in pieces:
                text = stream.feed(piece)
                if text:
                    yield text
        except Exception:
            tail = stream.finish()
            if tail:
                yield tail
            raise
        tail = stream.finish()
        if tail:
            yield tail

    async def _pieces(self, question: str, draft: Draft, history: str) -> AsyncIterator[str]:
        if (
            len(draft.answers) == 1
            and not history
            and similarity(draft.answers[0][0].question, question) >= 0.9
        ):
            # The one sub-question was the question itself: its cited answer is the answer.
            for word in _words(draft.answers[0][1]):
                yield word
            return
        answers = "\n".join(f"- {node.question} {quoted(answer)}" for node, answer in draft.answers)
        messages = render(
            "writer",
            style=self.style,
            language=self.language,
            question=question,
            answers=answers,
            history=history,
        )
        stop = ["\n"] if self.style == "base" else None  # the few-shot answer is one line
        async for piece in self.model.stream(messages, stop=stop, max_tokens=self.settings.max_tokens):
            yield piece


def _words(text: str) -> list[str]:
    out, current = [], ""
    for char in text:
        current += char
        if char.isspace():
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return out


def history_text(history: list[tuple[str, str]] | None, style: str, language: str) -> str:
    """Earlier turns of a conversation, for the planner and the writer."""
    if not history:
        return ""
    lines = [f"Q: {q}\nA: {a}" for q, a in history[-4:]]
    return render("history", style="common", language=language, turns="\n".join(lines))[0].content  # type: ignore[arg-type]


def not_found(language: Literal["en", "zh"]) -> str:
    """What the answer says when the sources read do not answer the question."""
    return render("no_answer", style="common", language=language)[0].content.strip()
