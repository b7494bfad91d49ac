"""The ``polarity`` program: the parser of every subcommand, and the safe entry point.

Subcommands are registered statically, one module per group: :mod:`solver.cli.run`
(``run``, ``check``), :mod:`solver.cli.inspect` (``info``, ``plot``, ``paraview``),
:mod:`solver.cli.mesh` (``mesh``), :mod:`solver.cli.sweep` (``sweep``) and
:mod:`solver.cli.sbml` (``import``, ``export``). Each
module's ``register(subparsers)`` adds its parsers and sets ``handler`` (``args ->
exit code``). Bad input gives one line on standard error naming the file, the key
and what was expected, and exit code 2 (``--debug`` shows the traceback). Only rank
0 prints. ``polarity`` alone prints the help.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback

from mpi4py import MPI

from solver.cli import inspect, job, mesh, run, sbml, sweep
from solver.cli.common import EXIT_FAILED, EXIT_INPUT, EXIT_OK, restart_clock
from solver.errors import InputError
from solver.io.files import WriteError

GROUPS = (run, job, sweep, inspect, mesh, sbml)  # the order of the help


def parser() -> argparse.ArgumentParser:
    """The parser of ``polarity`` and all its subcommands."""
    p = argparse.ArgumentParser(
        prog="polarity",
        description="Bulk–surface reaction–diffusion solver for chemotactic cell polarity "
        "(units: µm, s, µM; membrane densities in µM·µm).",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug messages")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return p


class _CurrentStdout(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stdout`` is when a record comes.

    Not the stream of the moment it was made: a caller that swaps ``sys.stdout`` (a
    test capturing output, an embedding application) and closes it later leaves the
    handler a closed stream otherwise.
    """

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self):  # noqa: D102 (logging.StreamHandler's attribute)
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass


def _configure_logging(debug: bool) -> None:
    logger = logging.getLogger("solver")
    logger.handlers.clear()
    logger.propagate = False
    if MPI.COMM_WORLD.rank == 0:
        handler = _CurrentStdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    else:
        logger.addHandler(logging.NullHandler())
    logger.setLevel(logging.DEBUG if debug else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``polarity`` and ``python -m solver``; returns the exit code."""
    restart_clock()
    p = parser()
    args = p.parse_args(argv)
    if args.command is None:
        if MPI.COMM_WORLD.rank == 0:
            p.print_help()
        return EXIT_OK
    _configure_logging(args.debug)
    try:
        return args.handler(args)
    except InputError as err:
        if args.debug:
            raise
        if MPI.COMM_WORLD.rank == 0:
            print(f"error: {err}", file=sys.stderr, flush=True)
        return EXIT_INPUT
    except WriteError as err:  # raised on every rank together: no rank is left waiting
        if args.debug:
            raise
        if MPI.COMM_WORLD.rank == 0:
            print(f"error: {err}", file=sys.stderr, flush=True)
        return EXIT_FAILED


def entry() -> None:
    """The ``polarity`` command: :func:`main`, ending safely under MPI.

    An unexpected error on some ranks would leave the others waiting in a collective
    call for ever, and a batch job holding its nodes until its time limit: under MPI
    the traceback is printed and every rank is aborted instead.
    """
    try:
        code = main()
    except SystemExit:
        raise
    except BaseException:
        if MPI.COMM_WORLD.size > 1:
            traceback.print_exc()
            sys.stderr.flush()
            MPI.COMM_WORLD.Abort(EXIT_FAILED)
        raise
    sys.exit(code)
