"""Reading pages: the ``Fetcher`` interface (subclass it and implement ``fetch``), the guarded fetcher."""

from .fetch import BlockedURL, FetchedPage, Fetcher, FetchError

__all__ = ["BlockedURL", "FetchError", "FetchedPage", "Fetcher"]
