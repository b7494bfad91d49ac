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
(``failed``). A file that cannot be written (a full disk) ends it with ``failed`` too,
on every rank together, keeping the last checkpoint. Every rank runs the loop;
decisions are agreed collectively.
"""

from __future__ import annotations

import logging
import math
import time as wallclock
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from solver.fem.nodes import ROOT
from solver.fem.problem import SolveInfo
from solver.fem.readouts import readout_columns
from solver.io import checkpoint
from solver.io.files import WriteError
from solver.io.outputs import RunOutputs, record_failure
from solver.io.restart import changes
from solver.model.stimulus import event_times
from solver.time.schemes import Clock, StepControl, error_span, output_times
from solver.time.stops import Deadline

if TYPE_CHECKING:
    from solver.simulation import Simulation

log = logging.getLogger("solver.simulation")

_REJECTIONS = ("newton", "error", "negative")


@dataclass
class RunResult:
    """What a finished, stopped or failed run reports.

    ``status`` is ``"completed"``, ``"stopped"`` (wall time, signal: continue it with a
    restart) or ``"failed"`` (``reason`` says why); ``t`` (s) is where it ended,
    ``final`` the last row of ``metrics.csv``.
    """

    status: str
    t: float
    steps: int
    reason: str = ""
    wall_time: float = 0.0
    out_dir: Path | None = None
    final: dict[str, float] = field(default_factory=dict)
    earlier_wall_time: float = 0.0  # s: of the segments before a restart
    write_error: str = ""  # a file that could not be written ended the run (failed)


def integrate(
    sim: Simulation,
    out_dir: Path | None = None,
    overwrite: bool = False,
    **options: Any,
) -> RunResult:
    """Integrate ``sim`` to ``time.end``, writing outputs to ``out_dir`` (None: in memory).

    ``options`` go to :class:`RunLoop` (``restart``, ``wall_time``, ``started``,
    ``overrides``). Collective.
    """
    return RunLoop(sim, out_dir, overwrite, **options).execute()


class RunLoop:
    """One segment of a run (from the start or from a checkpoint) to ``time.end``.

    ``restart``: a checkpoint read with :func:`solver.io.checkpoint.read`, already
    loaded into ``sim`` (the run continues in the same output folder); ``wall_time``:
    stop before this many seconds after ``started`` (a ``time.perf_counter()`` value;
    default: now); ``overrides``: the ``--set`` items of this invocation (recorded).
    After :func:`solver.time.stops.stop_on_signals`, SIGTERM and SIGUSR1 stop it at the
    next step boundary.
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
        self.stepper = sim.stepper
        self.comm = sim.comm
        self.cfg = sim.config
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.overwrite = overwrite
        self.restart = restart
        # this segment's own wall time (set-up included) counts from here, also when the
        # wall-time limit counts from an earlier start (members of a sweep)
        self.segment_start = wallclock.perf_counter() - sim.timings.get("setup", 0.0)
        self.deadline = Deadline(
            wall_time if wall_time is not None else self.cfg.time.wall_time,
            wallclock.perf_counter() if started is None else started,
        )
        self.overrides = list(overrides or [])
        tc = self.cfg.time
        span = error_span(tc.end, self.cfg.output.every)  # errors add up between two outputs
        self.control = StepControl(tc.rtol, tc.atol, tc.dt_min, tc.dt_max, span=span)
        self.times = output_times(tc.end, self.cfg.output.every)
        self.events = [e for e in event_times(self.cfg.model.stimuli) if 0.0 < e < tc.end]
        self.outputs: RunOutputs | None = None
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
        assert self.out_dir is not None
        self.outputs = RunOutputs(
            self.sim, self.out_dir, self._columns(), self.restart, self.overwrite, self.overrides
        )
        if self.restart is not None:
            self.sim.history = self.outputs.rows
            self.row = self.outputs.rows[-1] if self.outputs.rows else {}

    def _resume(self) -> None:
        """Counters and step sizes of the run so far, from the checkpoint."""
        assert self.restart is not None
        meta = self.restart.meta
        self.steps = meta["steps"]
        self.rejected = dict(meta["rejected"])
        self.dt_range = list(meta["dt_range"])
        # fixed steps are time.dt (which a restart may change with --set time.dt=...);
        # an adaptive run continues with its controller's proposal unless time.dt is set
        adaptive = self.cfg.time.adaptive
        keep = adaptive and "time.dt" not in changes(self.restart, self.cfg)
        self.proposal = meta["proposal"] if keep else self.cfg.time.dt
        self.wall_before = meta["wall_time"]
        self.next_output = self._output_after(self.stepper.t)

    def _output_after(self, t: float) -> int:
        """Index of the first output time after ``t`` (s), len(times) if none is left."""
        later = (k for k, s in enumerate(self.times) if s > t * (1 + 1e-12) + 1e-14)
        return next(later, len(self.times))

    # -- outputs -----------------------------------------------------------------
    def output(self, info: SolveInfo | None, dt: float) -> None:
        """Observe the current state; record it, and write it if the run has a folder."""
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
        if self.outputs is not None:
            self.outputs.write(row)

    def write_checkpoint(self, status: str) -> None:
        """A checkpoint of the state and the loop's counters (runs with a folder)."""
        if self.outputs is None:
            return
        start = wallclock.perf_counter()
        self.outputs.checkpoint(
            {
                "proposal": self.proposal,
                "steps": self.steps,
                "rejected": self.rejected,
                "dt_range": self.dt_range,
                "status": status,
                "wall_time": self.wall_before + (wallclock.perf_counter() - self.segment_start),
            }
        )
        self.checkpoint_seconds = wallclock.perf_counter() - start
        self.last_checkpoint_wall = wallclock.perf_counter()

    def _checkpoint_due(self, at_output: bool) -> bool:
        out = self.cfg.output
        if out.checkpoint_wall is not None:
            due = wallclock.perf_counter() - self.last_checkpoint_wall >= out.checkpoint_wall
            return bool(self.comm.bcast(due, root=ROOT))
        if out.checkpoint_every is not None:
            t = self.stepper.t
            if t >= self.next_checkpoint - 1e-9 * out.checkpoint_every:
                self.next_checkpoint += out.checkpoint_every * max(
                    1, math.floor((t - self.next_checkpoint) / out.checkpoint_every) + 1
                )
                return True
            return False
        return at_output

    # -- stops -------------------------------------------------------------------
    def _stop_reason(self) -> str | None:
        """Why the run must stop before the next step (agreed by all ranks), or None."""
        step = max(self.step_walls, default=0.0)
        margin = 2.0 * step + 2.0 * self.checkpoint_seconds + 1.0
        return self.deadline.reason(self.comm, margin, "next step and checkpoint")

    # -- the loop ----------------------------------------------------------------
    def execute(self) -> RunResult:
        """Step to ``time.end`` or to a stop; write the last checkpoint and ``run.json``.

        A file that cannot be written (a full disk, an I/O error) ends the run with
        status ``failed``: the last checkpoint written stays intact (none is written
        after the error, so no output time is lost), and the reason goes to ``run.json``
        if that can still be written.
        """
        start = wallclock.perf_counter()
        try:
            return self._execute(start)
        except WriteError as err:
            return self._write_failed(err, start)

    def _execute(self, start: float) -> RunResult:
        sim, tc = self.sim, self.cfg.time
        if self.restart is not None:
            self._resume()
        if self.out_dir is not None:
            self._open_outputs()
        if self.restart is None:
            self.output(None, 0.0)
        every = self.cfg.output.checkpoint_every
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
        try:
            status, reason = self._loop(clock, start)
        finally:
            if self.outputs is not None:
                self.outputs.close()
        self.write_checkpoint(status)
        wall = wallclock.perf_counter() - start
        if self.outputs is not None:
            self.outputs.finish(**self._record(status, reason, wall))
        return RunResult(
            status, sim.t, self.steps, reason, wall, self.out_dir, self.row, self.wall_before
        )

    def _record(self, status: str, reason: str, wall: float) -> dict[str, Any]:
        """What ``run.json`` says of the run's end."""
        sim = self.sim
        return {
            "status": status,
            "reason": reason,
            "t": sim.t,
            "steps": self.steps,
            "rejected_steps": self.rejected,
            "dt": {"min": self.dt_range[0], "max": self.dt_range[1], "next": self.proposal},
            "wall_time": {
                "setup": sim.timings["setup"],
                "run": wall,
                "total": self.wall_before + wall,
            },
            "final": self.row,
            "milestones": sim.milestones(),
        }

    def _write_failed(self, err: WriteError, start: float) -> RunResult:
        """End the run after a file could not be written: status ``failed``, reason recorded."""
        assert self.out_dir is not None  # only a run with a folder writes files
        reason = (
            f"{err}; outputs up to the last checkpoint are intact: make room and continue "
            "with --restart"
        )
        wall = wallclock.perf_counter() - start
        record = self._record("failed", reason, wall)
        if self.outputs is not None:
            self.outputs.close()
            try:
                self.outputs.finish(**record)
            except WriteError:
                log.debug("run.json could not be written either", exc_info=True)
        else:
            record_failure(self.out_dir, self.comm, reason, **record)
        return RunResult(
            "failed",
            self.sim.t,
            self.steps,
            reason,
            wall,
            self.out_dir,
            self.row,
            self.wall_before,
            write_error=str(err),
        )

    def _loop(self, clock: Clock, start: float) -> tuple[str, str]:
        """Take steps until the clock is done or the run must stop: (status, reason)."""
        last_progress = wallclock.perf_counter()
        while not clock.done:
            stop = self._stop_reason()
            if stop:
                return "stopped", stop
            tic = wallclock.perf_counter()
            info, dt, failure = self._step(clock)
            if failure:
                if self.out_dir is not None and not clock.reached(self.times):
                    self.output(info, dt)  # the last good state
                return "failed", failure
            at_output = self._accepted(clock, info, dt)
            self.step_walls.append(wallclock.perf_counter() - tic)
            if not clock.done and self._checkpoint_due(at_output):
                self.write_checkpoint("running")
            now = wallclock.perf_counter()
            if now - last_progress >= self.cfg.output.progress or clock.done:
                self._progress(dt, info, now - start)
                last_progress = now
        return "completed", ""

    def _step(self, clock: Clock) -> tuple[SolveInfo, float, str | None]:
        """One accepted step, adaptive or fixed: (info, dt, failure reason or None)."""
        if self.cfg.time.adaptive:
            return self._adaptive_step(clock)
        dt = clock.next_step()
        info = self.stepper.step(dt)
        failure = (
            None
            if info.converged
            else f"Newton did not converge at t = {self.stepper.t:g} s with dt = {dt:g} s "
            f"({info.reason}); try a smaller time.dt or time.adaptive = true"
        )
        return info, dt, failure

    def _accepted(self, clock: Clock, info: SolveInfo, dt: float) -> bool:
        """Book an accepted step of ``dt``; write an output if one is due (returned)."""
        clock.advance(dt)
        self.stepper.snap(clock.t)  # onto an output or event time, exactly
        self.steps += 1
        self.dt_range = [min(self.dt_range[0], dt), max(self.dt_range[1], dt)]
        if clock.reached(self.events):
            # the solution has a kink in time here: BDF2 across it would be of first
            # order, so start again with one backward-Euler step (and small)
            self.stepper.forget_past()
            self.proposal = min(self.proposal, self.cfg.time.dt)
        at_output = clock.reached(self.times[self.next_output :])
        if at_output:
            self.output(info, dt)
            self.next_output = self._output_after(self.stepper.t)
        return at_output

    def _adaptive_step(self, clock: Clock) -> tuple[SolveInfo, float, str | None]:
        """Attempt steps until one is accepted; returns (info, dt, failure reason or None)."""
        stepper, control = self.stepper, self.control
        while True:
            clock.dt = max(min(self.proposal, control.dt_max), control.dt_min)
            if stepper.dt_prev is not None:
                clock.dt = min(clock.dt, control.grow * stepper.dt_prev)
            dt = clock.next_step()
            order = stepper.order()
            info = stepper.attempt(dt)
            err = None
            why: str | None  # the reason of a rejection; None: the step is accepted
            if not info.converged:
                why, factor = "newton", control.newton_cut
            elif self.cfg.time.reject_negative and stepper.undershoot(control.atol):
                why, factor = "negative", control.negative_cut
            else:
                err = stepper.local_error(control)
                if err is not None and err > 1.0:
                    why, factor = "error", control.factor(err, order)
                else:
                    why, factor = None, 1.0
            if why is None:
                grow = control.factor(err, order) if err is not None else 1.0
                if self._just_rejected:  # no growth right after a rejection
                    grow = min(grow, 1.0)
                self._just_rejected = False
                stepper.accept(dt)
                self.proposal = min(dt * grow, control.dt_max)
                return info, dt, None
            if info.converged:
                stepper.revert()
            self.rejected[why] += 1
            self._just_rejected = True
            self.proposal = dt * factor
            log.debug("step of %.3g s at t = %.6g s rejected (%s)", dt, stepper.t, why)
            if self.proposal < control.dt_min:
                return (
                    info,
                    dt,
                    (
                        f"step size fell below time.dt_min = {control.dt_min:g} s at "
                        f"t = {stepper.t:g} s (last rejection: {why}); the last good state "
                        "and a checkpoint are written"
                    ),
                )

    def _progress(self, dt: float, info: SolveInfo | None, elapsed: float) -> None:
        """Print one progress line.

        An ETA only with fixed steps: adaptive steps grow by orders of magnitude after a
        transient, so extrapolating the wall time would mislead.
        """
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
