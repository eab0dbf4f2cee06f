"""The root of mindsearch's exceptions, in a module that imports nothing so every other module can use it.

Catch ``MindSearchError`` to handle anything mindsearch raises on purpose; the subclasses (re-exported by
``mindsearch``) say which part failed. Several also derive from the built-in a caller may already catch
(``ValueError`` for bad input, ``ImportError`` for a missing extra), so code written against those keeps
working.
"""

from __future__ import annotations


class MindSearchError(Exception):
    """Anything mindsearch raises on purpose."""


class MissingExtra(MindSearchError, ImportError):
    """An optional extra is not installed; the message is one line naming the ``pip install`` to run."""
