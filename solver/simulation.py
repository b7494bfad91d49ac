"""Orchestration: run file → mesh → forms → problem → time loop → outputs."""

from __future__ import annotations

import logging
import time as wallclock
from dataclasses import dataclass, field
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
from solver.fem.geometry import CellGeometry
from solver.fem.nodes import NodeLayout
from solver.fem.problem import Problem, SolveInfo
from solver.fem.readouts import MembraneReadouts, flatten, milestones
from solver.io.checkpoint import restore
from solver.mesh import meshing
from solver.model.model import COORDINATES, TIME, Compartment, noise_field
from solver.model.stimulus import StimulusField, state_at
from solver.time.schemes import StepControl, bdf_coefficients, local_error, order_of

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a finished (or failed) run reports."""

    status: str  # "completed" | "stopped" (wall time, signal) | "failed"
    t: float
    steps: int
    reason: str = ""
    wall_time: float = 0.0
    out_dir: Path | None = None
    final: dict[str, float] = field(default_factory=dict)


class Simulation:
    """A configured bulk–surface system, ready to step in time.

    Collective: every rank of ``comm`` constructs it and calls its methods.
    """

    def __init__(self, config: RunConfig, comm: MPI.Comm = MPI.COMM_WORLD) -> None:
        self.config = config
        self.comm = comm
        t0 = wallclock.perf_counter()
        try:
            tagged = meshing.mesh_from_config(config.mesh, comm, config.base_dir)
        except meshing.MeshError as err:
            raise InputError(f"{config.source}: mesh", str(err)) from None
        self.geometry = CellGeometry.from_tagged(tagged)
        self.center = self._centroid()
        model = config.model
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
        self.problem = Problem(self.forms, config.solver.linear, config.solver.petsc)
        self.timings: dict[str, float] = {"setup": wallclock.perf_counter() - t0}
        self.pools = config.model.conserved_pools()
        self._weights = [self._lumped_mass(b) for b in self.forms.blocks]
        self._membrane_outputs()
        self.layouts = {b.compartment.value: NodeLayout(b.space) for b in self.blocks}
        self.size = max(float(np.ptp(self.geometry.mesh.geometry.x, axis=0).max()), 0.0)
        self.size = self.comm.allreduce(self.size, op=MPI.MAX)
        self.t = 0.0
        self.dt_prev: float | None = None
        self.past_times: list[float] = [0.0]  # times of U^n, U^{n-1}, U^{n-2} (s)
        self.oldest: list[np.ndarray] | None = None  # U^{n-2} per block, for error estimates
        self._coefficients = (0.0, 0.0, 0.0)
        self.history: list[dict[str, float]] = []
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
        self.membrane = next(
            (b for b in self.blocks if b.compartment == Compartment.MEMBRANE), None
        )
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
        s = self.config.model.stimuli[name]
        state = state_at(s, t)
        if s.kind in ("linear", "exponential"):
            return state.direction
        if s.kind == "point_source":
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
    def blocks(self):
        return self.forms.blocks

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
            for h in b.history:
                h.x.array[:] = b.u.x.array
        self.t = 0.0
        self.restart_history()
        self.forms.time.value = 0.0

    def _lumped_mass(self, block) -> np.ndarray:
        """∫ φ_j for every owned dof (µm³ or µm²): totals are exact dot products with it."""
        measure = self.geometry.dx if block.compartment == Compartment.CYTOSOL else self.geometry.dm
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

    # -- stepping ----------------------------------------------------------------
    def step(self, dt: float) -> SolveInfo:
        """Advance by ``dt`` seconds with the configured scheme; on failure the state is kept."""
        info = self.attempt(dt)
        if info.converged:
            self.accept(dt)
        return info

    def attempt(self, dt: float) -> SolveInfo:
        """Solve the step from ``t`` to ``t + dt`` into ``u``, leaving the history as is.

        Follow with :meth:`accept` or :meth:`revert`; a failed solve is reverted here.
        """
        c = bdf_coefficients(self.config.time.scheme, dt, self.dt_prev)
        self._coefficients = c
        for b in self.blocks:
            for const, value in zip(b.bdf, c, strict=True):
                const.value = value
        self.forms.time.value = self.t + dt
        # a step ending at an event's time integrates the stimulus from before the event
        self.update_stimuli(self.t + dt, before=True)
        info = self.problem.solve()
        if not info.converged:
            self.revert()
        return info

    def revert(self) -> None:
        """Undo an attempted step: ``u`` and the time go back to ``U^n`` at ``t``."""
        for b in self.blocks:
            b.u.x.array[:] = b.history[0].x.array
        self.forms.time.value = self.t
        self.update_stimuli(self.t)

    def accept(self, dt: float) -> None:
        """Make the attempted step the new state at ``t + dt``."""
        self.oldest = [b.history[1].x.array.copy() for b in self.blocks]
        for b in self.blocks:
            b.history[1].x.array[:] = b.history[0].x.array
            b.history[0].x.array[:] = b.u.x.array
        self.t += dt
        self.past_times = [self.t, *self.past_times][:3]
        self.dt_prev = dt

    def restart_history(self) -> None:
        """Forget the past states: the next step is a one-step (backward Euler) start.

        Used after a stimulus event, where the solution has a kink in time.
        """
        self.dt_prev = None
        self.past_times = [self.t]
        self.oldest = None

    def order(self) -> int:
        """Order of the next step (BDF2 starts with a backward-Euler step)."""
        return order_of(self.config.time.scheme, self.dt_prev)

    def local_error(self, control: StepControl) -> float | None:
        """Weighted RMS of the local error estimate of the attempted step (collective).

        None when the past states needed for an estimate are not there yet.
        """
        times = [self.forms.time.value.item(), *self.past_times]
        order = self.order()
        if len(times) < order + 2:
            return None
        total, count = 0.0, 0
        for k, b in enumerate(self.blocks):
            n = _owned(b)
            states = [b.u.x.array, b.history[0].x.array, b.history[1].x.array]
            if self.oldest is not None:
                states.append(self.oldest[k])
            error = local_error(order, self._coefficients, times, [x[:n] for x in states])
            weighted = error * control.weights(states[0][:n], states[1][:n])
            total += float(np.dot(weighted, weighted))
            count += n
        total, count = self.comm.allreduce(np.array([total, count]), op=MPI.SUM)
        dt = times[0] - times[1]
        return float(np.sqrt(total / count)) * control.span / dt

    def undershoot(self, atol: float) -> bool:
        """Whether the attempted step drives a value that was ≥ −atol below −atol (collective).

        Values already below (signed quantities, as in manufactured solutions) are not
        concentrations and are left alone.
        """
        low = False
        for b in self.blocks:
            n = _owned(b)
            new, old = b.u.x.array[:n], b.history[0].x.array[:n]
            low = low or bool(np.any((new < -atol) & (old >= -atol)))
        return self.comm.allreduce(low, op=MPI.LOR)

    # -- checkpoints -------------------------------------------------------------
    def states(self) -> dict[str, list[np.ndarray]]:
        """The integrator's history per compartment (U^n, U^{n-1}[, U^{n-2}]), owned nodes."""
        out = {}
        for k, b in enumerate(self.blocks):
            owned = _owned(b)
            arrays = [b.history[0].x.array, b.history[1].x.array]
            if self.oldest is not None:
                arrays.append(self.oldest[k])
            out[b.compartment.value] = [a[:owned].reshape(-1, len(b.species)) for a in arrays]
        return out

    def load_states(self, stored: Any, t: float, dt_prev: float | None, past: list[float]) -> None:
        """Set the state from a checkpoint read with :func:`solver.io.checkpoint.read`.

        Raises InputError when the checkpoint does not fit this run (species, mesh).
        """
        tolerance = 1e-8 * max(1.0, self.size)
        oldest = []
        for b in self.blocks:
            name = b.compartment.value
            block = stored.blocks.get(name)
            if block is None or block.species != list(b.species):
                raise InputError(
                    str(stored.path),
                    f"the {name} species of the checkpoint "
                    f"({', '.join(block.species) if block else 'none'}) differ from the run "
                    f"file's ({', '.join(b.species)})",
                )
            try:
                arrays = restore(block, self.layouts[name], tolerance)
            except ValueError as err:
                raise InputError(str(stored.path), str(err)) from None
            b.history[0].x.array[:] = arrays[0]
            b.history[1].x.array[:] = arrays[1]
            b.u.x.array[:] = arrays[0]
            oldest.append(arrays[2] if len(arrays) > 2 else None)
        self.oldest = oldest if all(o is not None for o in oldest) else None
        self.t = t
        self.dt_prev = dt_prev
        self.past_times = list(past)
        self.forms.time.value = t
        self.update_stimuli(t)

    def run(
        self,
        out_dir: Path | None = None,
        overwrite: bool = False,
        **options: Any,
    ) -> RunResult:
        """Integrate to ``time.end``, writing outputs to ``out_dir`` (or only in memory if None).

        ``options`` go to :class:`solver.time.loop.RunLoop` (restart, wall_time, started,
        overrides).
        """
        from solver.time.loop import RunLoop

        return RunLoop(self, out_dir, overwrite, **options).execute()

    def resolved(self) -> dict[str, Any]:
        """The run's values in solver units (µm, s, µM, µM·µm), as used."""
        cfg, model = self.config, self.config.model
        return {
            "units": {"length": "um", "time": "s", "cytosol": "uM", "membrane": "uM*um"},
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
                    "compartment": s.compartment.value,
                    "D": s.D,
                    "initial": s.initial if isinstance(s.initial, float) else s.initial.text,
                    "noise": s.noise,
                }
                for s in model.species.values()
            },
            "reactions": {
                r.name: {
                    "location": r.location.value,
                    "rate": r.rate.text,
                    "stoichiometry": r.stoichiometry,
                }
                for r in model.reactions.values()
            },
            "conserved_pools": [p.name for p in self.pools],
            "petsc_options": dict(self.problem.options),
        }

    def milestones(self) -> dict[str, dict[str, float | None]]:
        """t50 and t90 of the polarisation index of each read-out species (s)."""
        times = [r["t"] for r in self.history]
        return {
            name: milestones(times, [r.get(f"PI_{name}", float("nan")) for r in self.history])
            for name in self.config.metrics.species
        }


def _owned(block) -> int:
    """Number of the block's unknowns this rank owns (the first ones of its arrays)."""
    return block.u.x.index_map.size_local * block.u.x.block_size
