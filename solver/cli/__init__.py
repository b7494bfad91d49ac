"""The ``polarity`` command line: one module per group of subcommands.

:func:`main` parses and dispatches (returning the exit code); :func:`entry` is the
installed console script.
"""

from solver.cli.app import entry, main

__all__ = ["entry", "main"]
