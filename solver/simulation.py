"""A run file made discrete: mesh → stimuli → forms → Newton problem → stepper.

:class:`Simulation` builds the system of a :class:`~solver.config.RunConfig` and
observes it (totals, pools, polarity read-outs); the time loop that drives it and
writes its outputs is :func:`solver.time.loop.integrate`.
"""

from __future__ import annotations

import logging
import time as wallclock
from pathlib import Path
from typing import Any

from mpi4py import MPI

import numpy as np
import ufl
from dolfinx import fem
from dolfinx.la import InsertMode

from solver.config.runfile import RunConfig
from solver.errors import InputError
from solver.fem import forms as system_forms
from solver.fem.forms import Block
from solver.fem.geometry import CellGeometry
from solver.fem.newton import NewtonRule
from solver.fem.nodes import NodeLayout
from solver.fem.placement import check_stimuli
from solver.fem.problem import Problem, SolveInfo
from solver.fem.readouts import MembraneReadouts, flatten, milestones
from solver.io.checkpoint import Stored
from solver.mesh import meshing
from solver.model.model import COORDINATES, SPECIES_UNITS, TIME, noise_field
from solver.model.stimulus import StimulusField, state_at
from solver.time.schemes import error_span
from solver.time.stepper import Stepper

log = logging.getLogger(__name__)


class Simulation:
    """A configured bulk–surface system, ready to step in time.

    Collective: every rank of ``comm`` constructs it and calls its methods.
    """

    def __init__(self, config: RunConfig, comm: MPI.Comm = MPI.COMM_WORLD) -> None:
        self.config = config
        self.comm = comm
        t0 = wallclock.perf_counter()
        tagged = meshing.cell_mesh(config, comm)
        model = config.model
        try:
            self.geometry = CellGeometry.from_tagged(
                tagged, model.declared, {c.name for c in model.compartments}
            )
        except InputError as err:
            raise err.located(config.source) from None
        self.center = self._centroid()
        try:  # before the forms: a stimulus that does not fit the cell costs nothing
            check_stimuli(config.model.stimuli, self.geometry, self.center)
        except InputError as err:
            raise err.located(config.source) from None
        self.stimuli = {
            name: StimulusField(
                s,
                np.asarray(s.center if s.center is not None else self.center, dtype=float),
                model.parameters,
            )
            for name, s in model.stimuli.items()
        }
        symbols = {}
        for f in self.stimuli.values():
            symbols.update(f.expression(self.geometry.mesh))
        self.forms = system_forms.build(
            model,
            self.geometry,
            config.solver.quadrature_degree,
            symbols,
            lumped=config.solver.mass == "lumped",
        )
        try:
            self.problem = Problem(
                self.forms,
                config.solver.linear,
                config.solver.petsc,
                NewtonRule(
                    config.solver.newton,
                    config.time.rtol,
                    config.time.atol,
                    config.solver.newton_fraction,
                ),
            )
        except InputError as err:
            raise err.located(config.source) from None
        self.timings: dict[str, float] = {"setup": wallclock.perf_counter() - t0}
        self.pools = config.model.conserved_pools()
        self.problem.conserve([p.weights for p in self.pools])
        self._weights = [self._lumped_mass(b) for b in self.forms.blocks]
        self._membrane_outputs()
        self.layouts = {b.name: NodeLayout(b.space) for b in self.blocks}
        self.size = max(float(np.ptp(self.geometry.mesh.geometry.x, axis=0).max()), 0.0)
        self.size = self.comm.allreduce(self.size, op=MPI.MAX)
        self.stepper = Stepper(
            self.forms,
            self.problem,
            config.time.scheme,
            comm,
            self.update_stimuli,
            span=error_span(config.time.end, config.output.every),
        )
        self.history: list[dict[str, float]] = []  # the rows of metrics.csv so far
        self.set_initial()

    def _centroid(self) -> np.ndarray:
        """Centre of the cytosol (µm), the reference point of gradients and caps."""
        x = ufl.SpatialCoordinate(self.geometry.mesh)
        dx = self.geometry.dx
        parts = [fem.assemble_scalar(fem.form(x[i] * dx)) for i in range(self.geometry.gdim)]
        parts.append(fem.assemble_scalar(fem.form(fem.Constant(self.geometry.mesh, 1.0) * dx)))
        values = self.comm.allreduce(np.array(parts), op=MPI.SUM)
        center = np.zeros(3)
        center[: self.geometry.gdim] = values[:-1] / values[-1]
        return center

    def _membrane_outputs(self) -> None:
        """Stimuli sampled on the membrane (written with it) and the polarity read-outs."""
        self.derived: dict[str, tuple[fem.Function, fem.Expression]] = {}
        self.derived_dofs = None  # their dofs' places in the membrane block
        self.readouts = None
        membrane = self.config.model.membrane
        self.membrane = next((b for b in self.blocks if b.name == membrane), None)
        if self.membrane is None:
            return
        space, self.derived_dofs = self.membrane.component(0)
        points = space.element.interpolation_points
        for f in self.stimuli.values():
            for name, expr in f.expression(self.geometry.membrane).items():
                self.derived[name] = (fem.Function(space, name=name), fem.Expression(expr, points))
        m = self.config.metrics
        if m.species or m.correlations:
            self.readouts = MembraneReadouts(self.geometry, space, self.center, m.cap_angle)
            self._owned = space.dofmap.index_map.size_local
            self._dofs = {
                n: self.membrane.component(k)[1][: self._owned]
                for k, n in enumerate(self.membrane.species)
            }

    def update_stimuli(self, t: float, before: bool = False) -> None:
        """Set every stimulus to its state at ``t`` (s), or just before ``t`` (``before``)."""
        for f in self.stimuli.values():
            f.update(t, before)

    def direction(self, t: float) -> np.ndarray | None:
        """Gradient direction of the read-outs' stimulus at ``t`` (unit vector), if it has one."""
        name = self.config.metrics.stimulus
        if name is None:
            return None
        if name in self.config.model.solved:  # a solved field: towards its source
            position = self.config.model.solved[name]
            if position is None:
                return None
            p = np.zeros(3)
            p[: len(position)] = position
            d = p - self.center
            return d / np.linalg.norm(d)
        s = self.config.model.stimuli[name]
        state = state_at(s, t)
        if s.kind in ("linear", "exponential"):
            return state.direction
        if s.kind == "point_source":
            assert state.position is not None  # a point source has a position
            d = state.position - self.stimuli[name].center[: state.position.size]
            return np.pad(d, (0, 3 - d.size)) / np.linalg.norm(d)
        return None

    def observe(self) -> dict[str, float]:
        """Totals and polarity read-outs at the current time (collective)."""
        row = self.totals()
        self.update_stimuli(self.t)
        for f, expr in self.derived.values():
            f.interpolate(expr)
        if self.readouts is None:
            return row
        m, r = self.config.metrics, self.readouts
        d = self.direction(self.t)
        assert self.membrane is not None  # the read-outs are on the membrane
        u = self.membrane.u.x.array
        occupancy = None
        if m.stimulus is not None and f"{m.stimulus}_occupancy" in self.derived:
            occupancy = self.derived[f"{m.stimulus}_occupancy"][0].x.array[: self._owned]
        fb_occupancy = (
            r.front_back(occupancy, d[: r.gdim])
            if occupancy is not None and d is not None
            else None
        )
        for name in m.species:
            values = r.of(u[self._dofs[name]], d)
            if fb_occupancy is not None:
                gain = np.log(fb_occupancy)  # 0 without a gradient: no gain defined
                values["loggain"] = float(np.log(values["FB"]) / gain) if gain else float("nan")
            row.update(flatten(name, values))
        for a, b in m.correlations:
            row[f"corr_{a}_{b}"] = r.correlation(u[self._dofs[a]], u[self._dofs[b]])
        return row

    def close(self) -> None:
        """Free the PETSc objects now, on every rank together (collective).

        Left to the garbage collector, they would be destroyed at different times
        on different ranks, and a collective destroy would hang.
        """
        self.problem.destroy()

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- state -----------------------------------------------------------------
    @property
    def blocks(self) -> list[Block]:
        """The compartments' blocks (space, state, history) of the system."""
        return self.forms.blocks

    @property
    def t(self) -> float:
        """The time of the current state (s)."""
        return self.stepper.t

    def step(self, dt: float) -> SolveInfo:
        """Advance by ``dt`` seconds (see :meth:`solver.time.stepper.Stepper.step`)."""
        return self.stepper.step(dt)

    def load_checkpoint(self, stored: Stored) -> None:
        """Continue from a checkpoint read with :func:`solver.io.checkpoint.read`.

        Raises InputError when the checkpoint does not fit this run (species, mesh).
        """
        self.stepper.load(stored, self.layouts, 1e-8 * max(1.0, self.size))

    def species_function(self, name: str) -> fem.Function:
        """A new scalar P1 function with the current values of species ``name``."""
        for b in self.blocks:
            if name in b.species:
                space, dofs = b.component(b.index(name))
                f = fem.Function(space, name=name)
                f.x.array[:] = b.u.x.array[dofs]
                return f
        raise KeyError(name)

    def set_initial(self) -> None:
        """Interpolate the initial values (numbers or expressions in x, y, z)."""
        params = dict(self.config.model.parameters)
        for b in self.blocks:
            species = [self.config.model.species[n] for n in b.species]

            def values(X, species=species):
                symbols = {c: X[i] for i, c in enumerate(COORDINATES)}
                symbols[TIME] = 0.0
                symbols.update(params)
                rows = []
                for s in species:
                    v = s.initial if isinstance(s.initial, float) else s.initial.evaluate(symbols)
                    v = np.broadcast_to(np.asarray(v, dtype=float), X.shape[1:])
                    if s.noise:
                        v = v * (1.0 + s.noise * noise_field(X))
                    rows.append(v)
                return np.vstack(rows)

            b.u.interpolate(values)
        self.stepper.start(0.0)

    def _lumped_mass(self, block) -> np.ndarray:
        """∫ φ_j for every owned dof (µm³ or µm²): totals are exact dot products with it."""
        measure = self.geometry.own(block.name)
        v = ufl.TestFunction(block.space)
        ones = fem.Constant(block.space.mesh, np.ones(len(block.species)))
        vec = fem.assemble_vector(fem.form(ufl.inner(ones, v) * measure))
        vec.scatter_reverse(InsertMode.add)
        n = block.space.dofmap.index_map.size_local * block.space.dofmap.index_map_bs
        return vec.array[:n].copy()

    def totals(self) -> dict[str, float]:
        """Total amount of every species and conserved pool (µM·µm³), global."""
        local = []
        names = []
        for b, w in zip(self.blocks, self._weights, strict=True):
            n = len(b.species)
            values = b.u.x.array[: w.size]
            for k, name in enumerate(b.species):
                local.append(float(np.dot(w[k::n], values[k::n])))
                names.append(name)
        totals = dict(zip(names, self.comm.allreduce(np.array(local), op=MPI.SUM), strict=True))
        result = {f"total_{n}": float(v) for n, v in totals.items()}
        for pool in self.pools:
            result[f"pool_{pool.name}"] = float(
                sum(float(w) * totals[s] for s, w in pool.weights.items())
            )
        return result

    def resolved(self) -> dict[str, Any]:
        """The run's values in solver units (µm, s, µM, µM·µm), as used."""
        cfg, model = self.config, self.config.model
        return {
            "units": {
                "length": "um",
                "time": "s",
                **{c.name: SPECIES_UNITS[c.kind] for c in model.declared.values()},
            },
            "compartments": {
                c.name: {
                    "kind": c.kind.value,
                    **({"inside": c.inside} if c.inside else {}),
                    **({"outside": c.outside} if c.outside else {}),
                }
                for c in model.declared.values()
            },
            "mesh": {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.mesh.items()},
            "time": {
                "end": cfg.time.end,
                "dt": cfg.time.dt,
                "scheme": cfg.time.scheme,
                "adaptive": cfg.time.adaptive,
                **(
                    {k: getattr(cfg.time, k) for k in ("rtol", "atol", "dt_min", "dt_max")}
                    if cfg.time.adaptive
                    else {}
                ),
            },
            "mass_matrix": cfg.solver.mass,
            "output_every": cfg.output.every,
            "parameters": dict(model.parameters),
            "species": {
                s.name: {
                    "compartment": s.compartment,
                    "D": s.D,
                    "initial": s.initial if isinstance(s.initial, float) else s.initial.text,
                    "noise": s.noise,
                }
                for s in model.species.values()
            },
            "reactions": {
                r.name: {
                    "location": r.location,
                    "rate": r.rate.text,
                    "stoichiometry": r.stoichiometry,
                }
                for r in model.reactions.values()
            },
            "conserved_pools": [p.name for p in self.pools],
            "petsc_options": dict(self.problem.options),
            "krylov_rtol": self._krylov_rtol(),
        }

    def _krylov_rtol(self) -> dict[str, Any] | None:
        """GMRES's relative tolerance: fixed, or set by Newton's error rule (None: LU)."""
        problem = self.problem
        forcing = problem.error_test.forcing if problem.error_test is not None else None
        if forcing is not None:
            return forcing.describe()
        return {"fixed": float(problem.options["ksp_rtol"])} if problem.krylov else None

    def milestones(self) -> dict[str, dict[str, float | None]]:
        """t50 and t90 of the polarisation index of each read-out species (s)."""
        times = [r["t"] for r in self.history]
        return {
            name: milestones(times, [r.get(f"PI_{name}", float("nan")) for r in self.history])
            for name in self.config.metrics.species
        }
