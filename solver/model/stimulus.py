"""External fields around the cell (chemokine gradients), sampled where expressions need them.

A stimulus is prescribed, not solved: a concentration c(x, t) in µM outside the
cell, seen by membrane reactions at the membrane. Kinds (x_c is the cell centre,
d(t) the unit gradient direction, c0 the mean level):

- ``linear``:       c = max(c0 (1 + g (x − x_c)·d), 0)
- ``exponential``:  c = c0 exp(g (x − x_c)·d)
- ``point_source``: c = c0 |x_c − p| / |x − p|, the steady diffusion profile around a
                    micropipette at p outside the cell (c0 is the value at the centre)
- ``expression``:   any expression in x, y, z, t and parameters

``g`` is the relative slope (1/µm). Time events switch the direction, start a
rotation of d at a given angular velocity (rad/s) about an axis, change the mean,
remove the gradient (uniform at the mean) or wash the chemokine out (c = 0).
With ``K_D``, the receptor occupancy ρ = c/(c + K_D) is available as ``<name>_occupancy``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from solver.model.expressions import Expression

if TYPE_CHECKING:  # dolfinx and UFL are imported only by callers that build forms
    import dolfinx.mesh
    import ufl

KINDS = ("linear", "exponential", "point_source", "expression")


@dataclass(frozen=True)
class StimulusEvent:
    """A change at time ``at`` (s). Fields left None keep their value."""

    at: float
    direction: tuple[float, ...] | None = None
    rotation: float | None = None  # rad/s about ``axis``; 0 stops a rotation
    axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    mean: float | None = None  # µM
    gradient: float | None = None  # 1/µm
    position: tuple[float, ...] | None = None  # point source, µm
    remove: bool = False  # gradient → 0: uniform at the mean
    washout: bool = False  # c → 0


@dataclass(frozen=True)
class Stimulus:
    """Description of one external field (solver units: µm, s, µM)."""

    name: str
    kind: str
    mean: float = 0.0
    gradient: float = 0.0
    direction: tuple[float, ...] = (1.0, 0.0, 0.0)
    center: tuple[float, ...] | None = None  # None: the centroid of the cell
    position: tuple[float, ...] | None = None
    expression: Expression | None = None
    K_D: float | None = None
    events: tuple[StimulusEvent, ...] = ()

    @property
    def symbols(self) -> list[str]:
        """Names this stimulus makes available to expressions."""
        return [self.name] + ([f"{self.name}_occupancy"] if self.K_D is not None else [])


@dataclass
class StimulusState:
    """The time-dependent parameters of a stimulus at one instant."""

    mean: float
    gradient: float
    direction: np.ndarray
    position: np.ndarray | None
    scale: float = 1.0  # 0 after a washout


def _unit(v: Sequence[float]) -> np.ndarray:
    a = np.zeros(3)
    a[: len(v)] = v
    n = np.linalg.norm(a)
    if n == 0:
        raise ValueError("a direction must not be the zero vector")
    return a / n


def _rotate(d: np.ndarray, axis: Sequence[float], angle: float) -> np.ndarray:
    """Rodrigues' rotation of ``d`` by ``angle`` (rad) about ``axis``."""
    k = _unit(axis)
    return (
        d * math.cos(angle)
        + np.cross(k, d) * math.sin(angle)
        + k * np.dot(k, d) * (1 - math.cos(angle))
    )


def state_at(stimulus: Stimulus, t: float, before: bool = False) -> StimulusState:
    """Apply the events with ``at <= t`` in order and return the state at ``t``.

    ``before``: the limit from the left, without the events at ``t`` itself (what a
    time step that ends at an event's time integrates over).
    """
    s = StimulusState(
        stimulus.mean,
        stimulus.gradient,
        _unit(stimulus.direction),
        None if stimulus.position is None else np.asarray(stimulus.position, float),
    )
    rotation: tuple[float, float, Sequence[float]] | None = None  # (start, omega, axis)
    for e in sorted(stimulus.events, key=lambda e: e.at):
        if e.at > t + (-1 if before else 1) * 1e-12 * max(1.0, abs(t)):
            break
        if rotation is not None:  # freeze the rotation reached at this event
            start, omega, axis = rotation
            s.direction = _rotate(s.direction, axis, omega * (e.at - start))
            rotation = (e.at, omega, axis)
        if e.direction is not None:
            s.direction = _unit(e.direction)
            rotation = None
        if e.rotation is not None:
            rotation = (e.at, e.rotation, e.axis) if e.rotation != 0 else None
        if e.mean is not None:
            s.mean = e.mean
        if e.gradient is not None:
            s.gradient = e.gradient
        if e.position is not None:
            s.position = np.asarray(e.position, float)
        if e.remove:
            s.gradient = 0.0
        if e.washout:
            s.scale = 0.0
    if rotation is not None:
        start, omega, axis = rotation
        s.direction = _rotate(s.direction, axis, omega * (t - start))
    return s


def event_times(stimuli: Mapping[str, Stimulus]) -> list[float]:
    """The distinct event times (s) of all stimuli, in increasing order."""
    return sorted({e.at for s in stimuli.values() for e in s.events})


@dataclass(eq=False)
class StimulusField:
    """UFL expressions of one stimulus on one or more meshes, updated in time.

    Constants belong to one mesh in dolfinx, so each mesh gets its own set;
    :meth:`update` sets them all to the state at ``t``.
    """

    stimulus: Stimulus
    center: np.ndarray
    parameters: Mapping[str, float]
    _constants: list[dict] = field(default_factory=list)

    def expression(self, mesh: dolfinx.mesh.Mesh) -> dict[str, ufl.core.expr.Expr]:
        """``{name: ufl expr, name_occupancy: ufl expr}`` on ``mesh`` (µM, and 1)."""
        import ufl
        from dolfinx import fem

        s = self.stimulus
        gdim = mesh.geometry.dim
        x = ufl.SpatialCoordinate(mesh)
        c = {
            "mean": fem.Constant(mesh, 0.0),
            "gradient": fem.Constant(mesh, 0.0),
            "direction": fem.Constant(mesh, np.zeros(gdim)),
            "position": fem.Constant(mesh, np.zeros(gdim)),
            "scale": fem.Constant(mesh, 1.0),
            "t": fem.Constant(mesh, 0.0),
            "gdim": gdim,
        }
        self._constants.append(c)
        # a constant, not numbers in the form: the centroid differs in its last digits
        # between meshes and rank counts, and each set of numbers would compile anew
        xc = fem.Constant(mesh, np.asarray(self.center[:gdim], dtype=float))
        if s.kind == "linear":
            value = ufl.max_value(
                c["mean"] * (1 + c["gradient"] * ufl.dot(x - xc, c["direction"])), 0.0
            )
        elif s.kind == "exponential":
            value = c["mean"] * ufl.exp(c["gradient"] * ufl.dot(x - xc, c["direction"]))
        elif s.kind == "point_source":
            r = x - c["position"]
            r0 = xc - c["position"]
            value = c["mean"] * ufl.sqrt(ufl.dot(r0, r0)) / ufl.sqrt(ufl.dot(r, r))
        else:
            symbols: dict[str, Any] = {n: fem.Constant(mesh, v) for n, v in self.parameters.items()}
            symbols.update({n: (x[i] if i < gdim else 0.0) for i, n in enumerate("xyz")})
            symbols["t"] = c["t"]
            assert s.expression is not None  # the kind "expression" has one
            value = s.expression.to_ufl(symbols)
        value = c["scale"] * value
        out = {s.name: value}
        if s.K_D is not None:
            out[f"{s.name}_occupancy"] = value / (value + s.K_D)
        return out

    def update(self, t: float, before: bool = False) -> StimulusState:
        """Set the constants to the state at ``t`` (s), or just before it (``before``)."""
        state = state_at(self.stimulus, t, before)
        for c in self._constants:
            gdim = c["gdim"]
            c["mean"].value = state.mean
            c["gradient"].value = state.gradient
            c["direction"].value = state.direction[:gdim]
            if state.position is not None:
                c["position"].value = state.position[:gdim]
            c["scale"].value = state.scale
            c["t"].value = t
        return state
