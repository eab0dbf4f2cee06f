"""One sub-question: queries -> every engine at once -> merge -> fetch -> extract -> passages -> cited answer.

Failures stay inside the node: an engine that fails is reported once and skipped, a page that cannot be
read falls back to its search snippet, and the node answers from whatever remains.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from . import _dense as dense
from . import _telemetry as telemetry
from . import events as ev
from ._errors import MindSearchError
from ._followup import follow_up_queries
from ._graph import Node
from ._prompts import echoes_examples, render
from ._short_answer import ShortAnswerLine, guess
from ._store import PageCache
from ._text import BM25, chunk, quoted, similarity, tokens
from .citations import CitationStream, Registry, Source, sentences, strip_markers
from .citations.support import is_non_answer
from .llm.base import ChatModel, ContextLengthError, LLMError, ReplyTruncated, extract_json
from .search.base import SearchEngine, SearchError, SearchHit, SearchScope, scope_for, scope_note
from .search.breaker import CircuitBreaker, breaker_for
from .settings import Settings
from .web.coalesce import Coalescer
from .web.cpu import run_cpu
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
    cache: PageCache
    style: Literal["chat", "base"]
    language: Literal["en", "zh"]
    emit: Emit
    pages_left: int = 0
    sources: dict[str, Source] = field(default_factory=dict)  # every source read in this run, by key
    # sibling nodes share searches and page reads: one request, and one page-budget unit, for both
    searches: Coalescer[tuple[str, str, int], _Searched] = field(default_factory=Coalescer)
    pages: Coalescer[str, _Page] = field(default_factory=Coalescer)  # every page read in this run, by key
    pages_taken: set[str] = field(default_factory=set)  # pages counted against ``pages_left``
    engines_reported: set[str] = field(default_factory=set)  # engines whose failure the run has told
    engines_noted: set[str] = field(default_factory=set)  # engines that said they cannot honour the scope
    # each node's best passages (title, text), for the follow-up queries of the nodes that depend on it
    best_passages: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


@dataclass
class NodeResult:
    answer: str
    references: list[ev.Reference]
    sources: list[Source]
    short_answer: str = ""  # a few words, no citations: what dependent sub-questions are given
    truncated: bool = False  # the model stopped at its token limit: the answer may be cut short


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
        rewritten = resolve_references(node.question, parents)
        if rewritten != node.question:
            self.ctx.emit(ev.NodeRewritten(node_id=node.id, question=rewritten, was=node.question))
            node.question = rewritten
        context = parent_context(parents, self.ctx.style, self.ctx.language)
        queries = await self.write_queries(node, context)
        if self.settings.follow_up_rounds:  # searching with a parent's answer is iterative retrieval too
            queries = with_parent_answers(queries, node.question, parents)
        self.ctx.emit(ev.Queries(node_id=node.id, queries=queries))
        sources = await self.retrieve(node, queries, parents)
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

    # -- retrieval: search, read, follow up, rank ------------------------------------------------------
    async def retrieve(self, node: Node, queries: list[str], parents: Sequence[Node] = ()) -> list[Source]:
        """The passages shown to the model: the queries' hits read, then up to ``follow_up_rounds``
        rounds of follow-up queries built from the best passages so far (and the parents' best
        passages), with no model call; every bound is a setting."""
        s = self.settings
        documents = await self.read(node, await self.search_all(node, queries))
        asked = list(queries)
        followed: list[str] = []
        parent_passages = [p for parent in parents for p in self.ctx.best_passages.get(parent.id, [])[:2]]
        for _round in range(s.follow_up_rounds):
            ranked = await run_cpu(s.cpu_threads, self._ranked, node.question, queries, documents, followed)
            best = [(doc.title or doc.hit.title, passage) for doc, passage in ranked[: s.follow_up_passages]]
            follow = follow_up_queries(node.question, [*parent_passages, *best], asked, s.follow_up_queries)
            parent_passages = []  # the parents' names are followed once
            if not follow:
                break
            asked += follow
            followed += follow
            self.ctx.emit(ev.Queries(node_id=node.id, queries=asked))
            known = {doc.hit.key for doc in documents}
            fresh = [hit for hit in await self.search_all(node, follow) if hit.key not in known]
            documents += await self.read(node, fresh, pages=s.follow_up_pages)
        sources = await self.select_passages(node, queries, documents, followed)
        self.ctx.best_passages[node.id] = [(src.title, p) for src in sources for p in src.passages[:1]]
        return sources

    # -- search ------------------------------------------------------------------------------------
    async def search_all(self, node: Node, queries: list[str]) -> list[SearchHit]:
        jobs = [(query, engine) for query in queries for engine in self.ctx.engines]
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
        limit = self.settings.results_per_query
        scope = self._scope(node, engine)
        cache_key = f"{engine.name}\x00{query}\x00{limit}{scope.key(engine)}"
        cached = await self.ctx.cache.lookup("search", cache_key) if engine.is_web else None
        if cached is not None:
            hits = [SearchHit(**row) for row in cached]
        else:
            # the same query to the same engine from sibling nodes is asked once; failures are not kept,
            # so a later node asks again (when the engine's breaker lets it)
            searched, _shared = await self.ctx.searches.get(
                (engine.name, query + scope.key(engine), limit),
                lambda: self._ask_engine(engine, query, cache_key, scope),
                keep=lambda searched: searched.error is None,
            )
            if searched.error is not None:
                self._engine_failed(node, engine, searched.error)
                return []
            hits = searched.hits
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
    async def read(self, node: Node, hits: list[SearchHit], pages: int | None = None) -> list[_Document]:
        """The node's documents: local ones as they are, web pages fetched within the page budgets
        (``pages`` at most, by default ``pages_per_node``)."""
        local = [h for h in hits if h.text is not None]
        web = [h for h in hits if h.text is None]
        to_fetch: list[SearchHit] = []
        limit = self.settings.pages_per_node if pages is None else pages
        for hit in web:
            if len(to_fetch) >= limit:
                break
            # a page another node of the run has read (or is reading) is shared, and costs no budget
            if hit.key not in self.ctx.pages_taken:
                if self.ctx.pages_left <= 0:
                    continue
                self.ctx.pages_taken.add(hit.key)
                self.ctx.pages_left -= 1
            to_fetch.append(hit)
        fetched = await asyncio.gather(*(self._read_page(node, hit) for hit in to_fetch))
        documents = [_Document(h, h.title, h.text or "") for h in local]
        documents += [doc for doc in fetched if doc is not None]
        # pages not fetched (over budget or failed) still contribute their snippets
        read_keys = {doc.hit.key for doc in documents}
        documents += [_Document(h, h.title, h.snippet) for h in web if h.key not in read_keys and h.snippet]
        return documents

    async def _read_page(self, node: Node, hit: SearchHit) -> _Document | None:
        page, shared = await self.ctx.pages.get(hit.key, lambda: self._load_page(hit))
        if page.error is not None:
            self.ctx.emit(
                ev.PageRead(
                    node_id=node.id,
                    url=hit.url,
                    title=hit.title,
                    ok=False,
                    cached=page.cached or shared,
                    error=page.error,
                )
            )
            return None
        self.ctx.emit(
            ev.PageRead(
                node_id=node.id,
                url=hit.url,
                title=page.title,
                chars=len(page.text),
                cached=page.cached or shared,  # another node of the run fetched it
            )
        )
        return _Document(hit, page.title, page.text)

    async def _unreadable(self, hit: SearchHit, error: str) -> _Page:
        await self.ctx.cache.store("page", hit.key, {"error": error}, ttl=self.settings.failure_ttl)
        return _Page(hit.title, "", error=error)

    # -- passages ----------------------------------------------------------------------------------
    async def select_passages(
        self, node: Node, queries: list[str], documents: list[_Document], follow: Sequence[str] = ()
    ) -> list[Source]:
        """The passages most relevant to the sub-question, grouped by source, best source first.

        Chunking and BM25 over a few MB of text take a while: they run in a worker thread, so other
        nodes' streams are not stalled.
        """
        return await run_cpu(self.settings.cpu_threads, self._rank, node.question, queries, documents, follow)

    def _rank(
        self, question: str, queries: list[str], documents: list[_Document], follow: Sequence[str] = ()
    ) -> list[Source]:
        """The best passages, at most two per source and ``passages_per_node`` in all, grouped by
        source, best source first."""
        chosen: dict[str, Source] = {}
        per_source: dict[str, int] = {}
        taken = 0
        for doc, passage in self._ranked(question, queries, documents, follow):
            if taken >= self.settings.passages_per_node:
                break
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

    def _ranked(
        self, question: str, queries: list[str], documents: list[_Document], follow: Sequence[str] = ()
    ) -> list[tuple[_Document, str]]:
        """Every passage of every document (each cut at ``max_page_chars``), best first: BM25 against the
        sub-question and its queries, fused by reciprocal rank with the dense model's order of BM25's
        best ``dense_candidates`` when hybrid ranking is on. Passages no query word matches come
        after the others (the first of them only when nothing matches at all)."""
        candidates: list[tuple[_Document, str]] = []
        for doc in documents:
            for passage in chunk(doc.text[: self.settings.max_page_chars], self.settings.passage_chars):
                candidates.append((doc, passage))
        if not candidates:
            return []
        texts = [f"{doc.title}. {passage}" for doc, passage in candidates]
        bm25 = BM25(texts)
        scores = bm25.scores(" ".join([question, *queries, *follow]))
        order = sorted(range(len(candidates)), key=lambda i: -scores[i])
        matched = [i for i in order if scores[i] > 0] or order[:1]
        model = dense.embedder(self.settings.hybrid_ranking)
        if model is not None and len(matched) > 1:
            pool = matched[: self.settings.dense_candidates]
            by_meaning = [pool[i] for i in dense.dense_order(model, question, [texts[i] for i in pool])]
            matched = dense.rrf([pool, by_meaning]) + matched[len(pool) :]
        if follow:
            # a follow-up query's best passage is what the next hop needs, though the sub-question's
            # words rank it low: each gets a place right after the first half of what is shown
            head = matched[: max(1, self.settings.passages_per_node // 2)]
            for query in follow:
                own = bm25.scores(query)
                best = max(range(len(candidates)), key=lambda i: own[i])
                if own[best] > 0 and best not in head:
                    head.append(best)
            matched = head + [i for i in matched if i not in head]
        return [candidates[i] for i in matched]

    def _breaker(self, engine: SearchEngine) -> CircuitBreaker:
        return breaker_for(engine, self.settings.engine_max_failures, self.settings.engine_retry_after)

    def _scope(self, node: Node, engine: SearchEngine) -> SearchScope:
        """The run's time range and search language for this node (an auto language is the
        sub-question's); an engine that cannot honour them says so once per run."""
        s = self.settings
        scope = scope_for(node.question, time_range=s.time_range, search_language=s.search_language)
        missing = scope.unsupported(engine)
        if missing and engine.name not in self.ctx.engines_noted:
            self.ctx.engines_noted.add(engine.name)
            self.ctx.emit(ev.Error(stage="search", node_id=node.id, message=scope_note(engine.name, missing)))
        return scope

    async def _ask_engine(
        self, engine: SearchEngine, query: str, cache_key: str, scope: SearchScope | None = None
    ) -> _Searched:
        """One query to one engine, through its circuit breaker; a failure is an outcome, not a raise."""
        breaker = self._breaker(engine)
        trial = breaker.state == "half-open"
        if not breaker.allow():
            when = (
                f"for {breaker.retry_in():.0f} s"
                if breaker.state == "open"
                else "while a trial query tests it"
            )
            return _Searched(
                error=f"{engine.name}: skipped {when} after {breaker.failures} failures in a row"
            )
        try:
            hits = await telemetry.wait_for_engine(engine.name)(  # asyncio.wait_for, timed and counted
                # only the scope arguments the engine declares: one written before them is called as before
                engine.search(
                    query, limit=self.settings.results_per_query, **(scope or SearchScope()).arguments(engine)
                ),
                self.settings.search_timeout,
            )
        except asyncio.CancelledError:
            if trial:
                breaker.abandoned()
            raise
        except Exception as exc:  # SearchError, a timeout, or a bug in an engine
            breaker.failed()
            if isinstance(exc, asyncio.TimeoutError) or not str(exc):
                message = f"{engine.name}: no answer within {self.settings.search_timeout:g} s"
            elif isinstance(exc, SearchError):
                message = str(exc)
            else:
                message = f"{engine.name}: {type(exc).__name__}: {exc}"
            return _Searched(error=message if len(message) <= 300 else message[:297] + "...")
        breaker.succeeded()
        if engine.is_web:
            await self.ctx.cache.store("search", cache_key, [hit.__dict__ for hit in hits])
        return _Searched(hits)

    def _engine_failed(self, node: Node, engine: SearchEngine, message: str) -> None:
        """Said once per run and engine; the breaker decides whether later nodes still ask it."""
        if engine.name in self.ctx.engines_reported:
            return
        self.ctx.engines_reported.add(engine.name)
        others = [e.name for e in self.ctx.engines if e is not engine and self._breaker(e).state != "open"]
        rest = f"; going on with {', '.join(others)}" if others else "; no other engine is left"
        self.ctx.emit(ev.Error(stage="search", node_id=node.id, message=message + rest))

    async def _load_page(self, hit: SearchHit) -> _Page:
        """Cache, else fetch and extract (in a worker thread); what every node wanting the page shares."""
        cached = await self.ctx.cache.lookup("page", hit.key)
        if cached is not None and "error" in cached:
            return _Page(hit.title, "", error=cached["error"], cached=True)
        if cached is not None:
            return _Page(cached["title"], cached["text"], cached=True)
        try:
            page = await self.ctx.fetcher.fetch(hit.url)
        except (FetchError, BlockedURL) as exc:
            return await self._unreadable(hit, str(exc))
        try:
            extracted = await run_cpu(
                self.settings.cpu_threads, self.ctx.extractor.extract, page.text, page.final_url
            )
        except Exception as exc:  # a parser bug on one page must not fail the node
            return await self._unreadable(hit, f"could not extract the text: {type(exc).__name__}: {exc}")
        title = extracted.title or hit.title
        text = extracted.text[: self.settings.max_page_chars]
        if not text.strip():
            return await self._unreadable(hit, "no main text")
        await self.ctx.cache.store("page", hit.key, {"title": title, "text": text})
        return _Page(title, text)

    # -- answer ------------------------------------------------------------------------------------
    async def answer(self, node: Node, context: str, sources: list[Source]) -> NodeResult:
        """The cited answer. A prompt too long for the model's context is tried once more with half
        the passages; a ``Short answer:`` line the model ends with is taken out of the text."""
        if not sources:
            raise NodeFailed("no search result could be read for this sub-question")
        try:
            return await self._answer(node, context, sources)
        except ContextLengthError as exc:
            fewer = _halve(sources)
            if fewer is None:
                raise NodeFailed(f"the passages do not fit the model's context: {exc}") from exc
            self.ctx.emit(
                ev.Error(
                    stage="node",
                    node_id=node.id,
                    message="the passages did not fit the model's context; trying again with half of them",
                )
            )
            try:
                return await self._answer(node, context, fewer)
            except ContextLengthError as again:
                raise NodeFailed(f"the passages do not fit the model's context: {again}") from again

    async def _answer(self, node: Node, context: str, sources: list[Source]) -> NodeResult:
        if self.ctx.style == "base" and self.ctx.language == "zh":
            sources = _keep(sources, self.settings.base_passages_zh) or sources
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
                ev.CitationDropped(node_id=node.id, marker=d.marker, reason=d.reason)  # type: ignore[arg-type]
            ),
            question=node.question,
        )
        short = ShortAnswerLine()
        # a base model's few-shot answer is one line; what follows is the model inventing the next example
        stop = ["\n"] if self.ctx.style == "base" else None
        truncated = False
        try:
            async for piece in self.ctx.model.stream(
                messages, stop=stop, max_tokens=self.settings.max_tokens
            ):
                text = stream.feed(short.feed(piece))
                if text:
                    self.ctx.emit(ev.NodeAnswerDelta(node_id=node.id, text=text))
        except ReplyTruncated:
            truncated = True  # what was written is kept; the run says the answer is cut
        tail = stream.feed(short.finish()) + stream.finish()
        if tail:
            self.ctx.emit(ev.NodeAnswerDelta(node_id=node.id, text=tail))
        answer = stream.text.strip()
        if not strip_markers(answer).strip():
            raise NodeFailed("the model gave an empty answer")
        copied = echoes_examples(
            answer,
            f"{node.question}\n{context}\n{passages}",
            name="searcher",
            style=self.ctx.style,
            language=self.ctx.language,
        )
        if copied is not None:
            raise NodeFailed(f"the model copied an example from its prompt ({copied}) instead of answering")
        if not registry.references():  # no citation survived the checks: nothing vouches for the answer
            if all(is_non_answer(s) for s in sentences(strip_markers(answer))):
                raise NodeFailed("the sources read do not answer this sub-question")
            raise NodeFailed("no source read supports the model's answer")
        # every source the node read is kept with the node, cited or not, for the writer's checks
        for source in sources:
            pooled = self.ctx.sources.setdefault(source.key, Source(source.key, source.title, source.url))
            for passage in source.passages:
                if passage not in pooled.passages:
                    pooled.passages.append(passage)
        brief = short.short or guess(answer, node.question)
        return NodeResult(answer, registry.references(), registry.sources, brief, truncated)


def _halve(sources: list[Source]) -> list[Source] | None:
    """The better half of the passages (they come best first), or None when one is all there is."""
    count = sum(len(s.passages) for s in sources)
    return _keep(sources, count // 2) if count > 1 else None


def _keep(sources: list[Source], count: int) -> list[Source]:
    """The first ``count`` passages (best first), grouped by source as before."""
    kept: dict[str, Source] = {}
    for source, passage in [(s, p) for s in sources for p in s.passages][:count]:
        kept.setdefault(source.key, Source(source.key, source.title, source.url)).passages.append(passage)
    return list(kept.values())


class NodeFailed(MindSearchError, RuntimeError):
    """The node could not produce an answer; the message says why."""


def resolve_references(question: str, parents: list[Node]) -> str:
    """Replace ``#k`` (MuSiQue-style decompositions: the answer of sub-question ``qk``) with that
    sub-question's short answer; a parent with none leaves ``#k`` as it is."""
    answers = {p.id: p.short_answer for p in parents if p.short_answer}

    def replace(match: re.Match[str]) -> str:
        return answers.get(f"q{match.group(1)}", match.group(0))

    return re.sub(r"#(\d+)", replace, question)


def with_parent_answers(queries: list[str], question: str, parents: Sequence[Node]) -> list[str]:
    """The queries, and for each parent whose short answer the sub-question does not already hold, the
    sub-question with that answer: what a dependent sub-question is about is its parents' answer."""
    out = list(queries)
    held = set(tokens(question))
    for parent in parents:
        answer = parent.short_answer.strip()
        if answer and not set(tokens(answer)) <= held:
            query = f"{answer} {question}"[:300]
            if all(similarity(query, q) < 0.9 for q in out):
                out.append(query)
    return out


def parent_context(parents: list[Node], style: Literal["chat", "base"], language: Literal["en", "zh"]) -> str:
    """The answers of a node's parents, as the prompt file ``context`` frames them."""
    if not parents:
        return ""
    lines = []
    for parent in parents:
        answer = strip_markers(parent.answer).strip() or (f"({parent.error})" if parent.error else "(-)")
        lines.append(f"- {parent.question} {quoted(answer)}")
    return render("context", style=style, language=language, facts="\n".join(lines))[0].content


@dataclass(frozen=True)
class _Searched:
    """One engine's answer to one query: hits, or why there are none."""

    hits: list[SearchHit] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class _Page:
    """One page as the run read it (from the web or the cache), or why it could not be read."""

    title: str
    text: str
    error: str | None = None
    cached: bool = False
