"""The command line: ``mindsearch ask``, ``mindsearch index``, ``mindsearch schema``.

``ask`` renders the event stream and nothing else: a live view of the sub-question graph while it is
searched, then the answer as it streams, then the references. ``--json`` writes the events as JSON Lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from . import events as ev
from .settings import KNOWN_ENGINES, Settings
from .state import RunNode, RunState

STATE_STYLE = {"waiting": "dim", "running": "yellow", "done": "green", "failed": "red"}
STATE_MARK = {"waiting": "·", "running": "…", "done": "✓", "failed": "✗"}


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (each also MINDSEARCH_<NAME> or in mindsearch.toml)")
    group.add_argument("--llm", choices=["llamacpp", "openai", "lmdeploy"], help="LLM backend")
    group.add_argument("--base-url", help="OpenAI-compatible server URL, e.g. http://127.0.0.1:23333/v1")
    group.add_argument("--model", help="model name on the server (lmdeploy: model path)")
    group.add_argument("--llm-api-key", help="key for the OpenAI-compatible server")
    group.add_argument("--model-path", type=Path, help="GGUF file for the llamacpp backend")
    group.add_argument("--prompt-style", choices=["auto", "chat", "base"])
    group.add_argument(
        "--engine",
        "--engines",
        dest="engines",
        help=f"search engines, comma-separated: {', '.join(KNOWN_ENGINES)}",
    )
    group.add_argument("--searxng-url")
    group.add_argument("--language", choices=["auto", "en", "zh"])
    group.add_argument("--max-nodes", type=int)
    group.add_argument("--max-rounds", type=int)
    group.add_argument("--max-concurrency", type=int)
    group.add_argument("--pages-per-node", type=int)
    group.add_argument("--node-timeout", type=float)
    group.add_argument("--total-timeout", type=float)
    group.add_argument("--max-tokens", type=int)
    group.add_argument("--allow-hosts", help="hosts or networks that may be fetched although private")
    group.add_argument("--data-dir", type=Path, help="index, cache and model files")


SETTING_FLAGS = (
    "llm",
    "base_url",
    "model",
    "llm_api_key",
    "model_path",
    "prompt_style",
    "engines",
    "searxng_url",
    "language",
    "max_nodes",
    "max_rounds",
    "max_concurrency",
    "pages_per_node",
    "node_timeout",
    "total_timeout",
    "max_tokens",
    "allow_hosts",
    "data_dir",
    "host",
    "port",
    "cors_origins",
)


def settings_from(args: argparse.Namespace) -> Settings:
    given = {name: getattr(args, name) for name in SETTING_FLAGS if getattr(args, name, None) is not None}
    return Settings(**given)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mindsearch", description="A self-hosted AI search engine that answers with citations."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="answer a question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="write the event stream as JSON Lines")
    _add_settings_flags(ask)
    index = sub.add_parser("index", help="add documents to the local index (.txt .md .html .json .jsonl)")
    index.add_argument("paths", nargs="+", type=Path)
    index.add_argument("--data-dir", type=Path)
    sub.add_parser("schema", help="print the JSON Schema of one event")
    serve = sub.add_parser("serve", help="start the REST server (SSE, OpenAI-compatible, /solve)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8002)")
    serve.add_argument("--cors-origins", help="browser origins allowed to call the API, comma-separated")
    _add_settings_flags(serve)
    evaluate = sub.add_parser("eval", help="answer a QA dataset offline and score the answers")
    evaluate.add_argument("dataset", type=Path, help="HotpotQA or MuSiQue JSON, or JSONL {question, answer}")
    evaluate.add_argument("--limit", type=int, help="only the first N questions")
    evaluate.add_argument("--corpus", type=Path, nargs="*", help="documents to search (for JSONL datasets)")
    evaluate.add_argument("--oracle-plan", action="store_true", help="use the gold decomposition (MuSiQue)")
    evaluate.add_argument("--output", type=Path, help="results JSONL (default eval/<dataset>[-oracle].jsonl)")
    evaluate.add_argument("--concurrency", type=int, default=1, help="questions answered at once")
    _add_settings_flags(evaluate)
    mcp = sub.add_parser("mcp", help="run an MCP server over stdio with a `search` tool")
    _add_settings_flags(mcp)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "schema":
            print(json.dumps(ev.event_json_schema(), indent=2))
            return 0
        if args.command == "index":
            return index_command(args)
        settings = settings_from(args)
        if args.command == "serve":
            return serve_command(settings)
        if args.command == "eval":
            return asyncio.run(eval_command(args, settings))
        if args.command == "mcp":
            from .integrations.mcp import serve_stdio

            serve_stdio(settings)
            return 0
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "settings"
            print(f"mindsearch: invalid setting {where}: {error['msg']}", file=sys.stderr)
        return 2
    except ImportError as exc:  # an optional extra is missing; the message says which
        print(f"mindsearch: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(ask_command(args.question, settings, as_json=args.json))
    except KeyboardInterrupt:
        return 130


async def eval_command(args: argparse.Namespace, settings: Settings) -> int:
    from rich.progress import Progress

    from . import evaluation as evl
    from .run import MindSearch

    console = Console(stderr=True)
    try:
        dataset = evl.load_dataset(args.dataset, args.corpus)
    except (ValueError, KeyError, OSError) as exc:
        print(f"mindsearch eval: {exc}", file=sys.stderr)
        return 2
    if args.oracle_plan and not any(item.plan for item in dataset.items):
        print(
            "mindsearch eval: --oracle-plan needs a dataset with a gold decomposition (MuSiQue)",
            file=sys.stderr,
        )
        return 2
    items = dataset.items[: args.limit] if args.limit else dataset.items
    suffix = "-oracle" if args.oracle_plan else ""
    output = args.output or Path("eval") / f"{args.dataset.stem}{suffix}.jsonl"
    finished = evl.done_ids(output)
    todo = [item for item in items if item.id not in finished]
    console.print(
        f"{len(items)} questions from {args.dataset} ({dataset.kind}, {len(dataset.documents)} paragraphs); "
        f"{len(items) - len(todo)} already in {output}"
    )
    index_dir = settings.data_dir / "eval-index" / f"{args.dataset.stem}-{len(dataset.documents)}"
    engine = MindSearch(settings, engines=[evl.local_engine_for(dataset, index_dir)])
    try:
        with Progress(console=console) as progress:
            task = progress.add_task("answering", total=len(items), completed=len(items) - len(todo))
            await evl.run_eval(
                engine,
                todo,
                output,
                oracle=args.oracle_plan,
                concurrency=args.concurrency,
                progress=lambda: progress.advance(task),
            )
    finally:
        await engine.aclose()
    summary = evl.summarize(output, {item.id for item in items})
    title = f"{args.dataset.name}{' with the gold plan' if args.oracle_plan else ''}, {engine.model.name}"
    markdown = evl.summary_markdown(summary, title)
    output.with_suffix(".md").write_text(markdown)
    print(markdown)
    return 0


def serve_command(settings: Settings) -> int:
    import uvicorn

    from .api import create_app

    auth = "with a bearer token" if settings.api_key else "open (set MINDSEARCH_API_KEY to require a token)"
    print(
        f"mindsearch serving on http://{settings.host}:{settings.port} ({auth}); API docs at /docs",
        file=sys.stderr,
    )
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
    return 0


def index_command(args: argparse.Namespace) -> int:
    from .search.local import IndexError_, LocalIndex, iter_files, read_documents

    settings = Settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    console = Console(stderr=True)
    index = LocalIndex(settings.data_dir / "index")
    total, failed = 0, 0
    try:
        files = list(iter_files(args.paths))
    except IndexError_ as exc:
        console.print(f"[red]mindsearch: {escape(str(exc))}")
        return 2
    for path in files:
        try:
            count = index.add(read_documents(path))
        except IndexError_ as exc:
            console.print(f"[red]skipped[/] {escape(str(exc))}")
            failed += 1
            continue
        total += count
        console.print(f"indexed {count:>6} documents from {escape(str(path))}")
    console.print(
        f"[green]{total} documents from {len(files) - failed} files; the index holds {index.num_docs}[/] "
        f"({index.path})"
    )
    return 1 if failed and not total else 0


async def ask_command(question: str, settings: Settings, *, as_json: bool) -> int:
    from .run import MindSearch

    ok = False
    async with MindSearch(settings) as engine:
        if as_json:
            async for event in engine.stream(question):
                sys.stdout.write(event.model_dump_json() + "\n")
                sys.stdout.flush()
                if isinstance(event, ev.Done):
                    ok = event.ok
            return 0 if ok else 1
        view = LiveView(Console())
        try:
            async for event in engine.stream(question):
                view.show(event)
                if isinstance(event, ev.Done):
                    ok = event.ok
        finally:
            view.close()
    return 0 if ok else 1


class LiveView:
    """The terminal rendering of a ``RunState``: a live graph while searching, then the streamed answer."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.state = RunState()
        self.live: Live | None = Live(self._render(), console=console, refresh_per_second=8, transient=False)
        self.live.start()
        self.answering = False

    def _render(self) -> Group:
        tree = Tree(Text(self.state.question or "planning…", style="bold"))
        branches: dict[str, Tree] = {}
        for node in self.state.nodes.values():
            parent = branches.get(node.depends_on[-1]) if node.depends_on else None
            label = Text(
                f"{STATE_MARK[node.state]} {node.id}: {node.question}", style=STATE_STYLE[node.state]
            )
            if node.depends_on:
                label.append(f"  (after {', '.join(node.depends_on)})", style="dim")
            detail = _detail(node)
            if detail:
                label.append(f"  {detail}", style="dim")
            branches[node.id] = (parent or tree).add(label)
        return Group(tree)

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def show(self, event: ev.Event) -> None:
        """Fold the event into the state, then print what it adds (the graph is redrawn from the state)."""
        self.state.apply(event)
        state = self.state
        if isinstance(event, ev.RunStarted):
            self.console.print(f"[dim]{escape(state.llm)} · engines: {', '.join(state.engines)}[/]")
        elif isinstance(event, ev.Error):
            self.console.print(
                f"[red]{event.stage} error{f' in {event.node_id}' if event.node_id else ''}:[/] "
                f"{escape(event.message)}"
            )
        elif isinstance(event, ev.AnswerDelta):
            if not self.answering:
                self._stop_live()
                self.answering = True
                self.console.print()
            self.console.print(event.text, end="", markup=False, highlight=False, soft_wrap=True)
            return
        elif isinstance(event, ev.References):
            self._stop_live()
            self.console.print("\n")
            if state.references:
                self.console.print("[bold]References[/]")
            for ref in state.references:
                self.console.print(f"[{ref.n}] {escape(ref.title)} - {escape(ref.url)}", highlight=False)
            return
        elif isinstance(event, ev.Done):
            self._stop_live()
            self.console.print(f"[dim]{len(state.nodes)} sub-questions, {state.seconds:.1f} s[/]")
            return
        self._refresh()

    def _stop_live(self) -> None:
        if self.live is not None:
            self.live.update(self._render() if self.state.nodes else Group())
            self.live.stop()
            self.live = None

    def close(self) -> None:
        self._stop_live()


def _detail(node: RunNode) -> str:
    """What a node is doing, in a few words: its last search or page, or why it failed."""
    if node.finished:
        return (node.error or "") if node.state == "failed" else ""
    if node.pages:
        page = node.pages[-1]
        return f"read {page.url}" if page.ok else f"could not read {page.url}"
    if node.searches:
        search = node.searches[-1]
        return f"{len(search.hits)} results for {search.query!r}"
    return ""


if __name__ == "__main__":
    sys.exit(main())
