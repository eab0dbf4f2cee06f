"""Where backends and engines are registered: the one place that maps a setting's name to a class.

Imports happen inside the factories, so an optional backend (lmdeploy) costs nothing until chosen.
"""

from __future__ import annotations

from collections.abc import Callable

from .llm.base import ChatModel
from .search.base import SearchEngine
from .settings import Settings


def _llamacpp(settings: Settings) -> ChatModel:
    from .llm.llamacpp import LlamaCppModel

    return LlamaCppModel.from_settings(settings)


def _openai(settings: Settings) -> ChatModel:
    from .llm.openai import OpenAIModel

    return OpenAIModel.from_settings(settings)


def _lmdeploy(settings: Settings) -> ChatModel:
    from .llm.lmdeploy import LMDeployModel

    return LMDeployModel.from_settings(settings)


BACKENDS: dict[str, Callable[[Settings], ChatModel]] = {
    "llamacpp": _llamacpp,
    "openai": _openai,
    "lmdeploy": _lmdeploy,
}


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


ENGINES: dict[str, Callable[[Settings], SearchEngine]] = {
    "local": _local,
    "duckduckgo": _duckduckgo,
    "searxng": _searxng,
    "brave": _brave,
    "serper": _serper,
    "tavily": _tavily,
}


def make_model(settings: Settings) -> ChatModel:
    return BACKENDS[settings.llm](settings)
