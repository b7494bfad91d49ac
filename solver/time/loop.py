"""The time loop of a run: stepping (fixed or adaptive), outputs, checkpoints, stops.

A run goes from its start (or from a checkpoint) to ``time.end`` and writes, in its
output folder, the field series (:mod:`solver.io.series`), ``metrics.csv``, ``run.json``
and ``checkpoint/state.h5`` (:mod:`solver.io.checkpoint`). Output cadence is declared
once: fields and metrics every ``output.every`` simulated seconds, a checkpoint at
every output time (or every ``output.checkpoint_every`` simulated or wall seconds)
and at the end, a progress line every ``output.progress`` wall seconds.

It stops early, at a step boundary and with a checkpoint, when the wall-time limit
comes near (status ``stopped``), on SIGTERM/SIGUSR1 from a batch system (``stopped``),
or when adaptive stepping needs a step below ``dt_min`` or a fixed step fails
(``failed``). Every rank runs the loop; decisions are agreed collectively.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import signal
import time as wallclock
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpi4py import MPI

from solver.fem.nodes import ROOT
from solver.fem.problem import SolveInfo
from solver.fem.readouts import readout_columns
from solver.io import checkpoint
from solver.io import files as io
from solver.io.annotate import field_table
from solver.io.series import FieldInfo, SeriesState, SeriesWriter
from solver.mesh import meshing
from solver.model.stimulus import event_times
from solver.time.schemes import Clock, StepControl, output_times

if TYPE_CHECKING:
    from solver.simulation import RunResult, Simulation

log = logging.getLogger("solver.simulation")

_STOP_SIGNALS = ("SIGTERM", "SIGUSR1")
_REJECTIONS = ("newton", "error", "negative")


_requested: list[str] = []  # names of the stop signals received


def stop_requested() -> str | None:
    """The stop signal received since :func:`stop_on_signals` (this rank), or None."""
    return f"received {_requested[-1]}" if _requested else None


def stop_on_signals() -> dict[str, Any]:
    """Turn SIGTERM and SIGUSR1 into a clean stop of the run at its next step boundary.

    Call it early (before forms are compiled: a compilation killed halfway leaves a
    stale file in the form cache). Returns the previous handlers.
    """

    def handler(signum, _frame) -> None:
        _requested.append(signal.Signals(signum).name)

    _requested.clear()
    previous = {}
    for name in _STOP_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[name] = signal.signal(sig, handler)
    return previous


class RunLoop:
    """One segment of a run (from the start or from a checkpoint) to ``time.end``.

    ``restart``: a checkpoint read with :func:`solver.io.checkpoint.read` (the run
    continues in the same output folder); ``wall_time``: stop before this many
    seconds after ``started`` (a ``time.perf_counter()`` value; default: now);
    ``overrides``: the ``--set`` items of this invocation (recorded). After
    :func:`stop_on_signals`, SIGTERM and SIGUSR1 stop it at the next step boundary.
    """

    def __init__(
        self,
        sim: Simulation,
        out_dir: Path | None,
        overwrite: bool = False,
        *,
        restart: checkpoint.Stored | None = None,
        wall_time: float | None = None,
        started: float | None = None,
        overrides: list[str] | None = None,
    ) -> None:
        self.sim = sim
        self.comm = sim.comm
        self.cfg = sim.config
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.overwrite = overwrite
        self.restart = restart
        self.started = wallclock.perf_counter() if started is None else started
        # this segment's own wall time (set-up included) counts from here, also when the
        # wall-time limit counts from an earlier start (members of a sweep)
        self.segment_start = wallclock.perf_counter() - sim.timings.get("setup", 0.0)
        self.wall_time = wall_time if wall_time is not None else self.cfg.time.wall_time
        self.overrides = list(overrides or [])
        tc = self.cfg.time
        span = min(tc.end, self.cfg.output.every)  # errors add up between two outputs
        self.control = StepControl(tc.rtol, tc.atol, tc.dt_min, tc.dt_max, span=span)
        self.times = output_times(tc.end, self.cfg.output.every)
        self.events = [e for e in event_times(self.cfg.model.stimuli) if 0.0 < e < tc.end]
        self.fields = field_table(self.cfg.model, sim.derived)  # units, descriptions
        self.writers: dict[str, SeriesWriter] = {}
        self.metrics: io.MetricsWriter | None = None
        self.record: dict[str, Any] = {}
        self.row: dict[str, float] = {}
        self.steps = 0
        self.rejected = dict.fromkeys(_REJECTIONS, 0)
        self.dt_range = [math.inf, 0.0]
        self.proposal = tc.dt
        self.next_output = 1
        self.next_checkpoint = math.inf
        self.checkpoint_seconds = 0.0
        self.last_checkpoint_wall = wallclock.perf_counter()
        self.step_walls: deque[float] = deque(maxlen=20)
        self._just_rejected = False
        self.wall_before = 0.0  # run wall time of earlier segments (s)

    # -- set-up ------------------------------------------------------------------
    def _fields(self, block) -> list[FieldInfo]:
        names = [*block.species, *(self.sim.derived if block is self.sim.membrane else [])]
        return [FieldInfo(n, self.fields[n]["units"], self.fields[n]["description"]) for n in names]

    def _columns(self) -> list[str]:
        sim, m = self.sim, self.cfg.metrics
        columns = [
            "t",
            "dt",
            "steps",
            "rejected_steps",
            "newton_iterations",
            "linear_iterations",
            *sim.totals(),
        ]
        if sim.readouts is not None:
            columns += readout_columns(
                m.species,
                m.correlations,
                sim.geometry.gdim,
                sim.direction(0.0) is not None,
                f"{m.stimulus}_occupancy" in sim.derived,
            )
        return columns

    def _open_outputs(self) -> None:
        sim, out = self.sim, self.out_dir
        meta = self.restart.meta if self.restart else None
        if meta is None:
            io.prepare_output_dir(out, self.comm, self.overwrite)
        for b in sim.blocks:
            name = b.compartment.value
            state = SeriesState([tuple(e) for e in meta["series"][name]]) if meta else None
            self.writers[name] = SeriesWriter(out / name, sim.layouts[name], self._fields(b), state)
        columns = self._columns()
        if meta is not None:
            rows = _truncate_metrics(out / "metrics.csv", columns, sim.t, self.comm)
            sim.history = rows
            self.row = rows[-1] if rows else {}
        self.metrics = io.MetricsWriter(out / "metrics.csv", columns, self.comm, append=bool(meta))
        if meta is not None:
            self.record = _read_json(out / "run.json", self.comm)
            from solver.io.restart import changes

            self.record.setdefault("restarts", []).append(
                {
                    "t": sim.t,
                    "mpi_ranks": self.comm.size,
                    "overrides": self.overrides,
                    "changes": changes(self.restart, self.cfg),
                }
            )
            self.record.update(
                status="running", mpi_ranks=self.comm.size, command=io.command_line()
            )
        else:
            self.record = {
                "status": "running",
                "source": self.cfg.source,
                "command": io.command_line(),
                "overrides": self.overrides,
                "config": self.cfg.document,
                "resolved": sim.resolved(),
                "versions": io.versions(),
                "mpi_ranks": self.comm.size,
                "unknowns": sim.problem.unknowns,
                "mesh": meshing.summary(sim.geometry.tagged),
                "fields": self.fields,
            }
        io.write_run_json(out / "run.json", self.record, self.comm)

    def _resume(self) -> None:
        """Counters and step sizes of the run so far, from the checkpoint."""
        meta = self.restart.meta
        self.steps = meta["steps"]
        self.rejected = dict(meta["rejected"])
        self.dt_range = list(meta["dt_range"])
        self.proposal = meta["proposal"]
        self.wall_before = meta["wall_time"]
        self.next_output = self._output_after(self.sim.t)

    def _output_after(self, t: float) -> int:
        """Index of the first output time after ``t`` (s), len(times) if none is left."""
        later = (k for k, s in enumerate(self.times) if s > t * (1 + 1e-12) + 1e-14)
        return next(later, len(self.times))

    # -- outputs -----------------------------------------------------------------
    def output(self, info: SolveInfo | None, dt: float) -> None:
        sim = self.sim
        row = {
            "t": sim.t,
            "dt": dt,
            "steps": self.steps,
            "rejected_steps": sum(self.rejected.values()),
            "newton_iterations": info.newton_iterations if info else 0,
            "linear_iterations": info.linear_iterations if info else 0,
            **sim.observe(),
        }
        sim.history.append(row)
        self.row = row
        if self.out_dir is None:
            return
        for b in sim.blocks:
            writer = self.writers[b.compartment.value]
            layout = sim.layouts[b.compartment.value]
            values = b.u.x.array.reshape(-1, len(b.species))
            arrays = {n: values[: layout.owned, k] for k, n in enumerate(b.species)}
            if b is sim.membrane:
                for name, (f, _) in sim.derived.items():
                    arrays[name] = layout.node_values(f, sim.derived_dofs)
            number = max((k for k, _ in writer.state.entries), default=-1) + 1
            writer.write(number, sim.t, arrays)
        self.metrics.write(row)

    def write_checkpoint(self, status: str) -> None:
        if self.out_dir is None:
            return
        start = wallclock.perf_counter()
        sim = self.sim
        meta = {
            "t": sim.t,
            "dt_prev": sim.dt_prev,
            "past_times": sim.past_times,
            "proposal": self.proposal,
            "steps": self.steps,
            "rejected": self.rejected,
            "dt_range": self.dt_range,
            "status": status,
            "wall_time": self.wall_before + (wallclock.perf_counter() - self.segment_start),
            "series": {c: w.state.entries for c, w in self.writers.items()},
            "document": self.cfg.document,
            "overrides": self.record.get("overrides", []),
            "source": self.cfg.source,
        }
        checkpoint.write(
            checkpoint.path_in(self.out_dir),
            sim.layouts,
            {b.compartment.value: b.species for b in sim.blocks},
            sim.states(),
            meta,
            self.comm,
        )
        self.checkpoint_seconds = wallclock.perf_counter() - start
        self.last_checkpoint_wall = wallclock.perf_counter()

    def _checkpoint_due(self, at_output: bool) -> bool:
        out = self.cfg.output
        if out.checkpoint_wall is not None:
            due = wallclock.perf_counter() - self.last_checkpoint_wall >= out.checkpoint_wall
            return bool(self.comm.bcast(due, root=ROOT))
        if out.checkpoint_every is not None:
            if self.sim.t >= self.next_checkpoint - 1e-9 * out.checkpoint_every:
                self.next_checkpoint += out.checkpoint_every * max(
                    1, math.floor((self.sim.t - self.next_checkpoint) / out.checkpoint_every) + 1
                )
                return True
            return False
        return at_output

    # -- stops -------------------------------------------------------------------
    def _stop_reason(self) -> str | None:
        """Why the run must stop before the next step (agreed by all ranks), or None."""
        reason = stop_requested()
        if reason is None and self.wall_time is not None:
            elapsed = wallclock.perf_counter() - self.started
            step = max(self.step_walls, default=0.0)
            margin = 2.0 * step + 2.0 * self.checkpoint_seconds + 1.0
            if elapsed + margin >= self.wall_time:
                reason = (
                    f"wall-time limit: {elapsed:.0f} s used of {self.wall_time:.0f} s "
                    f"(next step and checkpoint need about {margin:.0f} s)"
                )
        reasons = self.comm.allgather(reason)
        return next((r for r in reasons if r), None)

    # -- the loop ----------------------------------------------------------------
    def execute(self) -> RunResult:
        from solver.simulation import RunResult

        sim, cfg, tc = self.sim, self.cfg, self.cfg.time
        start = wallclock.perf_counter()
        if self.restart is not None:
            self._resume()
        if self.out_dir is not None:
            self._open_outputs()
        if self.restart is None:
            self.output(None, 0.0)
        every = cfg.output.checkpoint_every
        if every is not None:
            self.next_checkpoint = (math.floor(sim.t / every + 1e-9) + 1) * every
        if self.restart is None:
            self.write_checkpoint("running")
        clock = Clock(
            end=tc.end,
            dt=self.proposal,
            t=sim.t,
            milestones=self.times + self.events,
            balance=tc.adaptive,
        )
        status, reason = "completed", ""
        last_progress = wallclock.perf_counter()
        info: SolveInfo | None = None
        try:
            while not clock.done:
                stop = self._stop_reason()
                if stop:
                    status, reason = "stopped", stop
                    break
                tic = wallclock.perf_counter()
                if tc.adaptive:
                    info, dt, failure = self._adaptive_step(clock)
                else:
                    dt = clock.next_step()
                    info = sim.step(dt)
                    failure = (
                        None
                        if info.converged
                        else f"Newton did not converge at t = {sim.t:g} s with dt = {dt:g} s "
                        f"({info.reason}); try a smaller time.dt or time.adaptive = true"
                    )
                if failure:
                    status, reason = "failed", failure
                    if self.out_dir is not None and not clock.reached(self.times):
                        self.output(info, dt)  # the last good state
                    break
                clock.advance(dt)
                sim.t = sim.past_times[0] = clock.t  # snapped onto a milestone
                self.steps += 1
                self.dt_range = [min(self.dt_range[0], dt), max(self.dt_range[1], dt)]
                if clock.reached(self.events):
                    # the solution has a kink in time here: BDF2 across it would be of
                    # first order, so start again with one backward-Euler step (and small)
                    sim.restart_history()
                    self.proposal = min(self.proposal, tc.dt)
                at_output = clock.reached(self.times[self.next_output :])
                if at_output:
                    self.output(info, dt)
                    self.next_output = self._output_after(sim.t)
                self.step_walls.append(wallclock.perf_counter() - tic)
                if not clock.done and self._checkpoint_due(at_output):
                    self.write_checkpoint("running")
                now = wallclock.perf_counter()
                if now - last_progress >= cfg.output.progress or clock.done:
                    self._progress(dt, info, now - start)
                    last_progress = now
        finally:
            if self.metrics:
                self.metrics.close()
        self.write_checkpoint(status)
        wall = wallclock.perf_counter() - start
        result = RunResult(status, sim.t, self.steps, reason, wall, self.out_dir, self.row)
        if self.out_dir is not None:
            self.record.update(
                status=status,
                reason=reason,
                t=sim.t,
                steps=self.steps,
                rejected_steps=self.rejected,
                dt={"min": self.dt_range[0], "max": self.dt_range[1], "next": self.proposal},
                wall_time={
                    "setup": sim.timings["setup"],
                    "run": wall,
                    "total": self.wall_before + wall,
                },
                final=self.row,
                milestones=sim.milestones(),
            )
            io.write_run_json(self.out_dir / "run.json", self.record, self.comm)
        return result

    def _adaptive_step(self, clock: Clock) -> tuple[SolveInfo, float, str | None]:
        """Attempt steps until one is accepted; returns (info, dt, failure reason or None)."""
        sim, control = self.sim, self.control
        while True:
            clock.dt = max(min(self.proposal, control.dt_max), control.dt_min)
            if sim.dt_prev is not None:
                clock.dt = min(clock.dt, control.grow * sim.dt_prev)
            dt = clock.next_step()
            order = sim.order()
            info = sim.attempt(dt)
            err = None
            if not info.converged:
                why, factor = "newton", control.newton_cut
            elif self.cfg.time.reject_negative and sim.undershoot(control.atol):
                why, factor = "negative", control.negative_cut
            else:
                err = sim.local_error(control)
                rejected = err is not None and err > 1.0
                why, factor = ("error", control.factor(err, order)) if rejected else (None, 1.0)
            if why is None:
                grow = control.factor(err, order) if err is not None else 1.0
                if self._just_rejected:  # no growth right after a rejection
                    grow = min(grow, 1.0)
                self._just_rejected = False
                sim.accept(dt)
                self.proposal = min(dt * grow, control.dt_max)
                return info, dt, None
            if info.converged:
                sim.revert()
            self.rejected[why] += 1
            self._just_rejected = True
            self.proposal = dt * factor
            log.debug("step of %.3g s at t = %.6g s rejected (%s)", dt, sim.t, why)
            if self.proposal < control.dt_min:
                return (
                    info,
                    dt,
                    (
                        f"step size fell below time.dt_min = {control.dt_min:g} s at "
                        f"t = {sim.t:g} s (last rejection: {why}); the last good state "
                        "and a checkpoint are written"
                    ),
                )

    def _progress(self, dt: float, info: SolveInfo | None, elapsed: float) -> None:
        """One progress line. An ETA only with fixed steps: adaptive steps grow by orders
        of magnitude after a transient, so extrapolating the wall time would mislead."""
        t, end = self.sim.t, self.cfg.time.end
        t0 = self.restart.meta["t"] if self.restart else 0.0
        done = (t - t0) / (end - t0) if end > t0 else 1.0
        eta = ""
        if not self.cfg.time.adaptive:
            eta = f"  ETA {elapsed * (end - t) / max(t - t0, 1e-300):.1f} s"
        log.info(
            "t = %.6g / %.6g s (%.1f %%)  dt = %.3g s  Newton %d  steps %d (+%d rejected)  "
            "wall %.1f s%s",
            t,
            end,
            100.0 * done,
            dt,
            info.newton_iterations if info else 0,
            self.steps,
            sum(self.rejected.values()),
            elapsed,
            eta,
        )


def _truncate_metrics(
    path: Path, columns: list[str], t: float, comm: MPI.Comm
) -> list[dict[str, float]]:
    """Keep the rows of ``metrics.csv`` up to time ``t``; return them (collective)."""
    rows, error = None, None
    if comm.rank == ROOT:
        try:
            with path.open(newline="") as f:
                table = list(csv.reader(f))
            if not table or table[0] != columns:
                error = f"{path}: its columns differ from this run's; cannot append"
            else:
                keep = [r for r in table[1:] if r and float(r[0]) <= t * (1 + 1e-12) + 1e-14]
                rows = [{c: float(v) for c, v in zip(columns, r, strict=True)} for r in keep]
                tmp = path.with_name(path.name + ".tmp")
                with tmp.open("w", newline="") as f:
                    csv.writer(f).writerows([columns, *keep])
                tmp.replace(path)
        except OSError as err:
            error = f"{path}: {err}"
    rows, error = comm.bcast((rows, error), root=ROOT)
    if error:
        from solver.errors import InputError

        raise InputError("restart", error)
    return rows


def _read_json(path: Path, comm: MPI.Comm) -> dict[str, Any]:
    record = None
    if comm.rank == ROOT:
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            record = {}
    return comm.bcast(record, root=ROOT)
