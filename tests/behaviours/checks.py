"""What the reader must see after any run, whatever the model wrote; and each case's own expectations.

Every check returns a list of problems in plain words (empty: fine), so one failing case reports
everything that is wrong with it at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from mindsearch import events as ev
from mindsearch._planner import FELL_BACK
from mindsearch.testing import Chunk, Piece

from .cases import DOCS, Case
from .harness import Outcome, Sent, doc_of_url

# Marker syntax a reader must never see: only "[n]" is shown.
LEAKS = ("[[", "【", "［", "[^", "[citation:", "†", "](http", "<think>", "</think>")
LABELS = ("Short answer", "short answer", "简短答案")
MARKER_RUN = re.compile(r"\[\d+\](?:\s*\[\d+\])*")
SHOWN_MARKER = re.compile(r"\[(\d+)\]")
# every citation style of the corpus, for comparing the words a model wrote with the words shown
ANY_MARKER = re.compile(
    r"\[\[[\d,\s，、\-–]+\]\]"
    r"|\[(?:\^|citation:\s*|source\s*)?[\d,\s，、\-–]+\](?:\((?:https?://|#)(?:[^()\s]|\([^()\s]*\))*\))?"
    r"|【[^】\n]{0,40}】|［[\d,\s，、]+］",
    re.IGNORECASE,
)
# markers joined by "and", a comma or 、 cite together: the joiner is citation syntax, not prose
JOINED = re.compile(
    rf"(?:{ANY_MARKER.pattern})(?:\s*(?:,|，|、|and|&)\s*(?:{ANY_MARKER.pattern}))+", re.IGNORECASE
)
WORD = re.compile(r"[\u3400-\u9fff]|[^\W_\u3400-\u9fff]+")  # a Chinese character is a word
THINK = re.compile(r"<think>.*?</think>|^.*?</think>", re.DOTALL)
SHORT_LINE = re.compile(
    r"^[ \t>*_#-]*(?:short answer|简短答案)[ \t*_]*[:：].*$", re.IGNORECASE | re.MULTILINE
)
# the end of a sentence in a final answer: after the markers that close it
SENTENCE_END = re.compile(r"[.!?](?=[\s*_\"')\u3400-\u9fff]|$)|[。！？]|\n|\|")
_ENGLISH_STOP = frozenset(
    "the a an and are was were is of in on for with from by to that this it its his her who which what "
    "where when born film".split()
)


def reply_text(pieces: Iterable[Piece]) -> str:
    """The content a fake reply carried (no reasoning, no tool calls)."""
    out: list[str] = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
        elif isinstance(piece, Chunk):
            if isinstance(piece.delta.get("content"), str):
                out.append(piece.delta["content"])
        elif isinstance(piece.get("content"), str):
            out.append(piece["content"])
    return "".join(out)


def reasoning_text(pieces: Iterable[Piece]) -> str:
    parts = [p.get("reasoning_content") or p.get("reasoning") or "" for p in pieces if isinstance(p, dict)]
    return "".join(str(p) for p in parts)


def words(text: str, *, short_line: bool = False) -> list[str]:
    """The words of a text as a reader reads them: no think blocks, no markers (of any style)."""
    text = THINK.sub("", text)
    if short_line:
        text = SHORT_LINE.sub("", text)
    return WORD.findall(ANY_MARKER.sub(" ", JOINED.sub(" ", text)))


def cited_after(text: str, fragment: str) -> set[int] | None:
    """The numbers cited for the sentence holding ``fragment``: the markers from its end to the end of
    the sentence (or table cell, or line). None when the fragment is not in the text."""
    start = text.find(fragment)
    if start < 0:
        return None
    rest = text[start + len(fragment) :]
    end = SENTENCE_END.search(rest)
    return {int(n) for n in SHOWN_MARKER.findall(rest[: end.start()] if end else rest)}


def check_text(where: str, text: str, references: list[ev.Reference]) -> list[str]:
    """A shown answer with its references: no leaked syntax, no repeats, numbers 1..N in first use."""
    problems = [f"{where}: leaked {leak!r}: {text!r}" for leak in LEAKS if leak in text]
    problems += [f"{where}: the short-answer label is shown: {text!r}" for label in LABELS if label in text]
    for run in MARKER_RUN.findall(text):
        numbers = SHOWN_MARKER.findall(run)
        if len(numbers) != len(set(numbers)):
            problems.append(f"{where}: a repeated citation {run!r} in {text!r}")
    for line in text.splitlines():
        if line.strip() and not ANY_MARKER.sub("", line).strip():
            problems.append(f"{where}: a line of markers only: {line!r}")
    used = [int(n) for n in SHOWN_MARKER.findall(_without_code(text))]
    first_use = list(dict.fromkeys(used))
    numbering = [ref.n for ref in references]
    if numbering != list(range(1, len(references) + 1)):
        problems.append(f"{where}: references are not numbered 1..N: {numbering}")
    if first_use != list(range(1, len(first_use) + 1)):
        problems.append(f"{where}: citations are not numbered in order of first use: {first_use} in {text!r}")
    if set(first_use) != set(numbering):
        problems.append(f"{where}: cited {sorted(set(first_use))} but the references are {numbering}")
    return problems


def _without_code(text: str) -> str:
    text = re.sub(r"```.*?(?:```|\Z)", "", text, flags=re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def check_sources_fit(where: str, text: str, references: list[ev.Reference]) -> list[str]:
    """Each cited source shares a content word (or, in Chinese, two characters) with its sentence."""
    problems: list[str] = []
    by_number = {ref.n: doc_of_url(ref.url) for ref in references}
    for sentence in re.split(r"(?<=[.!?。！？])\s*|\n", _without_code(text)):
        for n in {int(x) for x in SHOWN_MARKER.findall(sentence)}:
            doc = by_number.get(n)
            if doc not in DOCS:
                problems.append(f"{where}: [{n}] points to no document of the corpus ({doc})")
                continue
            source = DOCS[doc][1].lower()
            plain = SHOWN_MARKER.sub("", sentence).lower()
            keys = {w for w in WORD.findall(plain) if w.isascii() and len(w) > 2 and w not in _ENGLISH_STOP}
            keys |= {plain[i : i + 2] for i in range(len(plain) - 1) if _cjk(plain[i : i + 2])}
            if not any(k in source for k in keys):
                problems.append(f"{where}: [{n}] ({doc}) shares no word with {sentence.strip()!r}")
    return problems


def _cjk(pair: str) -> bool:
    return all("\u4e00" <= c <= "\u9fff" for c in pair)


def check_cites(
    where: str, text: str, references: list[ev.Reference], expected: Iterable[tuple[str, tuple[str, ...]]]
) -> list[str]:
    problems: list[str] = []
    by_number = {ref.n: doc_of_url(ref.url) for ref in references}
    for fragment, docs in expected:
        found = cited_after(text, fragment)
        if found is None:
            problems.append(f"{where}: {fragment!r} is missing from {text!r}")
            continue
        cited = sorted(by_number.get(n, f"[{n}]?") for n in found)
        if cited != sorted(docs):
            problems.append(
                f"{where}: the sentence with {fragment!r} cites {cited or 'nothing'}, expected "
                f"{sorted(docs) or 'nothing'}: {text!r}"
            )
    return problems


def check_outcome(case: Case, outcome: Outcome) -> list[str]:
    """Everything a reader would notice about one run."""
    expect = case.expect
    events = outcome.events
    problems = [f"script: {p}" for p in outcome.log.problems]
    dones = outcome.of(ev.Done)
    if len(dones) != 1 or not isinstance(events[-1], ev.Done):
        return [*problems, f"expected exactly one done, last; got {len(dones)} ({[e.type for e in events]})"]
    done = outcome.done
    streamed = "".join(e.text for e in outcome.of(ev.AnswerDelta)).strip()
    if streamed != done.answer:
        problems.append(f"the streamed answer differs from done.answer: {streamed!r} / {done.answer!r}")
    references = outcome.of(ev.References)
    if len(references) != 1 or references[0].references != done.references:
        problems.append("expected one references event equal to done.references")
    if not done.answer.strip():
        problems.append("the run gave no answer")
    if expect.ok is not None and done.ok is not expect.ok:
        errors = [f"{e.stage}: {e.message}" for e in outcome.of(ev.Error)]
        problems.append(f"done.ok is {done.ok}, expected {expect.ok} (errors: {errors})")

    # -- what the reader sees: the final answer and every node's answer -------------------------------
    problems += check_text("answer", done.answer, done.references)
    problems += check_sources_fit("answer", done.answer, done.references)
    nodes = {e.node_id: e for e in outcome.of(ev.NodeDone)}
    for node_id, node in nodes.items():
        if node.ok:
            problems += check_text(f"node {node_id}", node.answer, node.references)
            problems += check_sources_fit(f"node {node_id}", node.answer, node.references)
        elif not any(node_id == n and want in (node.error or "") for n, want in case.expect.failed):
            problems.append(f"node {node_id} failed: {node.error}")
    shown = {"answer": done.answer, **{f"node {i}": n.answer for i, n in nodes.items()}}
    for sent in outcome.log.sent:
        content = reply_text(sent.pieces)
        thought = reasoning_text(sent.pieces) + "\n".join(THINK.findall(content))
        for line in re.findall(r"[^\n<>]{12,}", thought.replace("</think>", "\n")):
            if line.strip() and any(line.strip() in text for text in shown.values()):
                problems.append(f"reasoning reached the reader: {line.strip()!r}")
    for text in expect.absent:
        problems += [f"{where}: {text!r} is shown: {s!r}" for where, s in shown.items() if text in s]
    for text in expect.contains:
        if text not in done.answer:
            problems.append(f"{text!r} is not in the answer: {done.answer!r}")
    if expect.answer is not None and done.answer != expect.answer:
        problems.append(f"the answer is {done.answer!r}, expected {expect.answer!r}")

    # -- no words lost: the reader sees every word the model wrote, in order ------------------------
    if expect.prose:
        problems += _prose(outcome, nodes, done)

    # -- citations: each sentence cites the document that says it ------------------------------------
    problems += check_cites("answer", done.answer, done.references, expect.cites)
    for node_id, fragment, docs in expect.node_cites:
        node = nodes.get(node_id)
        if node is None:
            problems.append(f"no node_done for {node_id}")
            continue
        problems += check_cites(f"node {node_id}", node.answer, node.references, [(fragment, docs)])
    dropped = outcome.of(ev.CitationDropped)
    for scope, reason, marker in expect.dropped:
        if not any(
            (d.node_id is None) == (scope == "answer") and d.reason == reason and marker in ("", d.marker)
            for d in dropped
        ):
            seen = [(d.node_id, d.reason, d.marker) for d in dropped]
            problems.append(f"no citation_dropped {reason} {marker} in the {scope} (got {seen})")

    # -- the plan and the sub-questions ----------------------------------------------------------------
    problems += _plan(case, outcome)
    for node_id, short in expect.short_answers:
        node = nodes.get(node_id)
        if node is None or node.short_answer != short:
            got = None if node is None else node.short_answer
            problems.append(f"node {node_id}: short_answer is {got!r}, expected {short!r}")
    rewritten = {e.node_id: e for e in outcome.of(ev.NodeRewritten)}
    for node_id, question in expect.rewritten:
        event = rewritten.get(node_id)
        asked = [s.question for s in outcome.log.of("answer")]
        if event is None or event.question != question:
            got = None if event is None else event.question
            problems.append(f"node {node_id}: node_rewritten gives {got!r}, expected {question!r}")
        if question not in asked:
            problems.append(f"no searcher was asked {question!r}; they were asked {asked}")
    return problems


def _prose(outcome: Outcome, nodes: dict[str, ev.NodeDone], done: ev.Done) -> list[str]:
    problems: list[str] = []
    answers: dict[str, Sent] = {}
    for sent in outcome.log.of("answer"):
        answers[sent.question] = sent
    started = {e.node_id: e.question for e in outcome.of(ev.NodeStarted)}
    rewritten = {e.node_id: e.question for e in outcome.of(ev.NodeRewritten)}
    for node_id, node in nodes.items():
        question = rewritten.get(node_id, started.get(node_id, ""))
        sent_answer = answers.get(question)
        if not node.ok or sent_answer is None:
            continue
        wrote = words(reply_text(sent_answer.pieces), short_line=True)
        if words(node.answer) != wrote:
            problems.append(f"node {node_id}: words changed: wrote {wrote}, shown {words(node.answer)}")
    writers = outcome.log.of("write")
    if writers:
        wrote = words(reply_text(writers[-1].pieces))
    elif len([n for n in nodes.values() if n.ok]) == 1:
        wrote = words(next(n.answer for n in nodes.values() if n.ok))
    else:
        return problems
    if words(done.answer) != wrote:
        problems.append(f"answer: words changed: wrote {wrote}, shown {words(done.answer)}")
    return problems


def _plan(case: Case, outcome: Outcome) -> list[str]:
    expect = case.expect
    problems: list[str] = []
    plans = outcome.of(ev.Plan)
    added = [(n.id, n.question, tuple(n.depends_on)) for p in plans for n in p.added]
    unexpected = [e for e in outcome.of(ev.Error) if e.stage not in expect.errors]
    # a plan that fell back to the question itself is a note on the plan event, never an error event
    problems += [f"unexpected error event: {e.stage}: {e.message}" for e in unexpected]
    fallback = [("q1", " ".join(case.question.split()), ())]
    fell_back = bool(plans) and plans[0].note == FELL_BACK
    if expect.fell_back or (expect.plan_or_fallback and fell_back):
        if not fell_back or not plans[0].recovered_from:
            problems.append(f"expected the fallback note with what went wrong, got {[p.note for p in plans]}")
        if added != fallback:
            problems.append(f"after a fallback the question itself must be searched; the plan was {added}")
    else:
        if fell_back:
            problems.append(f"unexpected fallback: {plans[0].recovered_from}")
        if expect.plan is not None and added != list(expect.plan):
            problems.append(f"the plan is {added}, expected {list(expect.plan)}")
    if expect.plan_note and not (plans and expect.plan_note in plans[0].note):
        problems.append(f"the plan's note {[p.note for p in plans]} lacks {expect.plan_note!r}")
    return problems
