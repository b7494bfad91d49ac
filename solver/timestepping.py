"""Time integration: BDF coefficients and a clock that hits milestones exactly.

Backward Euler (order 1) and variable-step BDF2 (order 2, started by one
backward-Euler step). For a step dt after a step dt_prev, with ω = dt/dt_prev,

    BDF2:  [(1+2ω)/(1+ω) U^{n+1} − (1+ω) U^n + ω²/(1+ω) U^{n−1}] / dt

which reduces to (3U^{n+1} − 4U^n + U^{n−1})/(2dt) at constant dt.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

ORDER = {"euler": 1, "bdf2": 2}


def bdf_coefficients(scheme: str, dt: float, dt_prev: float | None) -> tuple[float, float, float]:
    """(c0, c1, c2) in 1/s such that dU/dt ≈ c0 U^{n+1} + c1 U^n + c2 U^{n−1}.

    ``dt_prev`` is None on the first step (BDF2 then falls back to backward Euler).
    """
    if scheme == "euler" or dt_prev is None:
        return 1.0 / dt, -1.0 / dt, 0.0
    if scheme != "bdf2":
        raise ValueError(f"unknown scheme {scheme!r}")
    w = dt / dt_prev
    return (1 + 2 * w) / ((1 + w) * dt), -(1 + w) / dt, w * w / ((1 + w) * dt)


@dataclass
class Clock:
    """Simulated time (s) advancing by ``dt`` and landing exactly on milestones.

    Milestones are output times and the end time; a step that would overshoot
    one is shortened to end on it. Steps within a relative 1e-9·dt of a
    milestone snap to it, so no sliver steps are taken.
    """

    end: float
    dt: float
    t: float = 0.0
    milestones: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.milestones = sorted({m for m in self.milestones if 0.0 < m < self.end} | {self.end})

    def add_milestones(self, times: Iterable[float]) -> None:
        self.milestones = sorted(set(self.milestones) | {m for m in times if self.t < m < self.end})

    @property
    def done(self) -> bool:
        return self.t >= self.end - 1e-12 * max(1.0, abs(self.end))

    def next_step(self) -> float:
        """Length of the next step (s): ``dt`` shortened to the next milestone."""
        target = next(m for m in self.milestones if m > self.t + 1e-12 * max(1.0, self.end))
        step = min(self.dt, target - self.t)
        if target - (self.t + step) < 1e-9 * self.dt:
            step = target - self.t
        return step

    def advance(self, step: float) -> None:
        self.t += step
        close = [
            m for m in self.milestones if math.isclose(m, self.t, rel_tol=1e-12, abs_tol=1e-14)
        ]
        if close:
            self.t = close[0]


def output_times(end: float, every: float) -> list[float]:
    """Output times every ``every`` seconds from 0, plus the end."""
    n = int(math.floor(end / every + 1e-9))
    times = [k * every for k in range(n + 1)]
    if not math.isclose(times[-1], end, rel_tol=1e-12):
        times.append(end)
    return times
