"""Pieces shared by the subcommands."""

from __future__ import annotations

__all__ = ["CLIError"]


class CLIError(Exception):
    """A user error the command line reports as one line on stderr (exit status 2)."""
