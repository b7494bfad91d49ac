"""Run-file tables of the numerics: ``[time]``, ``[output]`` and ``[solver]``.

Read with the value readers of :mod:`solver.config.values`; every error is an
:class:`~solver.errors.InputError` naming the key. Times are in s.

``[solver.petsc]`` takes only the PETSc options of :func:`petsc_option_error`'s
allow-list: solver and preconditioner types and their parameters, tolerances,
iteration limits, and monitors that print to the console. Options that read or write
files (``options_file``, ``log_view``, viewers such as ``ksp_view = "ascii:out.txt"``)
and values that name a file or a viewer are refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solver.config import units
from solver.config.values import Values, shown
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
_SOLVER_KEYS = ("linear", "quadrature_degree", "petsc", "mass", "newton", "newton_fraction")
MASS_MATRICES = ("lumped", "consistent")
#: how Newton stops: the update against the time tolerances, or the residual only
NEWTON_RULES = ("error", "residual")
#: options that ask for a residual tolerance: with one of them, newton defaults to residual
_RESIDUAL_OPTIONS = ("snes_rtol", "snes_atol", "snes_stol")

# -- the PETSc allow-list -----------------------------------------------------------
#: prefixes of the sub-solvers the solver sets up: its field split's blocks, the
#: levels of a multigrid, the blocks of block-Jacobi/ASM (nested, e.g.
#: fieldsplit_cytosol_mg_levels_ksp_type)
_PETSC_PREFIXES = re.compile(r"^(?:mg_(?:levels|coarse)_(?:sub_)?|sub_)?")
_PETSC_OPTIONS = re.compile(
    r"^(?:"
    # Newton
    r"snes_(?:type|rtol|atol|stol|max_it|max_funcs|divergence_tolerance|max_fail"
    r"|lag_jacobian|lag_preconditioner|lag_jacobian_persists|lag_preconditioner_persists"
    r"|linesearch_(?:type|damping|max_it|order|minlambda|alpha|maxstep)"
    r"|ksp_ew|ksp_ew_version|ksp_ew_rtol0|ksp_ew_rtolmax|ksp_ew_gamma|ksp_ew_alpha"
    r"|force_iteration|error_if_not_converged)"
    # Krylov
    r"|ksp_(?:type|rtol|atol|divtol|max_it|initial_guess_nonzero|norm_type|pc_side"
    r"|gmres_restart|gmres_modifiedgramschmidt|gmres_cgs_refinement_type|gmres_preallocate"
    r"|lgmres_augment|gcr_restart|fgmres_restart|chebyshev_eigenvalues|chebyshev_esteig"
    r"|chebyshev_esteig_steps|richardson_scale|reuse_preconditioner|error_if_not_converged"
    r"|converged_use_initial_residual_norm|min_it)"
    # preconditioners
    r"|pc_(?:type|factor_mat_solver_type|factor_levels|factor_fill|factor_mat_ordering_type"
    r"|factor_shift_type|factor_shift_amount|factor_pivot_in_blocks|factor_reuse_ordering"
    r"|factor_nonzeros_along_diagonal|fieldsplit_type|fieldsplit_schur_fact_type"
    r"|fieldsplit_schur_precondition|bjacobi_blocks|asm_overlap|asm_type|jacobi_type"
    r"|jacobi_abs|sor_omega|sor_its|sor_lits|sor_symmetric|sor_forward|sor_backward"
    r"|mg_levels|mg_cycle_type|mg_type|mg_smoothup|mg_smoothdown|mg_galerkin"
    r"|gamg_type|gamg_threshold|gamg_threshold_scale|gamg_agg_nsmooths|gamg_square_graph"
    r"|gamg_sym_graph|gamg_coarse_eq_limit|gamg_process_eq_limit|gamg_repartition"
    r"|gamg_reuse_interpolation|gamg_use_parallel_coarse_grid_solver|gamg_esteig_ksp_type"
    r"|gamg_esteig_ksp_max_it|gamg_aggressive_coarsening|gamg_aggressive_square_graph"
    r"|gamg_mis_k_minimum_degree_ordering|gamg_low_memory_threshold_filter"
    r"|gamg_recompute_esteig|gamg_agg_type|gamg_max_levels"
    r"|hypre_type|hypre_boomeramg_(?:strong_threshold|coarsen_type|interp_type|max_iter"
    r"|tol|relax_type_all|relax_type_up|relax_type_down|relax_type_coarse|agg_nl"
    r"|agg_num_paths|max_levels|truncfactor|P_max|numfunctions|nodal_coarsen)"
    r"|ilu_levels|composite_type)"
    # MUMPS's numerical controls (icntl 1-4 are output streams, refused)
    r"|mat_mumps_icntl_(?:[5-9]|1[0-9]|2[0-9]|3[0-8]|4[89]|5[0-8])|mat_mumps_cntl_[1-7]"
    # printing to the console
    r"|ksp_monitor|ksp_monitor_true_residual|ksp_converged_reason|ksp_view"
    r"|ksp_view_singularvalues|ksp_monitor_singular_value|snes_monitor|snes_converged_reason"
    r"|snes_linesearch_monitor|snes_view|snes_monitor_short"
    r")$"
)
_PETSC_FLAGS = re.compile(r"(?:^|_)(?:monitor\w*|converged_reason|view\w*)$")
# a value: a number, a word (solver type, enum) or a comma-separated list of them
_PETSC_VALUE = re.compile(r"^[A-Za-z0-9_.+-]+(?:,[A-Za-z0-9_.+-]+)*$")
_PETSC_VALUE_LENGTH = 64


def petsc_option_error(
    key: str, value: str, compartments: tuple[str, ...] = ("cytosol", "membrane")
) -> str | None:
    """Why the PETSc option ``key`` (no leading ``-``) = ``value`` is refused, or None.

    The options of the allow-list (see the module docstring), on the solver itself or
    under the prefixes of its sub-solvers (``fieldsplit_NAME_`` for each of the
    ``compartments``, ``mg_levels_``, ``mg_coarse_``, ``sub_``). Monitors and
    views are flags: they print to the console, with no viewer or file argument.
    Values are numbers or words, never a path or a viewer (``/``, ``:``, ``~``).
    """
    if not re.fullmatch(r"[a-z0-9_]+", key):
        return "expected a PETSc option name (lowercase letters, digits and '_')"
    for name in sorted(compartments, key=len, reverse=True):
        split = f"fieldsplit_{name.lower()}_"
        if key.startswith(split):
            key = key[len(split) :]
            break
    prefix = _PETSC_PREFIXES.match(key)
    body = key[prefix.end() :] if prefix else key
    if not _PETSC_OPTIONS.match(body):
        return (
            "not an allowed PETSc option (allowed: solver and preconditioner types and "
            "parameters, tolerances, iteration limits, console monitors; no file access)"
        )
    if _PETSC_FLAGS.search(body):
        if value not in ("", "false"):
            return (
                f"a monitor or view is a flag (true or false) that prints to the console; "
                f"got {shown(value)}: no viewer or file"
            )
        return None
    if value in ("", "false") and re.search(r"(?:_type|_it|tol|_levels|_restart)$", body):
        return "expected a value (a number or a name), not a flag"
    if value and (len(value) > _PETSC_VALUE_LENGTH or not _PETSC_VALUE.match(value)):
        return (
            f"expected a number or a name (letters, digits, '_', '.', '+', '-'), got "
            f"{shown(value)}: values cannot name files or viewers"
        )
    return None


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
        newton: When Newton stops: ``error``, when its update is a fraction
            ``newton_fraction`` of the error a time step may make (``[time]`` rtol and
            atol), or ``residual``, at PETSc's residual tolerances (snes_rtol 1e-10).
    """

    linear: str = "iterative"
    quadrature_degree: int = 4
    petsc: Mapping[str, str] = field(default_factory=dict)
    mass: str = "lumped"
    newton: str = "error"
    newton_fraction: float = 0.01


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
        scheme = self.v.choice("time.scheme", table.get("scheme", "bdf2"), SCHEMES)
        adaptive = self.v.flag("time.adaptive", table.get("adaptive", False))
        limits = self.v.limits
        if not adaptive and end / dt > limits.time_steps:
            raise InputError(
                "time.dt",
                limits.exceeded(
                    "time_steps", f"time.end / time.dt = {end / dt:.3g} fixed time steps"
                ),
            )
        rtol = self.v.positive("time.rtol", table.get("rtol", 1e-3), "dimensionless")
        atol = self.v.positive("time.atol", table.get("atol", 1e-4), None)
        dt_min = self.v.positive("time.dt_min", table.get("dt_min", 1e-9 * end), "time")
        dt_max = (
            self.v.positive("time.dt_max", table["dt_max"], "time") if "dt_max" in table else end
        )
        if dt_min > min(dt, dt_max):
            raise InputError("time.dt_min", f"expected at most dt and dt_max, got {dt_min:g} s")
        reject = self.v.flag("time.reject_negative", table.get("reject_negative", True))
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
        limits = self.v.limits
        if time.end / every > limits.outputs:
            raise InputError(
                "output.every",
                limits.exceeded(
                    "outputs", f"time.end / output.every = {time.end / every:.3g} outputs"
                ),
            )
        folder = self.v.path("output.dir", table["dir"]) if "dir" in table else None
        sim_every = wall_every = None
        cadence = table.get("checkpoint_every")
        if isinstance(cadence, str) and cadence.strip().endswith(_WALL_SUFFIX):
            text = cadence.strip()[: -len(_WALL_SUFFIX)].strip()
            wall_every = self.v.positive("output.checkpoint_every", text, "time")
        elif cadence is not None:
            sim_every = self.v.positive("output.checkpoint_every", cadence, "time")
            if time.end / sim_every > limits.outputs:
                raise InputError(
                    "output.checkpoint_every",
                    limits.exceeded(
                        "outputs",
                        f"time.end / output.checkpoint_every = {time.end / sim_every:.3g} "
                        "checkpoints",
                    ),
                )
        return OutputConfig(
            every=every,
            dir=folder,
            progress=progress,
            checkpoint_every=sim_every,
            checkpoint_wall=wall_every,
        )

    def solver(
        self, table: Mapping[str, Any], compartments: tuple[str, ...] = ("cytosol", "membrane")
    ) -> SolverConfig:
        """Read and check the ``[solver]`` table.

        Args:
            table: The ``[solver]`` table of the run file.
            compartments: The names of the compartments (each has its field split).

        Returns:
            The solver configuration.

        Raises:
            InputError: A key is unknown or malformed.
        """
        self.v.keys("solver", table, _SOLVER_KEYS)
        linear = self.v.choice("solver.linear", table.get("linear", "iterative"), LINEAR_SOLVERS)
        degree = table.get("quadrature_degree", 4)
        if isinstance(degree, bool) or not isinstance(degree, int) or not 1 <= degree <= 12:
            raise InputError(
                "solver.quadrature_degree", f"expected an integer 1..12, got {shown(degree)}"
            )
        petsc = self.v.table("solver.petsc", table.get("petsc", {}))
        options = {}
        for k, v in petsc.items():
            key = f"solver.petsc.{k}"
            if isinstance(v, Mapping | list):
                raise InputError(key, "expected a string, number or boolean")
            if isinstance(v, float) and not math.isfinite(v):
                raise InputError(key, f"expected a finite number, got {v!r}")
            # a flag (true) is given without a value, as on PETSc's command line
            value = ("" if v else "false") if isinstance(v, bool) else str(v)
            name = k.lstrip("-")
            problem = petsc_option_error(name, value.strip(), compartments)
            if problem is not None:
                raise InputError(key, problem)
            if name in options:
                raise InputError(key, f"given twice (as '{name}')")
            options[name] = value.strip()
        mass = self.v.choice("solver.mass", table.get("mass", "lumped"), MASS_MATRICES)
        # residual tolerances in [solver.petsc] ask for the residual rule, unless it is named
        residual = any(k in options for k in _RESIDUAL_OPTIONS)
        newton = self.v.choice(
            "solver.newton", table.get("newton", "residual" if residual else "error"), NEWTON_RULES
        )
        fraction = self.v.positive(
            "solver.newton_fraction", table.get("newton_fraction", 0.01), "dimensionless"
        )
        if fraction > 1:
            raise InputError("solver.newton_fraction", f"expected at most 1, got {fraction:g}")
        return SolverConfig(
            linear=linear,
            quadrature_degree=degree,
            petsc=options,
            mass=mass,
            newton=newton,
            newton_fraction=fraction,
        )
