"""Stimuli checked against the cell they act on, once its mesh exists.

A run file can describe a stimulus that makes no sense for its cell, which only the
mesh can tell: a gradient direction with no component in the plane of a 2-D cell (the
read-outs would be NaN), a direction with fewer components than the cell has
dimensions, or a point source (a micropipette tip) inside the cell. Each is refused
with an :class:`~solver.errors.InputError` naming the key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from mpi4py import MPI

import dolfinx.geometry
import numpy as np

from solver.errors import InputError
from solver.fem.geometry import CellGeometry
from solver.model.stimulus import Stimulus

_PLANE_TOL = 1e-12  # relative: a direction whose in-plane part is below this is not in it


def _directions(s: Stimulus) -> Iterator[tuple[str, tuple[float, ...]]]:
    """The stimulus's directions, each with its key (the initial one, then events)."""
    if s.kind in ("linear", "exponential"):
        yield f"stimulus.{s.name}.direction", s.direction
        for k, e in enumerate(s.events):
            if e.direction is not None:
                yield f"stimulus.{s.name}.events[{k}].direction", e.direction


def _positions(s: Stimulus) -> Iterator[tuple[str, tuple[float, ...]]]:
    """The point source's positions (µm), each with its key."""
    if s.kind == "point_source":
        if s.position is not None:
            yield f"stimulus.{s.name}.position", s.position
        for k, e in enumerate(s.events):
            if e.position is not None:
                yield f"stimulus.{s.name}.events[{k}].position", e.position


def check_directions(stimuli: Mapping[str, Stimulus], gdim: int) -> None:
    """Refuse directions that do not fit a cell of ``gdim`` dimensions (2 or 3)."""
    for s in stimuli.values():
        for key, d in _directions(s):
            v = np.asarray(d, dtype=float)
            if gdim == 3 and v.size < 3:
                raise InputError(
                    key, f"expected 3 components on a 3-D cell, got {list(d)} (x, y, z)"
                )
            norm = float(np.linalg.norm(v))
            if norm > 0 and float(np.linalg.norm(v[:gdim])) <= _PLANE_TOL * norm:
                raise InputError(
                    key,
                    f"{list(d)} has no component in the plane of this 2-D cell (x, y); "
                    "give a direction such as [1, 0]",
                )


def points_inside(geometry: CellGeometry, points: np.ndarray) -> np.ndarray:
    """Whether each point (rows, µm, 3 coordinates) lies in the cell (collective).

    The cell is every volume but the medium around it (:meth:`CellGeometry.cell_cells`).
    """
    mesh = geometry.mesh
    tdim = mesh.topology.dim
    cells = geometry.cell_cells()
    tree = dolfinx.geometry.bb_tree(mesh, tdim, entities=cells)
    candidates = dolfinx.geometry.compute_collisions_points(tree, points)
    hits = dolfinx.geometry.compute_colliding_cells(mesh, candidates, points)
    local = np.array([len(hits.links(i)) > 0 for i in range(len(points))], dtype=np.int32)
    found = np.zeros_like(local)
    geometry.comm.Allreduce(local, found, op=MPI.MAX)
    return found > 0


def check_sources(stimuli: Mapping[str, Stimulus], geometry: CellGeometry) -> None:
    """Refuse point-source positions inside the cell or of the wrong dimension."""
    gdim = geometry.gdim
    found = [(key, p) for s in stimuli.values() for key, p in _positions(s)]
    for key, p in found:
        if len(p) not in (gdim, 3) or (len(p) == 3 and gdim == 2 and p[2] != 0):
            raise InputError(key, f"expected {gdim} coordinates (µm) on this cell, got {list(p)}")
    if not found:
        return
    points = np.zeros((len(found), 3))
    for i, (_, p) in enumerate(found):
        points[i, : len(p)] = p
    inside = points_inside(geometry, points)
    for (key, p), bad in zip(found, inside, strict=True):
        if bad:
            raise InputError(
                key,
                f"the source at {list(p)} µm lies inside the cell; a source (a pipette tip) "
                "must be outside it",
            )


#: exp(700) is about 1e304: an exponential profile steeper than this over the cell
#: overflows double precision
EXP_LIMIT = 700.0


def check_exponents(
    stimuli: Mapping[str, Stimulus], geometry: CellGeometry, center: np.ndarray
) -> None:
    """Refuse an exponential profile whose exponent g·|x − x_c| overflows on the cell."""
    mesh = geometry.mesh
    tdim = mesh.topology.dim
    nodes = dolfinx.mesh.entities_to_geometry(mesh, tdim, geometry.cell_cells())
    x = mesh.geometry.x[np.unique(nodes)]  # the cell's nodes: 3 coordinates, also in 2-D
    for s in stimuli.values():
        if s.kind != "exponential":
            continue
        c = np.zeros(3)
        given = s.center if s.center is not None else center
        c[: len(given)] = given
        local = float(np.max(np.linalg.norm(x - c, axis=1), initial=0.0))
        reach = float(geometry.comm.allreduce(local, op=MPI.MAX))  # µm from the centre
        slopes = [("gradient", s.gradient)] + [
            (f"events[{k}].gradient", e.gradient)
            for k, e in enumerate(s.events)
            if e.gradient is not None
        ]
        for key, g in slopes:
            if abs(g) * reach > EXP_LIMIT:
                raise InputError(
                    f"stimulus.{s.name}.{key}",
                    f"exp({abs(g):g}/um × {reach:.3g} um) overflows on this cell; an "
                    f"exponential profile needs |gradient| below {EXP_LIMIT / reach:.3g} 1/um",
                )


def check_stimuli(
    stimuli: Mapping[str, Stimulus], geometry: CellGeometry, center: np.ndarray | None = None
) -> None:
    """All checks of this module (collective): directions, sources, exponents.

    ``center`` (µm, 3 coordinates): the cell's centre, that profiles refer to.
    """
    check_directions(stimuli, geometry.gdim)
    check_sources(stimuli, geometry)
    if center is not None:
        check_exponents(stimuli, geometry, np.asarray(center, dtype=float))
