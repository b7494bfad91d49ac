"""BDF coefficients, local error estimates, step-size control and a milestone clock.

The clock lands exactly on milestones (outputs, stimulus events, the end).

Backward Euler (order 1) and variable-step BDF2 (order 2, started by one
backward-Euler step). For a step dt after a step dt_prev, with ω = dt/dt_prev,

    BDF2:  [(1+2ω)/(1+ω) U^{n+1} − (1+ω) U^n + ω²/(1+ω) U^{n−1}] / dt

which reduces to (3U^{n+1} − 4U^n + U^{n−1})/(2dt) at constant dt.

Local error (adaptive stepping). Inserting the exact solution into the formula
c0 U^{n+1} + c1 U^n + c2 U^{n−1} = f(U^{n+1}) leaves the truncation error; per unit
of c0 it is the local error of the step,

    BE:    e ≈ dt²/2 · U⁽²⁾,   U⁽²⁾ ≈ 2 · U[t_{n+1}, t_n, t_{n−1}]
    BDF2:  e ≈ (c1 dt³ + c2 (dt + dt_prev)³)/(6 c0) · U⁽³⁾,   U⁽³⁾ ≈ 6 · U[t_{n+1}, …, t_{n−2}]

with U[…] the divided differences of the computed solution (for constant steps the
BDF2 constant is the classical 2/9 dt³). The newest computed state contains the error
e itself, which enters U[…] with the weight w = 1/Π_j (t_{n+1} − t_j); the estimate
is therefore divided by 1 + C·w (C the constant in front of U[…]: 11/9 for BDF2 and
3/2 for backward Euler at constant steps). The estimate needs one more past state
than the formula (BE: 3 states, BDF2: 4); the steps without one are taken at the
initial dt.

The tolerances bound the error at the outputs, not of each step: local errors add
up, so a step of length dt may make an error of (atol + rtol·|U|)·dt/T, T the
output interval ("error per unit step": the errors made between two outputs add up
to at most the tolerance, and a dissipative system damps the older ones; a per-step
bound would let the error grow with the number of steps). The
weighted root-mean-square err = ‖e/(atol + rtol·|U|)‖·T/dt must be ≤ 1; the next
step is dt · clip(0.9 · err^(−1/p), 0.2, 2) (e ∝ dt^(p+1), so err ∝ dt^p), and the
growth bound 2 keeps variable-step BDF2 zero-stable (it needs ω < 1 + √2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

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


def order_of(scheme: str, dt_prev: float | None) -> int:
    """Order of the next step: BDF2 starts (and restarts) with one backward-Euler step."""
    return 1 if scheme == "euler" or dt_prev is None else ORDER[scheme]


def divided_difference(times: list[float], values: list[np.ndarray]) -> np.ndarray:
    """The highest divided difference U[t_0, …, t_k] of ``values`` at distinct ``times``."""
    table = [np.asarray(v, dtype=float) for v in values]
    for level in range(1, len(times)):
        table = [
            (table[i] - table[i + 1]) / (times[i] - times[i + level]) for i in range(len(table) - 1)
        ]
    return table[0]


def local_error(
    order: int, c: tuple[float, float, float], times: list[float], states: list[np.ndarray]
) -> np.ndarray | None:
    """Estimate of the local error of the step just solved (same units as the states).

    ``times`` and ``states``, newest first, start with the new time level t_{n+1};
    None when there are not enough of them (``order + 2`` are needed).
    """
    if len(times) < order + 2:
        return None
    times, states = times[: order + 2], states[: order + 2]
    dt = times[0] - times[1]
    if order == 1:
        constant = dt * dt
    else:
        c0, c1, c2 = c
        dt_prev = times[1] - times[2]
        constant = (c1 * dt**3 + c2 * (dt + dt_prev) ** 3) / c0
    # The newest state carries the error itself: it enters the divided difference with
    # the weight 1/Π(t_0 − t_j), so the estimate is e·(1 + constant·weight). Undo that.
    weight = 1.0 / math.prod(times[0] - t for t in times[1:])
    return constant * divided_difference(times, states) / (1.0 + constant * weight)


@dataclass(frozen=True)
class StepControl:
    """Step-size choice from the local error (``err`` in units of the tolerance)."""

    rtol: float
    atol: float
    dt_min: float
    dt_max: float
    span: float = 1.0  # T (s, the output interval): a step dt may make an error tol·dt/T
    safety: float = 0.9
    grow: float = 2.0
    shrink: float = 0.2
    newton_cut: float = 0.25  # factor on dt after a Newton failure
    negative_cut: float = 0.5  # factor on dt after a negative concentration

    def weights(self, new: np.ndarray, old: np.ndarray) -> np.ndarray:
        """1 / (atol + rtol·max(|U^{n+1}|, |U^n|)) per unknown."""
        return 1.0 / (self.atol + self.rtol * np.maximum(np.abs(new), np.abs(old)))

    def factor(self, err: float, order: int) -> float:
        """The ratio of the next step to this one for a weighted error ``err``."""
        if err <= 0.0:
            return self.grow
        return min(self.grow, max(self.shrink, self.safety * err ** (-1.0 / order)))


@dataclass
class Clock:
    """Simulated time (s) advancing by ``dt`` and landing exactly on milestones.

    Milestones are output times and the end time; a step that would overshoot
    one is shortened to end on it. Steps within a relative 1e-9·dt of a
    milestone snap to it, so no sliver steps are taken. With ``balance``, a
    distance between dt and 2·dt to the next milestone is covered in two equal
    steps instead of one full and one short step (adaptive stepping: no step
    ratio far below one).
    """

    end: float
    dt: float
    t: float = 0.0
    milestones: list[float] = field(default_factory=list)
    balance: bool = False

    def __post_init__(self) -> None:
        self.milestones = sorted({m for m in self.milestones if 0.0 < m < self.end} | {self.end})

    @property
    def done(self) -> bool:
        """Whether the clock has reached the end time (up to round-off)."""
        return self.t >= self.end - 1e-12 * max(1.0, abs(self.end))

    def next_step(self) -> float:
        """Length of the next step (s): ``dt`` shortened to the next milestone."""
        target = next(m for m in self.milestones if m > self.t + 1e-12 * max(1.0, self.end))
        step = min(self.dt, target - self.t)
        if target - (self.t + step) < 1e-9 * self.dt:
            step = target - self.t
        elif self.balance and target - self.t < 2 * self.dt:
            step = 0.5 * (target - self.t)
        return step

    def reached(self, times: Iterable[float]) -> bool:
        """Whether the current time is one of ``times`` (after :meth:`advance`)."""
        return any(math.isclose(m, self.t, rel_tol=1e-12, abs_tol=1e-14) for m in times)

    def advance(self, step: float) -> None:
        """Advance the time by ``step`` (s), snapping onto a milestone within round-off."""
        self.t += step
        close = [
            m for m in self.milestones if math.isclose(m, self.t, rel_tol=1e-12, abs_tol=1e-14)
        ]
        if close:
            self.t = close[0]


def error_span(end: float, every: float) -> float:
    """T (s): the errors of the steps between two outputs add up to the tolerance."""
    return min(end, every)


def output_times(end: float, every: float) -> list[float]:
    """Output times every ``every`` seconds from 0, plus the end."""
    n = int(math.floor(end / every + 1e-9))
    times = [k * every for k in range(n + 1)]
    if not math.isclose(times[-1], end, rel_tol=1e-12):
        times.append(end)
    return times
