"""Reading: pages fetched and extracted per minute, and how well the main text is extracted.

    python -m benchmarks.reading          # writes its section of docs/benchmarks.md

Quality: bag-of-lowercased-token F1 of the extracted text against the truth, averaged over pages, on the
181 pages of scrapinghub's article-extraction-benchmark (``articleBody``) and the 41 pages of Mozilla
Readability's tests (``expected.html``), both in ../shared/eval/html. Side by side: mindsearch's
extractor, trafilatura with its defaults, MindSearch's reader (below), the same without its 8,192-character
cut, and resiliparse's main-content extraction.

Throughput: the same 222 pages, served by a child process on 127.0.0.1 with 50 ms added to each response,
read by two readers one after the other, on the same machine in the same run:

- mindsearch's, at default settings (the searcher's own path: ``HttpFetcher`` with its limits, the
  extractor in the shared CPU threads), every page asked for at once;
- MindSearch's, reimplemented from its code (InternLM/MindSearch, default synchronous agent): its
  searchers use lagent's ``WebBrowser`` (mindsearch/agent/__init__.py), whose ``select`` reads the
  chosen pages (at most 4, its docstring says) in a ``ThreadPoolExecutor()``, each with
  ``ContentFetcher.fetch``: ``requests.get(url, timeout=5)``, ``BeautifulSoup(response.content,
  'html.parser').get_text()``, ``re.sub(r'\\n+', '\\n', text)``, then ``content[:8192]``
  (lagent/actions/web_browser.py); the searchers run in ``WebSearchGraph``'s
  ``ThreadPoolExecutor(max_workers=10)`` (mindsearch/agent/graph.py). Here 10 workers each run selects of
  4 pages one after another, with no model call between them (in MindSearch each select waits for one):
  the most its code lets it read at once. Left out: its search calls and the ``TTLCache`` on ``fetch``
  (every URL here is read once, so the cache never hits).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import re
import socket
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import requests
from aiohttp import web
from bs4 import BeautifulSoup

from benchmarks.report import DOC, ROOT, write_section
from mindsearch.settings import Settings
from mindsearch.testing import clean_env
from mindsearch.web.cpu import run_cpu
from mindsearch.web.extract import TrafilaturaExtractor
from mindsearch.web.fetch import FetchError, HttpFetcher

HTML = ROOT.parent / "shared" / "eval" / "html"
MINDSEARCH_CUT = 8192  # lagent WebBrowser.select keeps web_content[:8192]
SELECT = 4  # pages per select ("no more than 4", WebBrowser.select's docstring)
SEARCHERS = 10  # WebSearchGraph's ThreadPoolExecutor(max_workers=10)


def token_f1(predicted: str, truth: str) -> float:
    pred = Counter(re.findall(r"\w+", predicted.lower()))
    gold = Counter(re.findall(r"\w+", truth.lower()))
    same = sum((pred & gold).values())
    if not same:
        return 0.0
    precision, recall = same / sum(pred.values()), same / sum(gold.values())
    return 2 * precision * recall / (precision + recall)


def load_pages(limit: int | None = None) -> dict[str, list[tuple[str, str, str]]]:
    """(name, html, truth) per set; the first ``limit`` pages of each set when given."""
    article = []
    truth = json.loads((HTML / "article_extraction_benchmark" / "ground-truth.json").read_text())
    for sha, record in sorted(truth.items())[:limit]:
        html = gzip.decompress(
            (HTML / "article_extraction_benchmark" / "html" / f"{sha}.html.gz").read_bytes()
        )
        article.append((sha, html.decode("utf-8", "replace"), record["articleBody"]))
    readability = []
    folders = [f for f in sorted((HTML / "readability_test_pages").iterdir()) if (f / "source.html").exists()]
    for folder in folders[:limit]:
        expected = BeautifulSoup((folder / "expected.html").read_text(encoding="utf-8"), "lxml").get_text(" ")
        readability.append((folder.name, (folder / "source.html").read_text(encoding="utf-8"), expected))
    return {"article-extraction-benchmark (181)": article, "readability test pages (41)": readability}


def mindsearch_text(html: str | bytes) -> str:
    """lagent's ContentFetcher.fetch after the download, without WebBrowser.select's cut."""
    return re.sub(r"\n+", "\n", BeautifulSoup(html, "html.parser").get_text())


def extractors() -> dict[str, Callable[[str, str], str]]:
    import trafilatura
    from resiliparse.extract.html2text import extract_plain_text

    ours = TrafilaturaExtractor()
    keep = Settings().max_page_chars
    return {
        "mindsearch (trafilatura, recall mode, bs4 fallback)": lambda html, url: ours.extract(html, url).text[
            :keep
        ],
        "trafilatura defaults": lambda html, url: trafilatura.extract(html, url=url) or "",
        "MindSearch's reader (bs4 html.parser get_text, first 8,192 chars)": lambda html, url: (
            mindsearch_text(html)[:MINDSEARCH_CUT]
        ),
        "the same, whole text (no cut)": lambda html, url: mindsearch_text(html),
        "resiliparse main content": lambda html, url: extract_plain_text(html, main_content=True),
    }


def quality(pages: dict[str, list[tuple[str, str, str]]]) -> dict[str, dict[str, tuple[float, float]]]:
    """F1 and pages/s (one core, extraction only) per extractor and set."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for name, extract in extractors().items():
        out[name] = {}
        for set_name, items in pages.items():
            started = time.perf_counter()
            scores = [
                token_f1(extract(html, f"https://example.org/{page}"), truth) for page, html, truth in items
            ]
            seconds = time.perf_counter() - started
            out[name][set_name] = (statistics.mean(scores), len(items) / seconds)
    return out


# --- throughput ------------------------------------------------------------------------------------
def bodies_of(pages: dict[str, list[tuple[str, str, str]]]) -> dict[str, str]:
    return {f"/{i}": html for i, (_p, html, _t) in enumerate(p for items in pages.values() for p in items)}


async def serve_pages(port: int, latency: float, limit: int | None) -> None:
    """The child: every page on 127.0.0.1:``port``, each response ``latency`` seconds late."""
    bodies = bodies_of(load_pages(limit))

    async def page(request: web.Request) -> web.Response:
        await asyncio.sleep(latency)
        body = bodies.get(request.path)
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(text=body, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def read_mindsearch(base: str, paths: list[str]) -> int:
    """mindsearch's searcher path at default settings; the pages with text."""
    settings = Settings(allow_hosts=["127.0.0.1"])  # loopback is refused otherwise; defaults besides
    fetcher = HttpFetcher.from_settings(settings)
    extractor = TrafilaturaExtractor()

    async def read(path: str) -> bool:
        try:
            page = await fetcher.fetch(base + path)
        except FetchError:
            return False
        extracted = await run_cpu(settings.cpu_threads, extractor.extract, page.text, page.final_url)
        return bool(extracted.text[: settings.max_page_chars].strip())

    try:
        return sum(await asyncio.gather(*(read(path) for path in paths)))
    finally:
        await fetcher.aclose()


def fetch_like_mindsearch(url: str) -> tuple[bool, str]:
    """lagent's ContentFetcher.fetch."""
    try:
        response = requests.get(url, timeout=5)
        response.raise_for_status()
        html = response.content
    except requests.RequestException as exc:
        return False, str(exc)
    return True, mindsearch_text(html)


def select_like_mindsearch(urls: list[str]) -> list[str]:
    """lagent's WebBrowser.select over ``urls``: a ThreadPoolExecutor() each, content cut at 8,192."""
    contents = []
    with ThreadPoolExecutor() as executor:
        futures = [executor.submit(fetch_like_mindsearch, url) for url in urls]
        for future in as_completed(futures):
            ok, content = future.result()
            if ok:
                contents.append(content[:MINDSEARCH_CUT])
    return contents


def read_like_mindsearch(base: str, paths: list[str]) -> int:
    """10 searcher threads (WebSearchGraph's pool), each reading selects of 4 pages one after another."""
    selects = [[base + p for p in paths[i : i + SELECT]] for i in range(0, len(paths), SELECT)]
    with ThreadPoolExecutor(max_workers=SEARCHERS) as graph:
        read = list(graph.map(select_like_mindsearch, selects))
    return sum(1 for contents in read for text in contents if text.strip())


async def throughput(
    pages: dict[str, list[tuple[str, str, str]]], latency: float
) -> dict[str, tuple[int, float, int]]:
    """(pages, seconds, pages with text) per reader, against one child process serving ``pages``."""
    limit = max(len(items) for items in pages.values())
    port = free_port()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.reading",
        "--serve",
        str(port),
        "--latency",
        str(latency),
        "--limit",
        str(limit),
        stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
        env=clean_env(),
    )
    assert child.stdout is not None
    await asyncio.wait_for(child.stdout.readline(), 60)
    base = f"http://127.0.0.1:{port}"
    paths = list(bodies_of(pages))
    out: dict[str, tuple[int, float, int]] = {}
    try:
        started = time.perf_counter()
        ok = await read_mindsearch(base, paths)
        out["mindsearch"] = (len(paths), time.perf_counter() - started, ok)
        started = time.perf_counter()
        ok = await asyncio.to_thread(read_like_mindsearch, base, paths)
        out["MindSearch"] = (len(paths), time.perf_counter() - started, ok)
    finally:
        child.terminate()
        await child.wait()
    return out


def render(
    scores: dict[str, dict[str, tuple[float, float]]],
    speeds: dict[str, tuple[int, float, int]],
    latency: float,
) -> str:
    sets = list(next(iter(scores.values())))
    rows = [
        "| extractor | " + " | ".join(f"F1, {s}" for s in sets) + " | pages/s (one core) |",
        "| --- |" + " --- |" * (len(sets) + 1),
    ]
    for name, per_set in scores.items():
        speed = statistics.mean(v[1] for v in per_set.values())
        rows.append(f"| {name} | " + " | ".join(f"{per_set[s][0]:.3f}" for s in sets) + f" | {speed:.0f} |")
    ours = next(iter(scores.values()))
    quality_met = all(v[0] >= 0.94 for v in ours.values())
    labels = {
        "mindsearch": "mindsearch, default settings (`fetch_per_host` 4, `fetch_concurrency` 16, "
        "`cpu_threads` 2), all pages asked for at once",
        "MindSearch": f"MindSearch's reader, reimplemented ({SEARCHERS} searcher threads x selects of "
        f"{SELECT} pages)",
    }
    speed_rows = ["| reader | pages | with text | seconds | pages/min |", "| --- | --- | --- | --- | --- |"]
    for key, (count, seconds, ok) in speeds.items():
        speed_rows.append(f"| {labels[key]} | {count} | {ok} | {seconds:.1f} | {count / seconds * 60:.0f} |")
    ours_rate = speeds["mindsearch"][0] / speeds["mindsearch"][1] * 60
    theirs_rate = speeds["MindSearch"][0] / speeds["MindSearch"][1] * 60
    return f"""{chr(10).join(rows)}

F1 is computed on the text each reader keeps of a page: mindsearch's extractor output (up to
`max_page_chars`, 200,000 characters), out of which the searcher then ranks passages for the model;
MindSearch's reader output, the first 8,192 characters of BeautifulSoup's `get_text()` with the
`html.parser` parser, which its searcher gives to the model as it is (lagent's `ContentFetcher.fetch` and
`WebBrowser.select`, reimplemented; the row without the cut shows what the cut costs). pages/s is
extraction alone, one page after another on one core.

Throughput: the same {speeds["mindsearch"][0]} pages served by a child process on 127.0.0.1, {latency * 1000:.0f} ms
added to each response, every page on one host, read by each reader in turn in this process (2 cores,
shared with the page server):

{chr(10).join(speed_rows)}

Same pages, same added latency, same machine, same run: mindsearch reads **{ours_rate:.0f} pages/min**, MindSearch's
reader, as reimplemented, **{theirs_rate:.0f} pages/min** ({ours_rate / theirs_rate:.1f}x). The reimplementation is
generous to MindSearch: its searchers wait for a model call between selects, here they do not. Both
figures are loopback reading, not whole searches: no search engine, no model, no real network. (The
MindSearch paper, arXiv:2407.20183, reports information from more than 300 web pages in 3 minutes for
whole searches with a model on the real web; that figure is not comparable to these and is not compared.)
Goal >= 1000 pages/min for mindsearch: **{"met" if ours_rate >= 1000 else "MISSED"}**.

Goal F1 >= 0.94 on both sets with mindsearch's extractor: **{"met" if quality_met else "MISSED"}**.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve_pages(args.serve, args.latency, args.limit))
        return
    pages = load_pages()
    scores = quality(pages)
    speeds = asyncio.run(throughput(pages, args.latency))
    text = render(scores, speeds, args.latency)
    command = "python -m benchmarks.reading" + (
        f" --latency {args.latency:g}" if args.latency != 0.05 else ""
    )
    write_section("reading", "Reading: throughput and extraction quality", command, text, args.output)
    print(text)


if __name__ == "__main__":
    main()
