"""Polarity read-outs of membrane species, in parallel-correct form.

For a membrane species u (surface integrals over the membrane Γ, ν its outward
normal, d the gradient direction; definitions in docs/models.md, Polarity read-outs):

- polarisation index  PI = |∫ u ν| / ∫ u        (0 uniform; a cap of half-angle α: (1+cos α)/2)
- front direction     n_f = ∫ u ν / |∫ u ν|, and the angle between n_f and d (degrees)
- front/back ratio    FB = mean of u over the cap of half-angle ``cap_angle`` around +d,
                      divided by the mean over the cap around −d (caps seen from the centre)
- cap fraction        area where u > (max + min)/2, over |Γ|
- correlation         area-weighted Pearson correlation of two species on Γ
- log-gain            ln FB[u] / ln FB[ρ] for the receptor occupancy ρ (> 1: amplification)

All integrals of P1 functions use exact nodal weights (∫ φ_j and ∫ φ_j ν, assembled
once), so every read-out is a sum over owned nodes followed by one allreduce.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from mpi4py import MPI

import numpy as np
import ufl
from dolfinx import fem
from dolfinx.la import InsertMode

from solver.fem.geometry import CellGeometry


class MembraneReadouts:
    """Read-outs on the membrane P1 space ``space`` (a scalar space of the submesh)."""

    def __init__(
        self,
        geometry: CellGeometry,
        space: fem.FunctionSpace,
        center: np.ndarray,
        cap_angle: float = 15.0,
    ) -> None:
        self.comm = geometry.comm
        self.gdim = geometry.gdim
        self.owned = space.dofmap.index_map.size_local
        v = ufl.TestFunction(space)
        n = ufl.FacetNormal(geometry.mesh)
        self.weights = self._assemble(v * geometry.dm, [])
        self.moments = np.array(
            [self._assemble(v * n[i] * geometry.ds, geometry.entity_maps) for i in range(self.gdim)]
        )
        x = space.tabulate_dof_coordinates()[: self.owned, : self.gdim] - center[: self.gdim]
        self.unit = x / np.maximum(np.linalg.norm(x, axis=1), 1e-300)[:, None]
        self.cos_cap = math.cos(math.radians(cap_angle))
        (self.area,) = self._sum(self.weights)

    def _assemble(self, form, entity_maps) -> np.ndarray:
        vec = fem.assemble_vector(fem.form(form, entity_maps=entity_maps))
        vec.scatter_reverse(InsertMode.add)
        return vec.array[: self.owned].copy()

    def _sum(self, *values: float | np.ndarray) -> np.ndarray:
        local = np.array([float(np.sum(v)) for v in values])
        return self.comm.allreduce(local, op=MPI.SUM)

    def of(self, u: np.ndarray, direction: np.ndarray | None) -> dict[str, float]:
        """Read-outs of the owned nodal values ``u``; angle and caps need ``direction``."""
        total, *moments = self._sum(self.weights * u, *(m * u for m in self.moments))
        moment = np.asarray(moments)
        norm = float(np.linalg.norm(moment))
        (size,) = self._sum(self.weights * np.abs(u))
        out = {"PI": norm / total if total != 0 else math.nan}
        # a uniform field has no front: its moment is round-off, in a random direction
        polarised = norm > UNIFORM * size
        front = moment / norm if polarised else np.full(self.gdim, math.nan)
        for axis, value in zip("xyz", front, strict=False):
            out[f"front_{axis}"] = float(value)
        lo = self.comm.allreduce(float(u.min()) if u.size else math.inf, op=MPI.MIN)
        hi = self.comm.allreduce(float(u.max()) if u.size else -math.inf, op=MPI.MAX)
        (above,) = self._sum(self.weights * (u > 0.5 * (lo + hi)))
        uniform = hi - lo <= UNIFORM * max(abs(hi), abs(lo))
        out["cap_fraction"] = float(above / self.area) if not uniform else 0.0
        if direction is not None:
            d = direction[: self.gdim] / np.linalg.norm(direction[: self.gdim])
            cosine = float(front @ d)  # NaN without a front (min/max would hide it)
            out["angle"] = math.degrees(math.acos(np.clip(cosine, -1.0, 1.0)))
            out["FB"] = self.front_back(u, d)
        return out

    def front_back(self, u: np.ndarray, d: np.ndarray) -> float:
        """Mean over the front cap divided by the mean over the back cap (``d``: direction)."""
        d = np.asarray(d, dtype=float)[: self.gdim]
        c = self.unit @ (d / np.linalg.norm(d))
        front, back = c >= self.cos_cap, c <= -self.cos_cap
        wf, wb = self.weights * front, self.weights * back
        uf, af, ub, ab = self._sum(wf * u, wf, wb * u, wb)
        if af == 0 or ab == 0 or ub == 0:
            return math.nan
        return float((uf / af) / (ub / ab))

    def correlation(self, u: np.ndarray, v: np.ndarray) -> float:
        """Area-weighted Pearson correlation of two nodal fields."""
        w = self.weights
        su, sv = self._sum(w * u, w * v)
        mu, mv = su / self.area, sv / self.area
        cuv, cuu, cvv = self._sum(w * (u - mu) * (v - mv), w * (u - mu) ** 2, w * (v - mv) ** 2)
        flat = [c <= (UNIFORM * m) ** 2 * self.area for c, m in ((cuu, mu), (cvv, mv))]
        return float(cuv / math.sqrt(cuu * cvv)) if not any(flat) else math.nan


#: relative variation below which a field counts as uniform (no front, no correlation):
#: the round-off of sums over the membrane, which depends on the number of ranks
UNIFORM = 1e-10


def readout_columns(
    species: Sequence[str],
    correlations: Iterable[tuple[str, str]],
    gdim: int,
    has_direction: bool,
    has_occupancy: bool,
) -> list[str]:
    """Column names of the read-outs in metrics.csv, in a fixed order."""
    cols = []
    for s in species:
        cols += [f"PI_{s}", *(f"front_{a}_{s}" for a in "xyz"[:gdim]), f"cap_fraction_{s}"]
        if has_direction:
            cols += [f"angle_{s}", f"FB_{s}"]
            if has_occupancy:
                cols.append(f"loggain_{s}")
    cols += [f"corr_{a}_{b}" for a, b in correlations]
    return cols


def flatten(name: str, values: Mapping[str, float]) -> dict[str, float]:
    """``{"PI": ..}`` of species ``name`` → ``{"PI_name": ..}``, with front_x → front_x_name."""
    return {f"{k}_{name}": v for k, v in values.items()}


def milestones(
    times: Sequence[float], values: Sequence[float], fractions: Sequence[float] = (0.5, 0.9)
) -> dict[str, float | None]:
    """First times the value has covered 50 % and 90 % of its change (t50, t90).

    The change is measured from the first finite value to the final one, in either
    direction (a rising or a falling polarisation index); None if there is none.
    """
    points = [(t, v) for t, v in zip(times, values, strict=True) if math.isfinite(v)]
    out: dict[str, float | None] = {f"t{round(100 * f)}": None for f in fractions}
    if len(points) < 2 or points[-1][1] == points[0][1]:
        return out
    start, change = points[0][1], points[-1][1] - points[0][1]
    for f in fractions:
        out[f"t{round(100 * f)}"] = next(t for t, v in points if (v - start) / change >= f)
    return out
