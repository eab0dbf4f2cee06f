"""One sub-question: queries -> every engine at once -> merge -> fetch -> extract -> passages -> cited answer.

Failures stay inside the node: an engine that fails is reported once and skipped, a page that cannot be
read falls back to its search snippet, and the node answers from whatever remains.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from . import events as ev
from .citations import CitationStream, Registry, Source, strip_markers
from .graph import Node
from .llm.base import ChatModel, LLMError, extract_json
from .prompts import render
from .search.base import SearchEngine, SearchError, SearchHit
from .settings import Settings
from .text import BM25, chunk, quoted, similarity, split_sentences
from .web.cache import Cache
from .web.extract import Extractor
from .web.fetch import BlockedURL, Fetcher, FetchError

Emit = Callable[[ev.Event], None]


class QueryList(BaseModel):
    """The searcher's structured reply: 1-3 search queries."""

    queries: list[str] = Field(min_length=1, max_length=3)


@dataclass
class RunContext:
    """What every node of one run shares."""

    settings: Settings
    model: ChatModel
    engines: list[SearchEngine]
    fetcher: Fetcher
    extractor: Extractor
    cache: Cache
    style: Literal["chat", "base"]
    language: Literal["en", "zh"]
    emit: Emit
    pages_left: int = 0
    failed_engines: set[str] = field(default_factory=set)
    sources: dict[str, Source] = field(default_factory=dict)  # every source read in this run, by key


@dataclass
class NodeResult:
    answer: str
    references: list[ev.Reference]
    sources: list[Source]


@dataclass
class _Document:
    hit: SearchHit
    title: str
    text: str


class Searcher:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings

    async def run(self, node: Node, parents: list[Node]) -> NodeResult:
        node.question = resolve_references(node.question, parents)
        context = parent_context(parents, self.ctx.style, self.ctx.language)
        queries = await self.write_queries(node, context)
        self.ctx.emit(ev.Queries(node_id=node.id, queries=queries))
        hits = await self.search_all(node, queries)
        documents = await self.read(node, hits)
        sources = self.select_passages(node, queries, documents)
        self.ctx.emit(
            ev.Sources(
                node_id=node.id,
                references=[ev.Reference(n=i + 1, title=s.title, url=s.url) for i, s in enumerate(sources)],
            )
        )
        return await self.answer(node, context, sources)

    # -- queries -----------------------------------------------------------------------------------
    async def write_queries(self, node: Node, context: str) -> list[str]:
        limit = self.settings.queries_per_node
        messages = render(
            "queries",
            style=self.ctx.style,
            language=self.ctx.language,
            question=node.question,
            context=context,
            max_queries=str(limit),
        )
        written: list[str] = []
        try:
            reply = await self.ctx.model.complete(messages, schema=QueryList, max_tokens=160)
            written = [q.strip() for q in QueryList.model_validate(extract_json(reply)).queries if q.strip()]
        except (LLMError, ValueError, ValidationError) as exc:
            self.ctx.emit(
                ev.Error(
                    stage="search",
                    node_id=node.id,
                    message=f"query writing failed, searching the "
                    f"sub-question itself: {str(exc).splitlines()[0][:200]}",
                )
            )
        # A small base model writes poor queries: the sub-question itself always goes first for it.
        queries = [node.question, *written] if self.ctx.style == "base" or not written else written
        unique: list[str] = []
        for query in queries:
            if query and all(similarity(query, seen) < 0.9 for seen in unique):
                unique.append(query[:300])
        return unique[:limit]

    # -- search ------------------------------------------------------------------------------------
    async def search_all(self, node: Node, queries: list[str]) -> list[SearchHit]:
        engines = [e for e in self.ctx.engines if e.name not in self.ctx.failed_engines]
        jobs = [(query, engine) for query in queries for engine in engines]
        results = await asyncio.gather(*(self._search_one(node, q, e) for q, e in jobs))
        # reciprocal-rank fusion over every (query, engine) list, deduped by normalised URL
        scores: dict[str, float] = {}
        best: dict[str, SearchHit] = {}
        for hits in results:
            for rank, hit in enumerate(hits):
                scores[hit.key] = scores.get(hit.key, 0.0) + 1.0 / (60 + rank)
                best.setdefault(hit.key, hit)
        ordered = sorted(scores, key=lambda key: -scores[key])
        return [best[key] for key in ordered]

    async def _search_one(self, node: Node, query: str, engine: SearchEngine) -> list[SearchHit]:
        cache_key = f"{engine.name}\x00{query}\x00{self.settings.results_per_query}"
        cached = self.ctx.cache.get("search", cache_key) if engine.is_web else None
        if cached is not None:
            hits = [SearchHit(**row) for row in cached]
        else:
            try:
                hits = await asyncio.wait_for(
                    engine.search(query, limit=self.settings.results_per_query), self.settings.search_timeout
                )
            except Exception as exc:  # SearchError, a timeout, or a bug in an engine: this engine is out
                if isinstance(exc, asyncio.TimeoutError) or not str(exc):
                    message = f"{engine.name}: no answer within {self.settings.search_timeout:g} s"
                elif isinstance(exc, SearchError):
                    message = str(exc)
                else:
                    message = f"{engine.name}: {type(exc).__name__}: {exc}"
                message = message if len(message) <= 300 else message[:297] + "..."
                if engine.name not in self.ctx.failed_engines:
                    self.ctx.failed_engines.add(engine.name)
                    others = [e.name for e in self.ctx.engines if e.name not in self.ctx.failed_engines]
                    rest = f"; going on with {', '.join(others)}" if others else "; no engine is left"
                    self.ctx.emit(ev.Error(stage="search", node_id=node.id, message=message + rest))
                return []
            if engine.is_web:
                self.ctx.cache.put("search", cache_key, [hit.__dict__ for hit in hits])
        self.ctx.emit(
            ev.SearchResults(
                node_id=node.id,
                query=query,
                hits=[
                    ev.Hit(url=h.url, title=h.title, snippet=h.snippet[:300], engine=h.engine) for h in hits
                ],
            )
        )
        return hits

    # -- fetch and extract -------------------------------------------------------------------------
    async def read(self, node: Node, hits: list[SearchHit]) -> list[_Document]:
        local = [h for h in hits if h.text is not None]
        web = [h for h in hits if h.text is None]
        budget = min(self.settings.pages_per_node, self.ctx.pages_left)
        to_fetch, rest = web[:budget], web[budget:]
        self.ctx.pages_left -= len(to_fetch)
        fetched = await asyncio.gather(*(self._read_page(node, hit) for hit in to_fetch))
        documents = [_Document(h, h.title, h.text or "") for h in local]
        documents += [doc for doc in fetched if doc is not None]
        # pages not fetched (over budget or failed) still contribute their snippets
        read_keys = {doc.hit.key for doc in documents}
        documents += [
            _Document(h, h.title, h.snippet)
            for h in [*to_fetch, *rest]
            if h.key not in read_keys and h.snippet
        ]
        return documents

    async def _read_page(self, node: Node, hit: SearchHit) -> _Document | None:
        cached = self.ctx.cache.get("page", hit.key)
        if cached is not None and "error" in cached:
            self.ctx.emit(
                ev.PageRead(
                    node_id=node.id,
                    url=hit.url,
                    title=hit.title,
                    ok=False,
                    cached=True,
                    error=cached["error"],
                )
            )
            return None
        if cached is not None:
            self.ctx.emit(
                ev.PageRead(
                    node_id=node.id,
                    url=hit.url,
                    title=cached["title"],
                    chars=len(cached["text"]),
                    cached=True,
                )
            )
            return _Document(hit, cached["title"], cached["text"])
        try:
            page = await self.ctx.fetcher.fetch(hit.url)
        except (FetchError, BlockedURL) as exc:
            self._unreadable(node, hit, str(exc))
            return None
        try:
            extracted = await asyncio.to_thread(self.ctx.extractor.extract, page.text, page.final_url)
        except Exception as exc:  # a parser bug on one page must not fail the node
            self._unreadable(node, hit, f"could not extract the text: {type(exc).__name__}: {exc}")
            return None
        title = extracted.title or hit.title
        if not extracted.text.strip():
            self._unreadable(node, hit, "no main text")
            return None
        self.ctx.cache.put("page", hit.key, {"title": title, "text": extracted.text})
        self.ctx.emit(ev.PageRead(node_id=node.id, url=hit.url, title=title, chars=len(extracted.text)))
        return _Document(hit, title, extracted.text)

    def _unreadable(self, node: Node, hit: SearchHit, error: str) -> None:
        self.ctx.cache.put("page", hit.key, {"error": error}, ttl=self.settings.failure_ttl)
        self.ctx.emit(ev.PageRead(node_id=node.id, url=hit.url, title=hit.title, ok=False, error=error))

    # -- passages ----------------------------------------------------------------------------------
    def select_passages(self, node: Node, queries: list[str], documents: list[_Document]) -> list[Source]:
        """The passages most relevant to the sub-question, grouped by source, best source first."""
        candidates: list[tuple[_Document, str]] = []
        for doc in documents:
            for passage in chunk(doc.text, self.settings.passage_chars):
                candidates.append((doc, passage))
        if not candidates:
            return []
        ranker = BM25(f"{doc.title}. {passage}" for doc, passage in candidates)
        query = " ".join([node.question, *queries])
        scores = ranker.scores(query)
        order = sorted(range(len(candidates)), key=lambda i: -scores[i])
        chosen: dict[str, Source] = {}
        per_source: dict[str, int] = {}
        taken = 0
        for i in order:
            if taken >= self.settings.passages_per_node or (scores[i] <= 0 and taken > 0):
                break
            doc, passage = candidates[i]
            if per_source.get(doc.hit.key, 0) >= 2:
                continue
            per_source[doc.hit.key] = per_source.get(doc.hit.key, 0) + 1
            source = chosen.get(doc.hit.key)
            if source is None:
                source = Source(key=doc.hit.key, title=doc.title or doc.hit.title, url=doc.hit.url)
                chosen[doc.hit.key] = source
            source.passages.append(passage)
            taken += 1
        return list(chosen.values())

    # -- answer ------------------------------------------------------------------------------------
    async def answer(self, node: Node, context: str, sources: list[Source]) -> NodeResult:
        if not sources:
            raise NodeFailed("no search result could be read for this sub-question")
        numbered = {i + 1: source for i, source in enumerate(sources)}
        passages = "\n".join(
            f"[{n}] {quoted(source.title)}: {quoted(' ... '.join(source.passages))}"
            for n, source in numbered.items()
        )
        messages = render(
            "searcher",
            style=self.ctx.style,
            language=self.ctx.language,
            question=node.question,
            context=context,
            passages=passages,
        )
        registry = Registry()
        stream = CitationStream(
            numbered,
            registry,
            min_support=self.settings.citation_min_support,
            attach_support=self.settings.citation_attach_support,
            on_drop=lambda d: self.ctx.emit(
                ev.CitationDropped(node_id=node.id, marker=d.marker, reason=d.reason)
            ),  # type: ignore[arg-type]
        )
        # a base model's few-shot answer is one line; what follows is the model inventing the next example
        stop = ["\n"] if self.ctx.style == "base" else None
        async for piece in self.ctx.model.stream(messages, stop=stop, max_tokens=self.settings.max_tokens):
            text = stream.feed(piece)
            if text:
                self.ctx.emit(ev.NodeAnswerDelta(node_id=node.id, text=text))
        tail = stream.finish()
        if tail:
            self.ctx.emit(ev.NodeAnswerDelta(node_id=node.id, text=tail))
        answer = stream.text.strip()
        if not strip_markers(answer).strip():
            raise NodeFailed("the model gave an empty answer")
        # every source the node read is kept with the node, cited or not, for the writer's checks
        for source in sources:
            pooled = self.ctx.sources.setdefault(source.key, Source(source.key, source.title, source.url))
            for passage in source.passages:
                if passage not in pooled.passages:
                    pooled.passages.append(passage)
        return NodeResult(answer, registry.references(), registry.sources)


class NodeFailed(RuntimeError):
    """The node could not produce an answer; the message says why."""


def resolve_references(question: str, parents: list[Node]) -> str:
    """Replace ``#k`` (MuSiQue-style decompositions: the answer of sub-question ``qk``) with that answer."""
    answers = {p.id: first_sentence(strip_markers(p.answer)) for p in parents if p.answer}

    def replace(match: re.Match[str]) -> str:
        return answers.get(f"q{match.group(1)}", match.group(0))

    return re.sub(r"#(\d+)", replace, question)


def first_sentence(text: str) -> str:
    sentences = split_sentences(text)
    return sentences[0].rstrip(".") if sentences else text


def parent_context(parents: list[Node], style: Literal["chat", "base"], language: Literal["en", "zh"]) -> str:
    """The answers of a node's parents, as the prompt file ``context`` frames them."""
    if not parents:
        return ""
    lines = []
    for parent in parents:
        answer = strip_markers(parent.answer).strip() or (f"({parent.error})" if parent.error else "(-)")
        lines.append(f"- {parent.question} {quoted(answer)}")
    return render("context", style=style, language=language, facts="\n".join(lines))[0].content
