"""``polarity run`` (solve a case, or continue it) and ``polarity check`` (describe it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mpi4py import MPI

from solver.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STOPPED,
    add_set_option,
    add_stop_options,
    say,
    started,
    wall_time_of,
)
from solver.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` and ``check`` subcommands."""
    run = subparsers.add_parser("run", help="run a case: polarity run CONFIG [-o OUT]")
    run.add_argument("config", type=Path, help="run file (TOML)")
    run.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="output folder (default: output.dir, else <case>/out)",
    )
    add_set_option(run)
    add_stop_options(
        run,
        restart="continue the run in the output folder from its checkpoint (OUT/checkpoint/); "
        "values changed in the run file must be named with --set",
        wall_time="stop before this much wall time (e.g. 2h, 1h30m, 01:30:00, '90 min') with a "
        f"checkpoint, status 'stopped' and exit code {EXIT_STOPPED}; continue with --restart",
    )
    run.set_defaults(handler=run_command)

    check = subparsers.add_parser(
        "check", help="validate a run file and describe it, without solving"
    )
    check.add_argument("config", type=Path, help="run file (TOML)")
    add_set_option(check)
    check.set_defaults(handler=check_command)


def run_command(args: argparse.Namespace) -> int:
    """``polarity run``: start or continue the case; returns the exit code."""
    from solver.run import ALREADY_COMPLETE, run_case
    from solver.time.stops import stop_on_signals

    stop_on_signals()
    result = run_case(
        args.config,
        args.out,
        args.overrides,
        restart=args.restart,
        overwrite=args.overwrite,
        wall_time=wall_time_of(args),
        started=started(),
    )
    out = result.out_dir
    if result.reason == ALREADY_COMPLETE:
        say(f"{out}: already complete at t = {result.t:g} s")
        return EXIT_OK
    if result.status == "stopped":
        say(f"stopped at t = {result.t:g} s: {result.reason}")
        say(f"checkpoint written; continue with: polarity run {args.config} -o {out} --restart")
        return EXIT_STOPPED
    if result.write_error:
        # one line, on standard error: the files could not be written (a full disk)
        if MPI.COMM_WORLD.rank == 0:
            print(f"error: run failed: {result.reason}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    if result.status != "completed":
        say(f"run failed: {result.reason}")
        say(f"outputs so far: {out}")
        return EXIT_FAILED
    say(f"done: t = {result.t:g} s in {result.steps} steps, {result.wall_time:.1f} s wall")
    series = sorted(p.name for p in out.glob("*.xdmf")) if out and MPI.COMM_WORLD.rank == 0 else []
    say(f"outputs: {out}/ ({', '.join([*series, 'metrics.csv', 'run.json'])})")
    return EXIT_OK


def check_command(args: argparse.Namespace) -> int:
    """``polarity check``: validate and describe a run file and its mesh, without solving."""
    from solver import config as run_config
    from solver.fem.geometry import CellGeometry
    from solver.mesh import meshing
    from solver.mesh.report import report

    cfg = run_config.load(args.config, args.overrides)
    model = cfg.model
    # everything is checked, the mesh included, before anything is printed
    tagged = meshing.cell_mesh(cfg, MPI.COMM_WORLD)
    try:
        geometry = CellGeometry.from_tagged(
            tagged, model.declared, {c.name for c in model.compartments}
        )
    except InputError as err:
        raise err.located(cfg.source) from None
    unknowns = 0
    for comp in model.compartments:
        n = len(model.in_compartment(comp.name))
        mesh = geometry.regions[comp.name].mesh
        unknowns += n * mesh.geometry.index_map().size_global
    mesh_lines = report(tagged).lines()
    say(f"{cfg.source}: valid")
    for line in _model_lines(cfg):
        say(line)
    pools = model.conserved_pools()
    if pools:
        say("conserved pools: " + ", ".join(p.name for p in pools))
    say(f"time: end {cfg.time.end:g} s, dt {cfg.time.dt:g} s, scheme {cfg.time.scheme}")
    for line in mesh_lines:
        say(line)
    say(f"unknowns: {unknowns}")
    return EXIT_OK


def _model_lines(cfg: Any) -> list[str]:
    """Species, reactions and parameters of ``polarity check``, in aligned columns."""
    model = cfg.model
    lines = ["species (compartment, unit, D in um^2/s, initial in its unit, description):"]
    width = max(len(n) for n in model.species)
    unit_width = max(len(s.units) for s in model.species.values())
    for s in model.species.values():
        initial = s.initial if isinstance(s.initial, float) else s.initial.text
        lines.append(
            f"  {s.name:<{width}}  {s.compartment:<9} {s.units:<{unit_width}}  "
            f"D = {s.D:<8g} initial = {initial}" + (f"  ({s.description})" if s.description else "")
        )
    if model.reactions:
        lines.append(
            "reactions (where, equation, rate in unit/s of its species; membrane: unit*um/s):"
        )
        width = max(len(n) for n in model.reactions)
        equations = {
            r.name: " + ".join(_term(n, k) for n, k in r.reactants.items())
            + " -> "
            + " + ".join(_term(n, k) for n, k in r.products.items())
            for r in model.reactions.values()
        }
        eq_width = max(len(e.strip()) for e in equations.values())
        for r in model.reactions.values():
            equation = equations[r.name].strip()
            lines.append(
                f"  {r.name:<{width}}  {r.location:<9} {equation:<{eq_width}}"
                f"   rate = {r.rate.text}"
            )
    if model.parameters:
        lines.append("parameters (value in solver units: um, s, uM, uM*um; as given):")
        given = cfg.document.get("parameters", {})
        width = max(len(n) for n in model.parameters)
        for k, v in model.parameters.items():
            text = given.get(k, "")
            shown = f"{text!r}" if isinstance(text, str) else ""
            lines.append(f"  {k:<{width}}  {v:<12g} {shown}".rstrip())
    return lines


def _term(name: str, n: int) -> str:
    return name if n == 1 else f"{n} {name}"
