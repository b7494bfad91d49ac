"""Command line: ``polarity run|check|info`` and the subcommands of other modules.

Each subcommand module listed in ``SUBCOMMANDS`` has ``register(subparsers)``, which
adds its parser and sets ``handler`` (``args -> exit code``) with ``set_defaults``.
Bad input gives one line on standard error naming the file, the key and what
was expected, and exit code 2 (``--debug`` shows the traceback). Only rank 0
prints.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
import traceback
from pathlib import Path

from mpi4py import MPI

from solver.errors import InputError

log = logging.getLogger("solver")

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2
# A run stopped before its wall-time limit with a checkpoint written: continue it with
# ``--restart`` (sysexits' EX_TEMPFAIL, "try again later"; batch scripts requeue on it).
EXIT_STOPPED = 75

_STARTED = time.perf_counter()  # reset by main(): the origin of --wall-time

# Modules with further subcommands (each defines ``register(subparsers)``).
SUBCOMMANDS: tuple[str, ...] = ("solver.cli.sweep", "solver.cli.inspect", "solver.cli.mesh")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="polarity",
        description="Bulk–surface reaction–diffusion solver for chemotactic cell polarity "
        "(units: µm, s, µM; membrane densities in µM·µm).",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug messages")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a case: polarity run CONFIG [-o OUT]")
    run.add_argument("config", type=Path, help="run file (TOML)")
    run.add_argument(
        "-o",
        "--out",
        type=Path,
        default=None,
        help="output folder (default: output.dir, else <case>/out)",
    )
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a run-file value, e.g. --set mesh.size=0.4 "
        "--set parameters.k_on='2 1/s' (repeatable)",
    )
    add_stop_options(
        run,
        restart="continue the run in the output folder from its checkpoint (OUT/checkpoint/); "
        "values changed in the run file must be named with --set",
        wall_time="stop before this much wall time (e.g. 2h, 1h30m, 01:30:00, '90 min') with a "
        f"checkpoint, status 'stopped' and exit code {EXIT_STOPPED}; continue with --restart",
    )

    check = sub.add_parser("check", help="validate a run file and describe it, without solving")
    check.add_argument("config", type=Path)
    check.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    run.set_defaults(handler=_run)
    check.set_defaults(handler=_check)
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(sub)
    return p


def _configure_logging(debug: bool) -> None:
    logger = logging.getLogger("solver")
    logger.handlers.clear()
    logger.propagate = False
    if MPI.COMM_WORLD.rank == 0:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    else:
        logger.addHandler(logging.NullHandler())
    logger.setLevel(logging.DEBUG if debug else logging.INFO)


def add_stop_options(parser: argparse.ArgumentParser, restart: str, wall_time: str) -> None:
    """``--overwrite``, ``--restart`` and ``--wall-time`` (read with :func:`wall_time_of`)."""
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing output folder"
    )
    parser.add_argument("--restart", action="store_true", help=restart)
    parser.add_argument("--wall-time", default=None, metavar="DURATION", help=wall_time)


def wall_time_of(args: argparse.Namespace) -> float | None:
    """The ``--wall-time`` in seconds, or None; InputError when it is not a duration."""
    from solver.config import units

    if args.wall_time is None:
        return None
    try:
        return units.parse_duration(args.wall_time)
    except units.UnitError as err:
        raise InputError("--wall-time", str(err)) from None


def started() -> float:
    """``time.perf_counter()`` at the program's start: the origin of ``--wall-time``."""
    return _STARTED


def _say(*args) -> None:
    if MPI.COMM_WORLD.rank == 0:
        print(*args, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``polarity`` and ``python -m solver``; returns the exit code."""
    global _STARTED
    _STARTED = time.perf_counter()
    args = _parser().parse_args(argv)
    _configure_logging(args.debug)
    try:
        return args.handler(args)
    except InputError as err:
        if args.debug:
            raise
        if MPI.COMM_WORLD.rank == 0:
            print(f"error: {err}", file=sys.stderr, flush=True)
        return EXIT_INPUT


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


def _run(args: argparse.Namespace) -> int:
    from solver import config as run_config
    from solver.io import restart
    from solver.simulation import Simulation
    from solver.time.loop import stop_on_signals

    stop_on_signals()
    comm = MPI.COMM_WORLD
    wall = wall_time_of(args)
    cfg = run_config.load(args.config, args.overrides)
    out = args.out or cfg.output.dir or cfg.case_dir / "out"
    stored = None
    if args.restart:
        if args.overwrite:
            raise InputError("--restart", "cannot be combined with --overwrite")
        cfg, stored = restart.load(args.config, out, args.overrides, comm)
        t = stored.meta["t"]
        if t >= cfg.time.end * (1 - 1e-12):
            if stored.meta.get("status") == "completed" or t > cfg.time.end:
                _say(f"{out}: already complete at t = {t:g} s (time.end = {cfg.time.end:g} s)")
                return EXIT_OK
    else:
        # decided on rank 0 for all: before anything is built, so a refusal costs nothing
        occupied = comm.bcast(out.exists() and any(out.iterdir()) if comm.rank == 0 else None)
        if occupied and not args.overwrite:
            raise InputError(
                "output",
                f"output folder {str(out)!r} exists and is not empty; choose another with -o, "
                "pass --overwrite to replace it, or --restart to continue it",
            )
    t0 = time.perf_counter()
    with Simulation(cfg, comm) as sim:
        if stored is not None:
            meta = stored.meta
            sim.load_states(stored, meta["t"], meta["dt_prev"], meta["past_times"])
        _say(
            f"polarity: {cfg.source} on {comm.size} rank(s), {sim.problem.unknowns} unknowns, "
            f"set-up {time.perf_counter() - t0:.1f} s"
            + (f"; continuing from t = {sim.t:g} s" if stored is not None else "")
        )
        result = sim.run(
            out,
            overwrite=args.overwrite,
            restart=stored,
            wall_time=wall,
            started=_STARTED,
            overrides=list(args.overrides),
        )
    if result.status == "stopped":
        _say(f"stopped at t = {result.t:g} s: {result.reason}")
        _say(f"checkpoint written; continue with: polarity run {args.config} -o {out} --restart")
        return EXIT_STOPPED
    if result.status != "completed":
        _say(f"run failed: {result.reason}")
        _say(f"outputs so far: {out}")
        return EXIT_FAILED
    _say(f"done: t = {result.t:g} s in {result.steps} steps, {result.wall_time:.1f} s wall")
    _say(f"outputs: {out}/ (cytosol.xdmf, membrane.xdmf, metrics.csv, run.json)")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from solver import config as run_config
    from solver.fem.geometry import CellGeometry
    from solver.mesh import meshing
    from solver.mesh import report as mesh_report

    cfg = run_config.load(args.config, args.overrides)
    model = cfg.model
    _say(f"{cfg.source}: valid")
    _say("species (compartment, D in um^2/s, initial in uM or uM*um):")
    for s in model.species.values():
        initial = s.initial if isinstance(s.initial, float) else s.initial.text
        _say(f"  {s.name:<12} {s.compartment.value:<9} D = {s.D:<10g} initial = {initial}")
    _say("reactions (location, equation, rate in uM/s or uM*um/s):")
    for r in model.reactions.values():
        left = " + ".join(_term(n, k) for n, k in r.reactants.items())
        right = " + ".join(_term(n, k) for n, k in r.products.items())
        _say(f"  {r.name:<12} {r.location.value:<9} {left} -> {right}   rate = {r.rate.text}")
    if model.parameters:
        _say("parameters (solver units):")
        for k, v in model.parameters.items():
            _say(f"  {k:<12} {v:g}")
    pools = model.conserved_pools()
    if pools:
        _say("conserved pools: " + ", ".join(p.name for p in pools))
    _say(f"time: end {cfg.time.end:g} s, dt {cfg.time.dt:g} s, scheme {cfg.time.scheme}")
    try:
        tagged = meshing.mesh_from_config(cfg.mesh, MPI.COMM_WORLD, cfg.base_dir)
    except meshing.MeshError as err:
        raise InputError(f"{cfg.source}: mesh", str(err)) from None
    geometry = CellGeometry.from_tagged(tagged)
    unknowns = 0
    for comp in model.compartments:
        n = len(model.in_compartment(comp))
        mesh = geometry.mesh if comp.value == "cytosol" else geometry.membrane
        unknowns += n * mesh.geometry.index_map().size_global
    for line in mesh_report.report(tagged).lines():
        _say(line)
    _say(f"unknowns: {unknowns}")
    return EXIT_OK


def _term(name: str, n: int) -> str:
    return name if n == 1 else f"{n} {name}"


if __name__ == "__main__":
    sys.exit(main())
