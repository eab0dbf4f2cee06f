"""Reading: pages fetched and extracted per minute, and how well the main text is extracted.

    python -m benchmarks.reading          # writes its section of docs/benchmarks.md

Quality: bag-of-lowercased-token F1 of the extracted text against the truth, averaged over pages, on the
181 pages of scrapinghub's article-extraction-benchmark (``articleBody``) and the 41 pages of Mozilla
Readability's tests (``expected.html``), both in ../shared/eval/html. Side by side: mindsearch's
extractor, trafilatura with its defaults, MindSearch's ``BeautifulSoup.get_text()[:8192]`` and
resiliparse's main-content extraction.

Throughput: the 222 pages served on 127.0.0.1 with 50 ms added to each response, read through
mindsearch's fetcher and extractor at default settings (the searcher's own path: fetch concurrently,
extract in worker threads).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from bs4 import BeautifulSoup

from benchmarks.report import DOC, ROOT, write_section
from mindsearch.settings import Settings
from mindsearch.testing import StaticSite
from mindsearch.web.extract import TrafilaturaExtractor
from mindsearch.web.fetch import HttpFetcher

HTML = ROOT.parent / "shared" / "eval" / "html"


def token_f1(predicted: str, truth: str) -> float:
    pred = Counter(re.findall(r"\w+", predicted.lower()))
    gold = Counter(re.findall(r"\w+", truth.lower()))
    same = sum((pred & gold).values())
    if not same:
        return 0.0
    precision, recall = same / sum(pred.values()), same / sum(gold.values())
    return 2 * precision * recall / (precision + recall)


def load_pages() -> dict[str, list[tuple[str, str, str]]]:
    """(name, html, truth) per set."""
    article = []
    truth = json.loads((HTML / "article_extraction_benchmark" / "ground-truth.json").read_text())
    for sha, record in sorted(truth.items()):
        html = gzip.decompress(
            (HTML / "article_extraction_benchmark" / "html" / f"{sha}.html.gz").read_bytes()
        )
        article.append((sha, html.decode("utf-8", "replace"), record["articleBody"]))
    readability = []
    for folder in sorted((HTML / "readability_test_pages").iterdir()):
        if (folder / "source.html").exists():
            expected = BeautifulSoup((folder / "expected.html").read_text(encoding="utf-8"), "lxml").get_text(
                " "
            )
            readability.append((folder.name, (folder / "source.html").read_text(encoding="utf-8"), expected))
    return {"article-extraction-benchmark (181)": article, "readability test pages (41)": readability}


def extractors() -> dict[str, Callable[[str, str], str]]:
    import trafilatura
    from resiliparse.extract.html2text import extract_plain_text

    ours = TrafilaturaExtractor()
    return {
        "mindsearch (trafilatura, recall mode, bs4 fallback)": lambda html, url: ours.extract(html, url).text,
        "trafilatura defaults": lambda html, url: trafilatura.extract(html, url=url) or "",
        "bs4 get_text()[:8192] (MindSearch)": lambda html, url: BeautifulSoup(html, "lxml").get_text()[:8192],
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


async def throughput(pages: dict[str, list[tuple[str, str, str]]], latency: float) -> tuple[int, float, int]:
    bodies = {f"/{i}": html for i, (_p, html, _t) in enumerate(p for items in pages.values() for p in items)}

    async def serve(request: web.Request) -> web.Response:
        await asyncio.sleep(latency)
        return web.Response(text=bodies[request.path], content_type="text/html")

    extractor = TrafilaturaExtractor()
    async with StaticSite(routes={path: serve for path in bodies}) as site:
        fetcher = HttpFetcher.from_settings(Settings(allow_hosts=["127.0.0.1"]))  # defaults otherwise

        async def read(path: str) -> bool:
            page = await fetcher.fetch(site.url + path)
            extracted = await asyncio.to_thread(extractor.extract, page.text, page.final_url)
            return bool(extracted.text)

        started = time.perf_counter()
        ok = await asyncio.gather(*(read(path) for path in bodies))
        seconds = time.perf_counter() - started
        await fetcher.aclose()
    return len(bodies), seconds, sum(ok)


def render(
    scores: dict[str, dict[str, tuple[float, float]]], pages: int, seconds: float, ok: int, latency: float
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
    per_minute = pages / seconds * 60
    quality_met = all(v[0] >= 0.94 for v in ours.values())
    return f"""{chr(10).join(rows)}

Throughput at default settings (`fetch_per_host` 4, `fetch_concurrency` 16; every page on one host),
{latency * 1000:.0f} ms added per response: {pages} pages fetched and extracted in {seconds:.1f} s,
{ok} with text: **{per_minute:.0f} pages/min** (goal >= 1000: **{"met" if per_minute >= 1000 else "MISSED"}**;
MindSearch's headline is 100/min).

Goal F1 >= 0.94 on both sets with mindsearch's extractor: **{"met" if quality_met else "MISSED"}**.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args()
    pages = load_pages()
    scores = quality(pages)
    count, seconds, ok = asyncio.run(throughput(pages, args.latency))
    text = render(scores, count, seconds, ok, args.latency)
    write_section(
        "reading",
        "Reading: throughput and extraction quality",
        "python -m benchmarks.reading",
        text,
        args.output,
    )
    print(text)


if __name__ == "__main__":
    main()
