"""Run-file tables of the numerics: ``[time]``, ``[output]`` and ``[solver]``.

Read with the value readers of :mod:`solver.config.values`; every error is an
:class:`~solver.errors.InputError` naming the key. Times are in s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solver.config import units
from solver.config.values import Values
from solver.errors import InputError

SCHEMES = ("euler", "bdf2")
LINEAR_SOLVERS = ("iterative", "direct")
_TIME_KEYS = (
    "end",
    "dt",
    "scheme",
    "adaptive",
    "rtol",
    "atol",
    "dt_min",
    "dt_max",
    "wall_time",
    "reject_negative",
)
_OUTPUT_KEYS = ("every", "dir", "progress", "checkpoint_every")
_WALL_SUFFIX = "wall"  # checkpoint_every = "30 min wall": a wall-clock cadence
_SOLVER_KEYS = ("linear", "quadrature_degree", "petsc", "mass")
MASS_MATRICES = ("lumped", "consistent")


@dataclass(frozen=True)
class TimeConfig:
    """Time interval and integration (seconds).

    ``dt`` is the step, or the first step when ``adaptive``: then the error of the run
    is held near ``atol + rtol·|U|`` (µM or µM·µm; the default atol, 1e-4 µM, is about
    30 molecules in a 5-µm cell) in the root-mean-square over all unknowns, with steps
    between ``dt_min`` and ``dt_max`` (see :mod:`solver.time.schemes`).
    ``wall_time`` (s of wall clock since the start of the program) stops the run at
    a step boundary before that limit, with a checkpoint. ``reject_negative``: an
    adaptive step that takes a value from ≥ −atol to below −atol is retried smaller
    (false for signed unknowns, as in manufactured solutions).
    """

    end: float
    dt: float
    scheme: str = "bdf2"
    adaptive: bool = False
    rtol: float = 1e-3
    atol: float = 1e-4
    dt_min: float = 1e-9
    dt_max: float = math.inf
    wall_time: float | None = None
    reject_negative: bool = True


@dataclass(frozen=True)
class OutputConfig:
    """What is written and how often.

    Fields and metrics every ``every`` simulated seconds; a progress line every
    ``progress`` seconds of wall time; ``dir`` the output folder (None: ``<case>/out``).
    """

    every: float
    dir: Path | None
    progress: float = 10.0
    #: simulated seconds between checkpoints (None: at every output time) ...
    checkpoint_every: float | None = None
    #: ... or seconds of wall clock between checkpoints (``"30 min wall"``)
    checkpoint_wall: float | None = None


@dataclass(frozen=True)
class SolverConfig:
    """The ``[solver]`` table: linear solver, quadrature, PETSc options and mass matrix.

    Attributes:
        linear: The linear solver family, ``iterative`` or ``direct``.
        quadrature_degree: The quadrature degree of the reaction terms.
        petsc: Raw PETSc options, passed on unchanged.
        mass: The mass matrix of the time derivative (``lumped``: no undershoots,
            docs/numerics.md, Mass lumping).
    """

    linear: str = "iterative"
    quadrature_degree: int = 4
    petsc: Mapping[str, str] = field(default_factory=dict)
    mass: str = "lumped"


class NumericsTables:
    """Readers of ``[time]``, ``[output]`` and ``[solver]``."""

    def __init__(self, v: Values) -> None:
        self.v = v

    def time(self, table: Mapping[str, Any]) -> TimeConfig:
        """Read and check the ``[time]`` table (times in s).

        Args:
            table: The ``[time]`` table of the run file.

        Returns:
            The time configuration; ``dt`` and ``dt_max`` are capped at ``end``.

        Raises:
            InputError: A key is unknown, missing or malformed.
        """
        self.v.keys("time", table, _TIME_KEYS)
        for key in ("end", "dt"):
            if key not in table:
                raise InputError(f"time.{key}", "missing: a time, e.g. '10 s'")
        end = self.v.positive("time.end", table["end"], "time")
        dt = self.v.positive("time.dt", table["dt"], "time")
        scheme = table.get("scheme", "bdf2")
        if scheme not in SCHEMES:
            raise InputError("time.scheme", f"expected one of {', '.join(SCHEMES)}, got {scheme!r}")
        adaptive = table.get("adaptive", False)
        if not isinstance(adaptive, bool):
            raise InputError("time.adaptive", f"expected true or false, got {adaptive!r}")
        rtol = self.v.positive("time.rtol", table.get("rtol", 1e-3), "dimensionless")
        atol = self.v.positive("time.atol", table.get("atol", 1e-4), None)
        dt_min = self.v.positive("time.dt_min", table.get("dt_min", 1e-9 * end), "time")
        dt_max = (
            self.v.positive("time.dt_max", table["dt_max"], "time") if "dt_max" in table else end
        )
        if dt_min > min(dt, dt_max):
            raise InputError("time.dt_min", f"expected at most dt and dt_max, got {dt_min:g} s")
        reject = table.get("reject_negative", True)
        if not isinstance(reject, bool):
            raise InputError("time.reject_negative", f"expected true or false, got {reject!r}")
        # rtol, atol, dt_min, dt_max and reject_negative are read (and checked) even with
        # adaptive = false: `--set time.adaptive=false` on an adaptive run file must work
        wall = table.get("wall_time")
        if wall is not None:
            try:
                wall = units.parse_duration(wall)
            except units.UnitError as err:
                raise InputError("time.wall_time", str(err)) from None
        return TimeConfig(
            end=end,
            dt=min(dt, end),
            scheme=scheme,
            adaptive=adaptive,
            rtol=rtol,
            atol=atol,
            dt_min=dt_min,
            dt_max=min(dt_max, end),
            wall_time=wall,
            reject_negative=reject,
        )

    def output(self, table: Mapping[str, Any], time: TimeConfig) -> OutputConfig:
        """Read and check the ``[output]`` table (times in s).

        Args:
            table: The ``[output]`` table of the run file.
            time: The time configuration; without ``every``, outputs are ``end / 100`` apart.

        Returns:
            The output configuration; a relative ``dir`` is taken from the run file's folder.

        Raises:
            InputError: A key is unknown or malformed.
        """
        self.v.keys("output", table, _OUTPUT_KEYS)
        every = (
            self.v.positive("output.every", table["every"], "time")
            if "every" in table
            else time.end / 100
        )
        progress = self.v.positive("output.progress", table.get("progress", 10.0), "time")
        folder = table.get("dir")
        if folder is not None:
            folder = Path(str(folder))
            folder = folder if folder.is_absolute() else self.v.base_dir / folder
        sim_every = wall_every = None
        cadence = table.get("checkpoint_every")
        if isinstance(cadence, str) and cadence.strip().endswith(_WALL_SUFFIX):
            text = cadence.strip()[: -len(_WALL_SUFFIX)].strip()
            wall_every = self.v.positive("output.checkpoint_every", text, "time")
        elif cadence is not None:
            sim_every = self.v.positive("output.checkpoint_every", cadence, "time")
        return OutputConfig(
            every=every,
            dir=folder,
            progress=progress,
            checkpoint_every=sim_every,
            checkpoint_wall=wall_every,
        )

    def solver(self, table: Mapping[str, Any]) -> SolverConfig:
        """Read and check the ``[solver]`` table.

        Args:
            table: The ``[solver]`` table of the run file.

        Returns:
            The solver configuration.

        Raises:
            InputError: A key is unknown or malformed.
        """
        self.v.keys("solver", table, _SOLVER_KEYS)
        linear = table.get("linear", "iterative")
        if linear not in LINEAR_SOLVERS:
            raise InputError(
                "solver.linear", f"expected one of {', '.join(LINEAR_SOLVERS)}, got {linear!r}"
            )
        degree = table.get("quadrature_degree", 4)
        if isinstance(degree, bool) or not isinstance(degree, int) or not 1 <= degree <= 12:
            raise InputError(
                "solver.quadrature_degree", f"expected an integer 1..12, got {degree!r}"
            )
        petsc = self.v.table("solver.petsc", table.get("petsc", {}))
        options = {}
        for k, v in petsc.items():
            if isinstance(v, Mapping | list):
                raise InputError(f"solver.petsc.{k}", "expected a string, number or boolean")
            # a flag (true) is given without a value, as on PETSc's command line
            options[k.lstrip("-")] = ("" if v else "false") if isinstance(v, bool) else str(v)
        mass = table.get("mass", "lumped")
        if mass not in MASS_MATRICES:
            raise InputError(
                "solver.mass", f"expected one of {', '.join(MASS_MATRICES)}, got {mass!r}"
            )
        return SolverConfig(linear=linear, quadrature_degree=degree, petsc=options, mass=mass)
