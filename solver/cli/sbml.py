"""``polarity import`` and ``polarity export``: SBML and Antimony in, SBML out.

::

    polarity import MODEL.xml|MODEL.ant [-o run.toml] [--overlay diffusion.toml]
                    [--mesh sphere|disk|FILE] [--surface COMP] [--sides SURF=IN[/OUT]]
                    [--set KEY=VALUE ...] [--overwrite]
    polarity export run.toml -o MODEL.xml|MODEL.ant [--overlay FILE] [--set KEY=VALUE ...]

``import`` writes a run file (by default beside the model, ``MODEL.toml``) only when
the whole model can be read into one; ``export`` writes the run file's reaction
network as SBML Level 3 Version 2 core with units (:mod:`solver.sbml`). Both run on
rank 0 alone: they read and write one small file each.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from mpi4py import MPI

from solver.cli.common import EXIT_OK, add_set_option, say
from solver.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``import`` and ``export`` subcommands."""
    p = subparsers.add_parser(
        "import",
        help="read an SBML or Antimony model into a run file",
        description="Read an SBML (Level 2 or 3) or Antimony model into a run file: "
        "compartments, species (initial values in uM, or uM*um on surfaces), parameters "
        "with units, definitions (assignment rules) and reactions (each kinetic law divided "
        "by the size of the compartment where its species meet). Diffusion coefficients "
        "come from --overlay, --set or SBML-spatial; species without one have D = 0, and "
        "the run file says which. What the run file cannot hold (events, delays, algebraic "
        "rules, ...) is refused in one line naming the SBML element, and nothing is written.",
    )
    p.add_argument("model", type=Path, help="SBML (.xml) or Antimony (.ant) file")
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="the run file to write (default: MODEL.toml beside the model)",
    )
    p.add_argument(
        "--overlay",
        type=Path,
        default=None,
        metavar="FILE",
        help="run-file tables merged over the import (e.g. [species.A] D = '10 um^2/s', or "
        "a table [diffusion] of species = D)",
    )
    p.add_argument(
        "--mesh",
        default=None,
        metavar="SHAPE|FILE",
        help="sphere (default) or disk sized like the model's compartments, or a mesh file "
        "whose regions carry the compartments' names",
    )
    p.add_argument(
        "--surface",
        action="append",
        default=[],
        metavar="COMPARTMENT",
        help="read this SBML compartment as a surface (Antimony writes spatialDimensions 3 "
        "for every compartment; one with units of area is a surface already)",
    )
    p.add_argument(
        "--sides",
        action="append",
        default=[],
        metavar="SURFACE=INSIDE[/OUTSIDE]",
        help="the volumes on the two sides of a surface compartment",
    )
    add_set_option(p, help="set a value of the run file, e.g. --set species.A.D='1 um^2/s'")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run file")
    p.set_defaults(handler=import_command)

    e = subparsers.add_parser(
        "export",
        help="write the reaction network of a run file as SBML",
        description="Write the reaction network of a run file as SBML Level 3 Version 2 core "
        "with units, checked with libsbml's consistency checks; diffusion coefficients and "
        "the run file's other tables travel in annotations, so that polarity import gives "
        "the model back.",
    )
    e.add_argument("config", type=Path, help="run file (TOML)")
    e.add_argument(
        "-o",
        "--out",
        type=Path,
        required=True,
        metavar="FILE",
        help="the SBML file (.xml), or Antimony (.ant) without annotations",
    )
    e.add_argument(
        "--overlay",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the run file's tables that SBML core and Antimony lack (mesh, time, "
        "stimuli, diffusion coefficients, read-outs): polarity import's --overlay",
    )
    add_set_option(e)
    e.set_defaults(handler=export_command)


def _sides(items: list[str]) -> dict[str, tuple[str, str]]:
    sides = {}
    for item in items:
        surface, eq, volumes = item.partition("=")
        inside, _, outside = volumes.partition("/")
        if not eq or not surface.strip() or not inside.strip():
            raise InputError("--sides", f"expected SURFACE=INSIDE[/OUTSIDE], got '{item}'")
        sides[surface.strip()] = (inside.strip(), outside.strip())
    return sides


def _on_rank_0(work: Callable[[], None]) -> None:
    """Run ``work`` on rank 0; its InputError is raised on every rank."""
    comm = MPI.COMM_WORLD
    failure = None
    if comm.rank == 0:
        try:
            work()
        except InputError as err:
            failure = (err.where, err.message)
    failure = comm.bcast(failure, root=0)
    if failure is not None:
        raise InputError(*failure)


def import_command(args: argparse.Namespace) -> int:
    """Import a model; exit code 0 with the run file written."""
    from solver.sbml import import_model, write

    out = args.out or args.model.with_suffix(".toml")

    def work() -> None:
        imported = import_model(
            args.model,
            out,
            overlay=args.overlay,
            mesh=args.mesh,
            overrides=args.overrides,
            surfaces=args.surface,
            sides=_sides(args.sides),
        )
        write(imported, out, overwrite=args.overwrite)
        for note in imported.notes:
            say(f"note: {note}")
        counts = {k: len(imported.document.get(k, {})) for k in ("species", "reactions")}
        say(f"wrote {out}: {counts['species']} species, {counts['reactions']} reactions")

    _on_rank_0(work)
    return EXIT_OK


def export_command(args: argparse.Namespace) -> int:
    """Export a run file's network as SBML; exit code 0 with the file written."""
    from solver.sbml import export_model

    def work() -> None:
        _, warnings = export_model(args.config, args.out, args.overrides, args.overlay)
        shown = f", {warnings} unit warnings" if warnings else ""
        say(f"wrote {args.out}: SBML Level 3 Version 2, consistent{shown}")
        if args.overlay is not None:
            say(f"wrote {args.overlay}: the run file's tables that SBML core lacks")

    _on_rank_0(work)
    return EXIT_OK
