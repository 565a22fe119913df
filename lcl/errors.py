"""The one base class of the errors a user can cause.

Every error that a wrong input can trigger (a bad flag or configuration value, an unknown
dataset, a missing or malformed file, an unknown model, an incomplete run folder) derives from
:class:`LCLError`, and also from the builtin it used to be (``ValueError``, ``FileExistsError``,
``RuntimeError``) so that existing ``except`` clauses keep working. The command line prints an
``LCLError`` as one line and exits with status 2; any other exception is a bug and shows its
traceback.

This module imports nothing, so any part of ``lcl`` may use it.
"""

from __future__ import annotations

__all__ = ["LCLError", "UsageError"]


class LCLError(Exception):
    """An error the user can cause and fix; its message says what to change."""


class UsageError(LCLError, ValueError):
    """A command was called in a way that cannot work (e.g. ``lcl predict`` with no texts)."""
