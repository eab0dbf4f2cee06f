"""The command line: ``mindsearch ask``, ``mindsearch index``, ``mindsearch schema``.

``ask`` renders the event stream and nothing else: a live view of the sub-question graph while it is
searched, then the answer as it streams, then the references. ``--json`` writes the events as JSON Lines.
Every command is quiet by default; ``-v`` (and ``-vv``) shows the details behind what it says.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from . import _logs as logs
from . import _telemetry as telemetry
from . import events as ev
from ._telemetry.redact import redact
from .options import OptionsError, RunOptions
from .plugins import BACKENDS, ENGINES, PluginError, check_plugins, require_backend
from .settings import Settings
from .state import RunNode, RunState

STATE_STYLE = {"waiting": "dim", "running": "yellow", "done": "green", "failed": "red"}
STATE_MARK = {"waiting": "·", "running": "…", "done": "✓", "failed": "✗"}


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (each also MINDSEARCH_<NAME> or in mindsearch.toml)")
    # the names come from the plugin registry: the built-ins and every installed plugin's
    group.add_argument("--llm", metavar="NAME", help=f"LLM backend: {', '.join(BACKENDS.names())}")
    group.add_argument("--base-url", help="OpenAI-compatible server URL, e.g. http://127.0.0.1:23333/v1")
    group.add_argument("--model", help="model name on the server (lmdeploy: model path)")
    group.add_argument("--llm-api-key", help="key for the OpenAI-compatible server")
    group.add_argument("--model-path", type=Path, help="GGUF file for the llamacpp backend")
    group.add_argument("--prompt-style", choices=["auto", "chat", "base"])
    group.add_argument(
        "--engine",
        "--engines",
        dest="engines",
        help=f"search engines, comma-separated: {', '.join(ENGINES.names())}",
    )
    group.add_argument(
        "--collection",
        "--collections",
        dest="collections",
        metavar="NAMES",
        help="search only these collections of documents (comma-separated) with the local engine",
    )
    group.add_argument("--searxng-url")
    group.add_argument("--language", choices=["auto", "en", "zh"], help="answer language")
    group.add_argument(
        "--search-language",
        metavar="CODE",
        help="language of the search results: auto (the question's, the default) or a code such as en, zh, "
        "zh-TW, de, pt-BR",
    )
    group.add_argument(
        "--time-range",
        choices=["any", "day", "week", "month", "year"],
        help="only results from the past day, week, month or year (default: any)",
    )
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
    "collections",
    "searxng_url",
    "language",
    "search_language",
    "time_range",
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


# the flags that are per-run options: `ask` passes them to the run as its RunOptions (what the API's
# `settings` take, with the same names and limits); other commands make them the engine's settings
RUN_OPTION_FLAGS = tuple(name for name in SETTING_FLAGS if name in RunOptions.model_fields)


def settings_from(args: argparse.Namespace, *, skip: tuple[str, ...] = ()) -> Settings:
    given = {
        name: getattr(args, name)
        for name in SETTING_FLAGS
        if name not in skip and getattr(args, name, None) is not None
    }
    return Settings(**given)


def options_from(args: argparse.Namespace) -> RunOptions:
    """The run's options from its flags (``--depth``, ``--max-nodes``, ``--engine``...)."""
    given = {
        name: getattr(args, name)
        for name in (*RUN_OPTION_FLAGS, "depth")
        if getattr(args, name, None) is not None
    }
    if isinstance(given.get("collections"), str):
        given["collections"] = [part.strip() for part in given["collections"].split(",") if part.strip()]
    if isinstance(given.get("engines"), str):
        # an unknown name is refused by RunOptions as Settings refuses it, naming the registered ones
        given["engines"] = [part.strip() for part in given["engines"].split(",") if part.strip()]
    return RunOptions(**given)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mindsearch", description="A self-hosted AI search engine that answers with citations."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="answer a question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="write the event stream as JSON Lines")
    ask.add_argument(
        "--depth",
        choices=["quick", "normal", "deep"],
        help="quick: the question is searched as one sub-question, with no planner; normal (the default): "
        "the planner splits it; deep: research mode (as --research)",
    )
    ask.add_argument(
        "--research",
        action="store_const",
        const="deep",
        dest="depth",
        help="research mode: an outline, each section researched and written with citations numbered "
        "across the report, a summary and one reference list (depth deep; budgets: MINDSEARCH_RESEARCH_*)",
    )
    ask.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="FILE",
        help="also write the answer or report with its references to FILE: .md, .html, .pdf or .docx "
        "(PDF with Chinese needs a CJK font, e.g. fonts-wqy-microhei)",
    )
    ask.add_argument(
        "--session",
        metavar="NAME",
        help="keep this conversation under NAME (in the data folder): a follow-up asked with the same "
        "NAME is rewritten to stand alone, and the rewrite is shown",
    )
    _add_settings_flags(ask)
    index = sub.add_parser(
        "index",
        help="add your documents to the local index (.txt .md .html .json .jsonl); --list, --remove, --reset",
        description="Add files and folders to the local index; indexing a file again replaces its documents. "
        "Your documents are searched instead of the bundled demo corpus (--reset brings it back); a "
        "running server sees every change at its next search.",
    )
    index.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders to add")
    index_mode = index.add_mutually_exclusive_group()
    index_mode.add_argument(
        "--list", action="store_true", help="show each indexed file with its number of documents, and a total"
    )
    index_mode.add_argument(
        "--remove",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="remove every document that came from these files, or from files in these folders",
    )
    index_mode.add_argument(
        "--reset", action="store_true", help="remove all your documents: the demo corpus is searched again"
    )
    index.add_argument(
        "--collection",
        metavar="NAME",
        help="add to (or --list, --reset) the shared collection NAME instead of the local index: searched "
        "with collections=[NAME] by every caller of the server, the type of each file judged from its "
        "content (PDF, DOCX, HTML, Markdown, text, JSON, JSONL)",
    )
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
    worker = sub.add_parser(
        "worker",
        help="run the questions API replicas queue (needs MINDSEARCH_REDIS_URL); SIGTERM drains it",
    )
    _add_settings_flags(worker)
    keys = sub.add_parser(
        "keys",
        help="per-user API keys: add NAME prints a new key once (stored hashed), list, remove NAME",
        description="Each user key sees only its own sessions and runs. Kept in Redis with "
        "MINDSEARCH_REDIS_URL, else in keys.sqlite3 in the data folder; a running server sees changes "
        "at once.",
    )
    keys.add_argument("action", choices=["add", "list", "remove"])
    keys.add_argument("name", nargs="?", help="the key's name (a user or a client)")
    keys.add_argument("--data-dir", type=Path)
    for command in sub.choices.values():
        command.add_argument(
            "-v",
            "--verbose",
            action="count",
            default=0,
            help="say more: -v the details behind notes and errors, -vv every library's debug log",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `mindsearch schema | head`: the reader has gone, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    verbosity = int(getattr(args, "verbose", 0) or 0)
    logs.configure(verbosity)
    try:
        if args.command == "schema":
            print(json.dumps(ev.event_json_schema(), indent=2))
            return 0
        if args.command == "index":
            return index_command(args)
        if args.command == "keys":
            return asyncio.run(keys_command(args))
        if args.command == "ask":
            # per-run flags go to the run as RunOptions; the engine's settings get the rest
            settings = settings_from(args, skip=RUN_OPTION_FLAGS)
            options = options_from(args)
            options.apply(settings)  # the run's settings, checked together now rather than in the run
            check_plugins(settings.llm, options.engines or settings.engines)  # a broken one stops here
            require_backend(settings)  # a missing extra (embedded, lmdeploy): one line naming the install
            if args.output is not None and output_format(args.output) is None:
                print(f"mindsearch: --output {args.output}: use .md, .html, .pdf or .docx", file=sys.stderr)
                return 2
            if args.session is not None and not SESSION_NAME.fullmatch(args.session):
                print(
                    "mindsearch: invalid setting session: use 1-64 letters, digits, '.', '_' or '-'",
                    file=sys.stderr,
                )
                return 2
        else:
            settings = settings_from(args)
            # the plugins this command will use are imported now: a broken one is named before it starts
            check_plugins(settings.llm, () if args.command == "eval" else settings.engines)
            if (
                args.command == "mcp" and importlib.util.find_spec("mcp") is None
            ):  # the command's own extra first
                print(
                    "mindsearch: `mindsearch mcp` needs the MCP SDK: pip install 'mindsearch[mcp]'",
                    file=sys.stderr,
                )
                return 2
            require_backend(settings)
        telemetry.setup(settings, server=args.command == "serve")  # log format and level, span export
        if args.command == "serve":
            return serve_command(settings)
        if args.command == "eval":
            return asyncio.run(eval_command(args, settings))
        if args.command == "worker":
            return worker_command(settings)
        if args.command == "mcp":
            from .integrations.mcp import serve_stdio

            serve_stdio(settings, verbosity=verbosity)
            return 0
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            print(f"mindsearch: invalid setting{f' {where}' if where else ''}: {message}", file=sys.stderr)
        return 2
    except OptionsError as exc:
        print(f"mindsearch: invalid setting {exc}", file=sys.stderr)
        return 2
    except PluginError as exc:
        print(f"mindsearch: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # an optional extra is missing; the message says which
        print(f"mindsearch: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(
            ask_command(
                args.question,
                settings,
                options,
                as_json=args.json,
                session=args.session,
                verbosity=verbosity,
                output=args.output,
            )
        )
    except KeyboardInterrupt:
        return 130


async def eval_command(args: argparse.Namespace, settings: Settings) -> int:
    from rich.progress import Progress

    from . import _evaluation as evl
    from ._run import MindSearch

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
        f"{plural(len(items), 'question')} from {args.dataset} ({dataset.kind}, "
        f"{plural(len(dataset.documents), 'paragraph')}); {len(items) - len(todo)} already in {output}"
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
    """What ``python serve.py`` runs: the app under every connection limit of ``api.serve``."""
    from .api import serve

    serve(settings)
    return 0


def worker_command(settings: Settings) -> int:
    """``mindsearch worker``: run queued questions until SIGTERM (then drain: MINDSEARCH_WORKER_DRAIN)."""
    if not settings.redis_url:
        print(
            "mindsearch worker: set MINDSEARCH_REDIS_URL (the Redis that the API replicas use)",
            file=sys.stderr,
        )
        return 2
    from ._scale.worker import run_worker

    run_worker(settings)
    return 0


KEY_NAME = re.compile(r"[A-Za-z0-9_.@\-]{1,64}")


async def keys_command(args: argparse.Namespace) -> int:
    """``mindsearch keys add NAME | list | remove NAME``: a new key is printed once, stored as a digest."""
    from ._store import open_store

    settings = Settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    if args.action in ("add", "remove") and not (args.name and KEY_NAME.fullmatch(args.name)):
        print("mindsearch keys: give a NAME of 1-64 letters, digits, '.', '_', '@' or '-'", file=sys.stderr)
        return 2
    store = open_store(settings)
    try:
        if args.action == "add":
            try:
                key = await store.keys.add(args.name)
            except ValueError as exc:
                print(f"mindsearch keys: {exc}", file=sys.stderr)
                return 1
            print(key)
            print(f"(the key of {args.name}: shown this once, stored only as its digest)", file=sys.stderr)
        elif args.action == "list":
            for name in await store.keys.names():
                print(name)
        elif not await store.keys.remove(args.name):
            print(f"mindsearch keys: no key named {args.name!r}", file=sys.stderr)
            return 1
    finally:
        await store.close()
    return 0


def collection_command(
    args: argparse.Namespace, settings: Settings, console: Console, mode: str | None
) -> int:
    """``mindsearch index --collection NAME``: files into a shared collection of documents, or --list or
    --reset it. Each file that cannot be read is named with why; the others land (exit 1 if none did)."""
    from ._documents import COLLECTION, SHARED, DocumentError, DocumentStore, iter_paths

    name = str(args.collection)
    if not COLLECTION.match(name):
        console.print("[red]mindsearch index: a collection name is 1-64 letters, digits, '-' or '_'")
        return 2
    if mode == "--remove":
        console.print("[red]mindsearch index: --remove does not take --collection; --reset empties one")
        return 2
    store = DocumentStore(settings)
    try:
        if mode == "--list":
            found = store.documents(SHARED, name)
            for doc in found:
                console.print(f"{doc.id}  {doc.filename}  {doc.kind}  {doc.parts} parts", markup=False)
            console.print(f"collection {name}: {len(found)} documents")
            return 0
        if mode == "--reset":
            removed = store.drop(SHARED, name)
            console.print(f"collection {name}: {removed} documents removed")
            return 0
        added = 0
        for path in iter_paths(list(args.paths)):
            try:
                data = path.read_bytes()
                doc = store.add(SHARED, name, path.name, data)
            except OSError as exc:
                console.print(f"[red]{path}: {exc.strerror or exc}", markup=True)
                continue
            except DocumentError as exc:
                console.print(f"{path}: {exc.reason}", style="red", markup=False)
                continue
            added += 1
            console.print(f"{path}: {doc.kind}, {doc.parts} parts", markup=False)
        console.print(f"collection {name}: {added} files added")
        return 0 if added else 1
    finally:
        store.close()


def index_command(args: argparse.Namespace) -> int:
    """Add files to the local index, or --list, --remove or --reset it. Exit 0 when done, 1 when nothing
    was done (nothing matched, nothing readable, the index busy or unreadable), 2 on bad usage."""
    from .search import local
    from .search.local import IndexError_, plural

    settings = Settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    console = Console(stderr=True, soft_wrap=True, highlight=False)
    mode = "--list" if args.list else "--remove" if args.remove else "--reset" if args.reset else None
    if mode and args.paths:
        console.print(f"[red]mindsearch index: {mode} takes no files to add; add them in another run")
        return 2
    if not mode and not args.paths:
        console.print("[red]mindsearch index: give files or folders to add, or --list, --remove or --reset")
        return 2
    if args.collection is not None:
        return collection_command(args, settings, console, mode)
    paragraphs = f"{local.demo_corpus_size():,} Wikipedia paragraphs"
    demo = f"the bundled demo corpus ({paragraphs})"

    def waiting() -> None:
        console.print("waiting for another process that is writing to the index (a `mindsearch index`?)")

    def holds(index: local.LocalIndex) -> str:
        sources = index.sources()
        if not sources:
            return f"the index is empty: {demo} is searched until you add documents"
        docs = plural(sum(n for _, n in sources), "document")
        return f"the index holds {docs} from {plural(len(sources), 'file')} ({index.path})"

    try:
        if args.list:
            index = local.open_user_index(settings.data_dir)
            sources = index.sources() if index is not None else []
            if index is None or not sources:
                print(f"demo corpus: {paragraphs} (searched until you add documents)")
                return 0
            width = len(f"{max(n for _, n in sources):,}")
            for source, count in sources:
                print(f"{count:>{width},} {'document' if count == 1 else 'documents':<9}  {source}")
            total = sum(n for _, n in sources)
            print(f"{plural(total, 'document')} from {plural(len(sources), 'file')} in {index.path}")
            return 0
        if args.remove:
            index = local.open_user_index(settings.data_dir)
            removed = index.remove(args.remove, on_wait=waiting) if index is not None else []
            if index is None or not removed:
                named = ", ".join(str(p) for p in args.remove)
                console.print(
                    f"[red]mindsearch index: no document in the index came from {escape(named)}[/]; "
                    "`mindsearch index --list` shows what it holds"
                )
                return 1
            for source, count in removed:
                console.print(f"removed {plural(count, 'document')} from {escape(source)}")
            for path in args.remove:
                if not any(local.is_under(source, local.source_of(path)) for source, _ in removed):
                    console.print(f"[yellow]no document came from {escape(str(path))}")
            console.print(f"[green]{escape(holds(index))}")
            return 0
        if args.reset:
            report = local.reset_local_index(settings.data_dir, on_wait=waiting)
            if report.unreadable:
                why = escape(report.unreadable)
                console.print(f"[yellow]the index could not be read, so it was deleted: {why}")
            if report.removed:
                docs = plural(sum(n for _, n in report.removed), "document")
                console.print(f"removed {docs} from {plural(len(report.removed), 'file')}")
            elif not report.unreadable:
                console.print("the index held none of your documents")
            console.print(f"[green]{demo} is searched again")
            return 0
        try:
            files = list(dict.fromkeys(p.resolve() for p in local.iter_files(args.paths)))
        except IndexError_ as exc:
            console.print(f"[red]mindsearch index: {escape(str(exc))}")
            return 2
        if not files:
            named = ", ".join(str(p) for p in args.paths)
            console.print(f"[red]mindsearch index: no {' '.join(local.SUFFIXES)} files in {escape(named)}")
            return 1
        index = local.LocalIndex(settings.data_dir / local.USER_INDEX)
        was_empty = not index.sources()
        total, read = 0, 0
        with index.writing(on_wait=waiting) as writer:  # one commit: a server sees all of it or none
            for path in files:
                try:
                    documents = list(local.read_documents(path))
                except IndexError_ as exc:
                    console.print(f"[red]skipped[/] {escape(str(exc))}")
                    continue
                count = writer.replace(local.source_of(path), documents)
                total, read = total + count, read + 1
                noun = "document" if count == 1 else "documents"
                console.print(f"indexed {count:>6,} {noun:<9} from {escape(str(path))}")
        if not read:
            console.print("[red]mindsearch index: no file could be read; the index is unchanged")
            return 1
        added = f"{plural(total, 'document')} from {plural(read, 'file')}"
        console.print(f"[green]{added}; {escape(holds(index))}")
        if was_empty and total:
            console.print(f"Your documents are searched instead of {demo}; --reset brings it back.")
        return 0
    except IndexError_ as exc:
        console.print(f"[red]mindsearch index: {escape(str(exc))}")
        return 1
    except KeyboardInterrupt:
        console.print("[red]interrupted: the index is unchanged")
        return 130


SESSION_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class CliSession:
    """The turns of a conversation kept by ``ask --session NAME``: a JSON file in the data folder.

    The server keeps its own sessions (issued ids, bound to a caller); these belong to whoever owns the
    data folder, like the index and the cache.
    """

    def __init__(self, settings: Settings, name: str) -> None:
        self.path = settings.data_dir / "cli-sessions" / f"{name}.json"
        self.max_turns = settings.max_history_turns

    def history(self) -> list[tuple[str, str]]:
        try:
            turns = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        if not isinstance(turns, list):
            return []
        return [(str(t[0]), str(t[1])) for t in turns if isinstance(t, list) and len(t) == 2]

    def append(self, question: str, answer: str) -> None:
        if self.max_turns == 0:
            return
        turns = [*self.history(), (question, answer)][-self.max_turns :]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps(turns, ensure_ascii=False), encoding="utf-8")
        partial.replace(self.path)


async def ask_command(
    question: str,
    settings: Settings,
    options: RunOptions | None = None,
    *,
    as_json: bool,
    session: str | None = None,
    verbosity: int = 0,
    output: Path | None = None,
) -> int:
    from ._run import MindSearch

    kept = CliSession(settings, session) if session else None
    history = kept.history() if kept else []
    ok = False
    standalone = question
    language = "en"
    async with MindSearch(settings) as engine:
        view = None if as_json else LiveView(Console(), verbosity=verbosity)
        try:
            async for event in engine.stream(question, history, options=options):
                if view is None:
                    sys.stdout.write(event.model_dump_json() + "\n")
                    sys.stdout.flush()
                else:
                    view.show(event)
                if isinstance(event, ev.RunStarted):
                    standalone = event.question
                if isinstance(event, ev.Done):
                    ok = event.ok
                    if kept is not None and event.answer:  # the turn the user saw, as it was searched
                        kept.append(standalone, event.answer)
                    written = output is None or write_output(
                        output, standalone, event, language, settings.export_font
                    )
                    if not written:
                        ok = False
                if isinstance(event, ev.RunStarted):
                    language = event.language
        finally:
            if view is not None:
                view.close()
    return 0 if ok else 1


def output_format(path: Path) -> str | None:
    """The export format a file name asks for (``report.pdf``: pdf), or None for an unknown suffix."""
    from ._exports import FORMATS

    suffix = path.suffix.lower().lstrip(".")
    suffix = {"markdown": "md", "htm": "html"}.get(suffix, suffix)
    return suffix if suffix in FORMATS else None


def write_output(path: Path, question: str, done: ev.Done, language: str, font: Path | None = None) -> bool:
    """Write the finished answer to ``path`` in the format its suffix names; say so, or why not."""
    from ._exports import ExportError, export, report_of

    console = Console(stderr=True, highlight=False)
    fmt = output_format(path)
    if fmt is None or not done.answer:
        why = "nothing to write: the run gave no answer" if fmt else "use .md, .html, .pdf or .docx"
        console.print(f"mindsearch: --output {path}: {why}", style="red", markup=False)
        return False
    try:
        data = export(report_of(question, done.answer, done.references), fmt, language=language, font=font)
        path.write_bytes(data)
    except (ExportError, ImportError, OSError) as exc:
        console.print(f"mindsearch: --output {path}: {exc}", style="red", markup=False)
        return False
    console.print(f"wrote {path} ({len(data):,} bytes)", markup=False)
    return True


def plural(count: int, noun: str) -> str:
    """``1 sub-question``, ``2 sub-questions``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class LiveView:
    """The terminal rendering of a ``RunState``: a live graph while searching, then the streamed answer.

    Notes (a follow-up's rewrite, a planner that fell back to the question) are one dim line each; a
    web engine that failed is one yellow line; other errors are one red line. ``verbosity`` 1 adds the
    detail behind a note.
    """

    def __init__(self, console: Console, *, verbosity: int = 0) -> None:
        self.console = console
        self.verbosity = verbosity
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

    def _note(self, text: str, detail: str = "", style: str = "dim") -> None:
        """One line; ``detail`` (what went wrong underneath) only with -v."""
        line = Text(text, style=style)
        if detail and self.verbosity > 0:
            line.append(f" ({detail})", style=style)
        self.console.print(line, highlight=False, soft_wrap=True)

    def show(self, event: ev.Event) -> None:
        """Fold the event into the state, then print what it adds (the graph is redrawn from the state)."""
        self.state.apply(event)
        state = self.state
        if isinstance(event, ev.RunStarted):
            self.console.print(f"[dim]{escape(state.llm)} · engines: {', '.join(state.engines)}[/]")
            if event.rewrite == "rewritten":
                self._note(f"follow-up rewritten: {event.question}")
            elif event.rewrite == "failed":
                self._note(
                    f"the follow-up could not be rewritten ({event.rewrite_error}); searching it as asked",
                    style="yellow",
                )
        elif isinstance(event, ev.Plan):
            if event.note:
                self._note(f"planner: {event.note}", event.recovered_from)
        elif isinstance(event, ev.Error):
            if self._engine_failure(event):  # said once per engine, and the run goes on without it
                self._note(event.message, style="yellow")
            else:
                where = f" in {event.node_id}" if event.node_id else ""
                line = Text(f"{event.stage} error{where}: ", style="red")
                line.append(redact(event.message))  # a URL's password or a key never reaches the screen
                self.console.print(line, highlight=False, soft_wrap=True)
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
            summary = f"{plural(len(state.nodes), 'sub-question')}, {state.seconds:.1f} s"
            self.console.print(Text(summary, style="dim"), highlight=False)
            return
        self._refresh()

    def _engine_failure(self, event: ev.Error) -> bool:
        """Whether the error is a search engine failing ("duckduckgo: no network; going on with local")."""
        return event.stage == "search" and any(
            event.message.startswith(f"{engine}: ") for engine in self.state.engines
        )

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
        return f"{plural(len(search.hits), 'result')} for {search.query!r}"
    return ""


if __name__ == "__main__":
    sys.exit(main())
