"""Command line for inspecting results: ``polarity info|plot|paraview OUT``.

These commands read an output folder and need no MPI: started under ``mpiexec``,
rank 0 does the work and every rank returns the same exit code (or raises the
same :class:`InputError`, which the CLI turns into one line and exit code 2).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mpi4py import MPI

from solver.cli.common import EXIT_OK
from solver.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``info``, ``plot`` and ``paraview`` subcommands."""
    info = subparsers.add_parser(
        "info", help="summary of a finished or stopped run: polarity info OUT [--json]"
    )
    info.add_argument("out", type=Path, help="output folder of a run")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(handler=_on_rank0(_info))

    plot = subparsers.add_parser(
        "plot",
        help="figures of the read-outs, membrane profiles and compartments: polarity plot OUT",
    )
    plot.add_argument("out", type=Path, help="output folder of a run")
    plot.add_argument(
        "--species",
        action="append",
        default=None,
        metavar="NAME",
        help="membrane species (or species of another surface) of the kymographs and "
        "membrane views (repeatable; default: the [metrics] species, else every membrane "
        "species)",
    )
    plot.add_argument(
        "--time",
        type=float,
        default=None,
        help="time (s) of the membrane views and compartment figures (default: last)",
    )
    plot.add_argument(
        "-o", "--figures", type=Path, default=None, help="folder of the PNGs (default OUT/figures)"
    )
    plot.add_argument(
        "--format",
        dest="formats",
        default="png",
        metavar="FORMATS",
        help="comma-separated formats of the 2-D figures: png, pdf, svg (default png; "
        "3-D membrane views are PNG)",
    )
    plot.add_argument(
        "--movie",
        action="store_true",
        help="also a GIF of the membrane over all output times (membrane_<species>.gif)",
    )
    plot.set_defaults(handler=_on_rank0(_plot))

    pv = subparsers.add_parser(
        "paraview",
        help="write a ParaView state script (OUT/polarity_view.py): open it in ParaView, "
        "or run it with pvbatch to render PNGs",
    )
    pv.add_argument("out", type=Path, help="output folder of a run")
    pv.add_argument(
        "--species",
        default=None,
        help="membrane species to colour by (default: the first read-out)",
    )
    pv.add_argument(
        "--cytosol-species",
        default=None,
        help="cytosol species of the clipped cytosol (default: the one that varies most), "
        "or a species of another volume to colour that volume by",
    )
    pv.add_argument(
        "--times",
        type=float,
        nargs="+",
        default=None,
        metavar="T",
        help="output times (s) that pvbatch renders (default: the last)",
    )
    pv.add_argument(
        "--size",
        default="1200x900",
        help="image size in pixels of the rendered PNGs, WIDTHxHEIGHT (default 1200x900)",
    )
    pv.set_defaults(handler=_on_rank0(_paraview))


def _on_rank0(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run ``handler`` on rank 0 only; every rank returns its code or raises its error."""

    def run(args: argparse.Namespace) -> int:
        comm = MPI.COMM_WORLD
        # (kind, value): ("code", int), ("input", (where, message)) or ("crash", str)
        outcome: tuple[str, Any] = ("code", EXIT_OK)
        crash: Exception | None = None
        if comm.rank == 0:
            try:
                outcome = ("code", handler(args))
            except InputError as err:
                outcome = ("input", (err.where, err.message))
            except Exception as err:  # other ranks must not wait forever
                crash = err
                outcome = ("crash", f"{type(err).__name__}: {err}")
        kind, value = comm.bcast(outcome, root=0) if comm.size > 1 else outcome
        if kind == "input":
            raise InputError(*value)
        if kind == "crash":
            if crash is not None:
                raise crash
            raise RuntimeError(f"failed on rank 0: {value}")
        return int(value)

    return run


def _info(args: argparse.Namespace) -> int:
    from solver.inspect.summary import format_summary, summarize

    summary = summarize(args.out)
    if args.json:
        print(json.dumps(summary, indent=2, allow_nan=False), flush=True)
    else:
        print("\n".join(format_summary(summary)), flush=True)
    return EXIT_OK


def _plot(args: argparse.Namespace) -> int:
    from solver.inspect.plotting import plot_all

    formats = [f.strip().lower() for f in args.formats.split(",") if f.strip()]
    written = plot_all(
        args.out,
        args.figures,
        species=args.species,
        time=args.time,
        formats=formats,
        movie=args.movie,
    )
    for path in written:
        print(path, flush=True)
    return EXIT_OK


def _paraview(args: argparse.Namespace) -> int:
    from solver.inspect.paraview import write_state

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise InputError("--size", f"expected WIDTHxHEIGHT in pixels, got {args.size!r}") from None
    if width < 16 or height < 16:
        raise InputError("--size", f"expected at least 16x16 pixels, got {args.size!r}")
    path = write_state(
        args.out,
        species=args.species,
        cytosol_species=args.cytosol_species,
        times=args.times,
        size=(width, height),
    )
    print(f"ParaView state: {path}", flush=True)
    print(f"  open it:  paraview --script={path}   (or File > Load State... in ParaView)")
    print(f'  render:   xvfb-run -a -s "-screen 0 1024x768x24" pvbatch {path}', flush=True)
    return EXIT_OK
