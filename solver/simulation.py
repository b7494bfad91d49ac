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

from solver import forms as system_forms
from solver import io, meshing
from solver.config import RunConfig
from solver.errors import InputError
from solver.geometry import CellGeometry
from solver.model import COORDINATES, TIME, Compartment
from solver.problem import Problem, SolveInfo
from solver.timestepping import Clock, bdf_coefficients, output_times

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a finished (or failed) run reports."""

    status: str  # "completed" | "failed"
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
        self.forms = system_forms.build(
            config.model, self.geometry, config.solver.quadrature_degree
        )
        self.problem = Problem(self.forms, config.solver.linear, config.solver.petsc)
        self.timings: dict[str, float] = {"setup": wallclock.perf_counter() - t0}
        self.pools = config.model.conserved_pools()
        self._weights = [self._lumped_mass(b) for b in self.forms.blocks]
        self.t = 0.0
        self.dt_prev: float | None = None
        self.set_initial()

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

    def field(self, name: str) -> tuple[fem.Function, int]:
        """The blocked function holding species ``name`` and its component index."""
        for b in self.blocks:
            if name in b.species:
                return b.u, b.index(name)
        raise KeyError(name)

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
                    rows.append(np.broadcast_to(np.asarray(v, dtype=float), X.shape[1:]))
                return np.vstack(rows)

            b.u.interpolate(values)
            for h in b.history:
                h.x.array[:] = b.u.x.array
        self.t = 0.0
        self.dt_prev = None
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
        c = bdf_coefficients(self.config.time.scheme, dt, self.dt_prev)
        for b in self.blocks:
            for const, value in zip(b.bdf, c, strict=True):
                const.value = value
        self.forms.time.value = self.t + dt
        info = self.problem.solve()
        if not info.converged:
            for b in self.blocks:
                b.u.x.array[:] = b.history[0].x.array
            self.forms.time.value = self.t
            return info
        for b in self.blocks:
            b.history[1].x.array[:] = b.history[0].x.array
            b.history[0].x.array[:] = b.u.x.array
        self.t += dt
        self.dt_prev = dt
        return info

    def run(
        self,
        out_dir: Path | None = None,
        overwrite: bool = False,
        extra_record: dict[str, Any] | None = None,
    ) -> RunResult:
        """Integrate to ``time.end``, writing outputs to ``out_dir`` (or only in memory if None)."""
        cfg = self.config
        start = wallclock.perf_counter()
        times = output_times(cfg.time.end, cfg.output.every)
        clock = Clock(end=cfg.time.end, dt=cfg.time.dt, t=self.t, milestones=times)
        writers: list[io.FieldWriter] = []
        metrics = None
        record: dict[str, Any] = {}
        if out_dir is not None:
            io.prepare_output_dir(out_dir, self.comm, overwrite)
            for b in self.blocks:
                writers.append(io.FieldWriter(out_dir / f"{b.compartment.value}.xdmf", b))
            columns = ["t", "dt", "newton_iterations", "linear_iterations", *self.totals().keys()]
            metrics = io.MetricsWriter(out_dir / "metrics.csv", columns, self.comm)
            record = {
                "status": "running",
                "source": cfg.source,
                "command": io.command_line(),
                "config": cfg.document,
                "versions": io.versions(),
                "mpi_ranks": self.comm.size,
                "unknowns": self.problem.unknowns,
                "mesh": meshing.summary(self.geometry.tagged),
                **(extra_record or {}),
            }
            io.write_run_json(out_dir / "run.json", record, self.comm)

        def output(info: SolveInfo | None, dt: float) -> dict[str, float]:
            row = {
                "t": self.t,
                "dt": dt,
                "newton_iterations": info.newton_iterations if info else 0,
                "linear_iterations": info.linear_iterations if info else 0,
                **self.totals(),
            }
            for w in writers:
                w.write(self.t)
            if metrics:
                metrics.write(row)
            return row

        row = output(None, 0.0)
        next_output = 1
        steps = 0
        status, reason = "completed", ""
        last_progress = wallclock.perf_counter()
        try:
            while not clock.done:
                dt = clock.next_step()
                info = self.step(dt)
                if not info.converged:
                    status = "failed"
                    reason = (
                        f"Newton did not converge at t = {self.t:g} s with dt = {dt:g} s "
                        f"({info.reason}); try a smaller time.dt"
                    )
                    break
                clock.advance(dt)
                self.t = clock.t
                steps += 1
                if next_output < len(times) and self.t >= times[next_output] - 1e-9 * dt:
                    row = output(info, dt)
                    next_output += 1
                now = wallclock.perf_counter()
                if now - last_progress >= cfg.output.progress or clock.done:
                    elapsed = now - start
                    eta = elapsed * (cfg.time.end - self.t) / max(self.t, 1e-300)
                    log.info(
                        "t = %.6g / %.6g s  dt = %.3g s  Newton %d  wall %.1f s  ETA %.1f s",
                        self.t,
                        cfg.time.end,
                        dt,
                        info.newton_iterations,
                        elapsed,
                        eta,
                    )
                    last_progress = now
        finally:
            for w in writers:
                w.close()
            if metrics:
                metrics.close()
        wall = wallclock.perf_counter() - start
        result = RunResult(status, self.t, steps, reason, wall, out_dir, row)
        if out_dir is not None:
            record.update(
                status=status,
                reason=reason,
                t=self.t,
                steps=steps,
                wall_time={"setup": self.timings["setup"], "run": wall},
                final=row,
            )
            io.write_run_json(out_dir / "run.json", record, self.comm)
        return result
