"""Search engines: the ``SearchEngine`` interface (subclass it and implement ``search``) and the engines."""

from .base import SearchEngine, SearchError, SearchHit, TimeRange

__all__ = ["SearchEngine", "SearchError", "SearchHit", "TimeRange"]
