"""Running a case: the one path from a run file to a finished output folder.

:func:`run_case` starts a run, or continues it from its checkpoint, and is what
``polarity run`` and every member of ``polarity sweep`` call.
"""

from __future__ import annotations

import logging
import time as wallclock
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from mpi4py import MPI

from solver import config as run_config
from solver.errors import InputError
from solver.io.claim import claim
from solver.io.files import read_run_json, update_run_json
from solver.io.restart import has_checkpoint, require_checkpoint
from solver.io.restart import load as load_checkpoint
from solver.simulation import Simulation
from solver.time.loop import RunResult, integrate

log = logging.getLogger("solver")

#: ``status`` of a :class:`RunResult` for a run that was already complete at a restart
ALREADY_COMPLETE = "already complete"


def output_dir(cfg: run_config.RunConfig, out: str | Path | None = None) -> Path:
    """Where a run writes: ``out``, else the run file's ``output.dir``, else ``<case>/out``."""
    return Path(out) if out is not None else cfg.output.dir or cfg.base_dir / "out"


def run_case(
    config: str | Path,
    out: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    restart: bool | Literal["auto"] = False,
    overwrite: bool = False,
    wall_time: float | None = None,
    started: float | None = None,
    comm: MPI.Comm = MPI.COMM_WORLD,
    announce: bool = True,
) -> RunResult:
    """Run the case of the run file ``config`` into ``out``, from its start or its checkpoint.

    Args:
        config: The run file (TOML).
        out: The output folder (default: see :func:`output_dir`).
        overrides: ``--set`` items (``"key.sub=value"``) applied to the run file.
        restart: Continue from ``out/checkpoint`` (True), start anew (False), or
            continue if there is a checkpoint and start anew otherwise (``"auto"``,
            as sweep members do).
        overwrite: Replace an existing, non-empty ``out`` (new runs only): only an
            earlier run's outputs (see :func:`solver.io.claim.replace_refusal`).
        wall_time: Stop cleanly, with a checkpoint, before this many seconds after
            ``started`` (default: the run file's ``time.wall_time``).
        started: The ``time.perf_counter()`` the wall time counts from (default: now).
        comm: The ranks that run the case together.
        announce: Log a line with the case, ranks, unknowns and set-up time.

    Returns:
        The result; a restart of a run that had already completed returns status
        ``"completed"`` with reason :data:`ALREADY_COMPLETE` and runs nothing.

    The output folder is checked and claimed (its lock file, :mod:`solver.io.claim`)
    before the mesh is built, and released when the run ends, however it ends.

    Raises:
        InputError: bad run file; an unusable ``out`` (a file, a system folder, not
            writable); an occupied ``out`` without ``overwrite``, or one ``overwrite``
            may not replace; ``out`` in use by another run; a restart without a
            checkpoint, with a changed run file or with a change it cannot honour.
            Nothing is written before these checks pass.
    """
    started = wallclock.perf_counter() if started is None else started
    cfg = run_config.load(config, list(overrides))
    out = output_dir(cfg, out)
    if restart == "auto":
        restart = has_checkpoint(out, comm)
        overwrite = overwrite or not restart
    if restart:
        if overwrite:
            raise InputError("--restart", "cannot be combined with --overwrite")
        require_checkpoint(out, comm)
    # the folder is checked and locked before anything is built: a refusal costs nothing,
    # and a second run into the same folder is refused at once
    with claim(out, comm, restart=bool(restart), overwrite=overwrite, config=Path(config)):
        stored = None
        if restart:
            cfg, stored = load_checkpoint(Path(config), out, list(overrides), comm)
            t = stored.meta["t"]
            end = cfg.time.end
            if t >= end * (1 - 1e-12) and (stored.meta.get("status") == "completed" or t > end):
                steps = int(stored.meta.get("steps", 0))
                _record_completed(out, comm, t, steps)
                return RunResult("completed", t, steps, ALREADY_COMPLETE, 0.0, out)
        t0 = wallclock.perf_counter()
        with Simulation(cfg, comm) as sim:
            if stored is not None:
                sim.load_checkpoint(stored)
            if announce:
                log.info(
                    "polarity: %s on %d rank(s), %d unknowns, set-up %.1f s%s",
                    cfg.source,
                    comm.size,
                    sim.problem.unknowns,
                    wallclock.perf_counter() - t0,
                    f"; continuing from t = {sim.t:g} s" if stored is not None else "",
                )
            return integrate(
                sim,
                out,
                overwrite=overwrite,
                restart=stored,
                wall_time=wall_time,
                started=started,
                overrides=list(overrides),
            )


def _record_completed(out: Path, comm: MPI.Comm, t: float, steps: int) -> None:
    """Make ``run.json`` say ``completed`` if the record of the end could not be written.

    (The disk was full after the last checkpoint: the checkpoint says the run is
    complete, ``run.json`` that it failed.)
    """
    path = out / "run.json"
    if read_run_json(path, comm).get("status") != "completed":
        update_run_json(path, comm, status="completed", reason="", t=t, steps=steps)
