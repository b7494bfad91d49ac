"""When a run must stop early: batch-system signals and the wall-time limit.

A run, and every member of a sweep, stops cleanly at a step boundary (with a
checkpoint) on SIGTERM or SIGUSR1 after :func:`stop_on_signals`, or when a
:class:`Deadline` says the wall time left is too short for what comes next.
"""

from __future__ import annotations

import signal
import time as wallclock
from dataclasses import dataclass
from typing import Any

from mpi4py import MPI

STOP_SIGNALS = ("SIGTERM", "SIGUSR1")

_requested: list[str] = []  # names of the stop signals received


def stop_requested() -> str | None:
    """The stop signal received since :func:`stop_on_signals` (this rank), or None."""
    return f"received {_requested[-1]}" if _requested else None


def stop_on_signals() -> dict[str, Any]:
    """Turn SIGTERM and SIGUSR1 into a clean stop of the run at its next step boundary.

    Call it early (before forms are compiled: a compilation killed halfway leaves a
    stale file in the form cache). Returns the previous handlers.
    """

    def handler(signum: int, _frame: object) -> None:
        _requested.append(signal.Signals(signum).name)

    _requested.clear()
    previous = {}
    for name in STOP_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[name] = signal.signal(sig, handler)
    return previous


@dataclass(frozen=True)
class Deadline:
    """A wall-time limit: ``wall_time`` seconds after ``started`` (``perf_counter``)."""

    wall_time: float | None = None
    started: float = 0.0

    def reason(self, comm: MPI.Comm, margin: float = 0.0, needs: str = "") -> str | None:
        """Why nothing more may start now, agreed by every rank of ``comm``, or None.

        A stop signal on any rank, or less than ``margin`` seconds left before the
        limit (``needs`` says for what, in the message).
        """
        reason = stop_requested()
        if reason is None and self.wall_time is not None:
            used = wallclock.perf_counter() - self.started
            if used + margin >= self.wall_time:
                reason = f"wall-time limit: {used:.0f} s used of {self.wall_time:.0f} s"
                if needs:
                    reason += f" ({needs} need about {margin:.0f} s)"
        reasons = comm.allgather(reason)
        return next((r for r in reasons if r), None)
