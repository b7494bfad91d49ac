"""The stepper: one BDF step of the blocked system, and the integrator's state.

The stepper owns everything a step needs from the past: the time ``t`` of ``U^n``,
the previous step size, the times of the past states, and ``U^{n-2}`` (kept only
for error estimates). ``U^n`` and ``U^{n-1}`` themselves live in each block's
``history`` functions, where the residual forms read them. A step is attempted,
then accepted or reverted, so that adaptive stepping can reject it; a checkpoint
holds :meth:`Stepper.states` and :meth:`Stepper.load` puts them back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from mpi4py import MPI

import numpy as np

from solver.errors import InputError
from solver.fem.forms import Block, SystemForms
from solver.fem.nodes import NodeLayout
from solver.fem.problem import Problem, SolveInfo
from solver.io.checkpoint import Stored, restore
from solver.time.schemes import StepControl, bdf_coefficients, local_error, order_of


def owned(block: Block) -> int:
    """Number of the block's unknowns this rank owns (the first ones of its arrays)."""
    return block.u.x.index_map.size_local * block.u.x.block_size


class Stepper:
    """Backward Euler or variable-step BDF2 on a :class:`~solver.fem.problem.Problem`.

    Args:
        forms: The system's forms (blocks with their states and BDF constants).
        problem: The Newton solver of ``forms``.
        scheme: ``"euler"`` or ``"bdf2"``.
        comm: The communicator of the mesh.
        set_time: Called with ``(t, before)`` whenever the model time changes, to set
            time-dependent inputs (stimuli) to their state at, or just before, ``t``.
        span: T (s), the output interval: a step of dt may make the error tol·dt/T, and
            Newton stops at a fraction of that (:mod:`solver.fem.newton`).

    Collective: every rank of ``comm`` calls every method.
    """

    def __init__(
        self,
        forms: SystemForms,
        problem: Problem,
        scheme: str,
        comm: MPI.Comm,
        set_time: Callable[[float, bool], None] = lambda t, before: None,
        span: float = 1.0,
    ) -> None:
        self.forms = forms
        self.span = span
        self.problem = problem
        self.scheme = scheme
        self.comm = comm
        self._set_time = set_time
        self.t = 0.0
        self.dt_prev: float | None = None
        self.past_times: list[float] = [0.0]  # times of U^n, U^{n-1}, U^{n-2} (s)
        self.oldest: list[np.ndarray] | None = None  # U^{n-2} per block, owned part
        self._coefficients = (0.0, 0.0, 0.0)

    @property
    def blocks(self) -> list[Block]:
        """The compartments' blocks of the system."""
        return self.forms.blocks

    def start(self, t: float = 0.0) -> None:
        """Make the current ``u`` the state at ``t`` (s), with no past before it."""
        for b in self.blocks:
            for h in b.history:
                h.x.array[:] = b.u.x.array
        self.t = t
        self.forget_past()
        self.forms.time.value = t  # type: ignore[assignment]  # setter takes scalars

    # -- one step ----------------------------------------------------------------
    def step(self, dt: float) -> SolveInfo:
        """Advance by ``dt`` seconds; on failure the state is left at ``t``."""
        info = self.attempt(dt)
        if info.converged:
            self.accept(dt)
        return info

    def attempt(self, dt: float) -> SolveInfo:
        """Solve the step from ``t`` to ``t + dt`` into ``u``, leaving the history as is.

        Follow with :meth:`accept` or :meth:`revert`; a failed solve is reverted here.
        """
        c = bdf_coefficients(self.scheme, dt, self.dt_prev)
        self._coefficients = c
        for b in self.blocks:
            for const, value in zip(b.bdf, c, strict=True):
                const.value = value  # type: ignore[assignment]  # setter takes scalars
        self.forms.time.value = self.t + dt  # type: ignore[assignment]  # setter takes scalars
        # a step ending at an event's time integrates the stimulus from before the event
        self._set_time(self.t + dt, True)
        self.predict(dt)
        info = self.problem.solve(self.span / dt)
        if not info.converged:
            self.revert()
        return info

    def predict(self, dt: float) -> None:
        """Newton's initial guess: the past states extrapolated to ``t + dt`` (owned part).

        The polynomial through U^n, U^{n-1} (and U^{n-2}) at their times; U^n itself
        when there is no past (the first step, after an event). A guess closer to the
        solution saves Newton iterations (the first update is then of the size of the
        step's local error, not of its change); the solution does not depend on it.
        """
        times = self.past_times[:3] if self.oldest is not None else self.past_times[:2]
        if len(times) < 2 or self.dt_prev is None:
            return
        target = self.t + dt
        weights = [
            math.prod((target - tj) / (ti - tj) for j, tj in enumerate(times) if j != i)
            for i, ti in enumerate(times)
        ]
        for k, b in enumerate(self.blocks):
            n = owned(b)
            states = [b.history[0].x.array[:n], b.history[1].x.array[:n]]
            if len(times) > 2 and self.oldest is not None:
                states.append(self.oldest[k])
            guess = b.u.x.array[:n]
            guess[:] = 0.0
            for w, state in zip(weights, states, strict=False):
                guess += w * state

    def revert(self) -> None:
        """Undo an attempted step: ``u`` and the time go back to ``U^n`` at ``t``."""
        for b in self.blocks:
            b.u.x.array[:] = b.history[0].x.array
        self.forms.time.value = self.t  # type: ignore[assignment]  # setter takes scalars
        self._set_time(self.t, False)

    def accept(self, dt: float) -> None:
        """Make the attempted step the new state at ``t + dt``."""
        self.oldest = [b.history[1].x.array[: owned(b)].copy() for b in self.blocks]
        for b in self.blocks:
            b.history[1].x.array[:] = b.history[0].x.array
            b.history[0].x.array[:] = b.u.x.array
        self.t += dt
        self.past_times = [self.t, *self.past_times][:3]
        self.dt_prev = dt

    def snap(self, t: float) -> None:
        """Put the accepted state at ``t`` (s).

        Used when a step landed on an output or event time up to round-off.
        """
        self.t = self.past_times[0] = t

    def forget_past(self) -> None:
        """Forget the past states: the next step is a one-step (backward Euler) start.

        Used at the start and after a stimulus event, where the solution has a kink in
        time.
        """
        self.dt_prev = None
        self.past_times = [self.t]
        self.oldest = None

    def order(self) -> int:
        """Order of the next step (BDF2 starts with a backward-Euler step)."""
        return order_of(self.scheme, self.dt_prev)

    # -- error control -----------------------------------------------------------
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
            n = owned(b)
            states = [b.u.x.array[:n], b.history[0].x.array[:n], b.history[1].x.array[:n]]
            if self.oldest is not None:
                states.append(self.oldest[k])
            error = local_error(order, self._coefficients, times, states)
            weighted = error * control.weights(states[0], states[1])
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
            n = owned(b)
            new, old = b.u.x.array[:n], b.history[0].x.array[:n]
            low = low or bool(np.any((new < -atol) & (old >= -atol)))
        return bool(self.comm.allreduce(low, op=MPI.LOR))

    # -- checkpoints -------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """The integrator's scalars for a checkpoint: ``t``, ``dt_prev``, ``past_times``."""
        return {"t": self.t, "dt_prev": self.dt_prev, "past_times": list(self.past_times)}

    def states(self) -> dict[str, list[np.ndarray]]:
        """The history per compartment (U^n, U^{n-1}[, U^{n-2}]), owned nodes × species."""
        out = {}
        for k, b in enumerate(self.blocks):
            n = owned(b)
            arrays = [b.history[0].x.array[:n], b.history[1].x.array[:n]]
            if self.oldest is not None:
                arrays.append(self.oldest[k])
            out[b.name] = [a.reshape(-1, len(b.species)) for a in arrays]
        return out

    def load(self, stored: Stored, layouts: dict[str, NodeLayout], tolerance: float) -> None:
        """Set the state and the integrator's scalars from a checkpoint.

        ``tolerance`` (µm) is how far a node may be from the checkpoint's node it is
        matched with. Raises InputError when the checkpoint does not fit this run
        (species, mesh).
        """
        oldest: list[np.ndarray | None] = []
        for b in self.blocks:
            name = b.name
            block = stored.blocks.get(name)
            if block is None or block.species != list(b.species):
                raise InputError(
                    str(stored.path),
                    f"the {name} species of the checkpoint "
                    f"({', '.join(block.species) if block else 'none'}) differ from the run "
                    f"file's ({', '.join(b.species)})",
                )
            try:
                arrays = restore(block, layouts[name], tolerance)
            except ValueError as err:
                raise InputError(str(stored.path), str(err)) from None
            b.history[0].x.array[:] = arrays[0]
            b.history[1].x.array[:] = arrays[1]
            b.u.x.array[:] = arrays[0]
            oldest.append(arrays[2][: owned(b)] if len(arrays) > 2 else None)
        self.oldest = _all_or_none(oldest)
        meta = stored.meta
        self.t = meta["t"]
        self.dt_prev = meta["dt_prev"]
        self.past_times = list(meta["past_times"])
        self.forms.time.value = self.t  # type: ignore[assignment]  # setter takes scalars
        self._set_time(self.t, False)


def _all_or_none(arrays: Sequence[np.ndarray | None]) -> list[np.ndarray] | None:
    present = [a for a in arrays if a is not None]
    return present if len(present) == len(arrays) else None
