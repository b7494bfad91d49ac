"""The ``polarity`` command line: one module per group of subcommands.

:func:`main` parses and dispatches (returning the exit code); :func:`entry` is the
installed console script. Exit codes are in :mod:`solver.cli.common`.
"""

from solver.cli.app import entry, main
from solver.cli.common import EXIT_FAILED, EXIT_INPUT, EXIT_OK, EXIT_STOPPED

__all__ = ["EXIT_FAILED", "EXIT_INPUT", "EXIT_OK", "EXIT_STOPPED", "entry", "main"]
