"""Cell shapes meshed with gmsh: what each shape is, its checks, its geometry and sizes.

A :class:`CellShape` is a validated description (lengths in µm) that knows how to
build itself in the current gmsh model (OpenCASCADE kernel) and mesh itself with
physical groups ``cytosol`` (the volume) and ``membrane`` (its whole boundary).

Shapes (``x`` right, ``y`` back, ``z`` up; ``center`` moves the shape):

- ``disk`` (radius), ``ellipse`` (2 semi-axes): 2-D cross-sections in z = 0.
- ``sphere`` (radius), ``ellipsoid`` (3 semi-axes along x, y, z).
- ``spread``: a cell crawling on a substrate at z = center_z: a dome (half of an
  ellipsoid of base radius ``dome_radius`` and height ``height``) on a thin lamella
  (a flat disk of radius ``radius`` and thickness ``thickness``).
- ``capsule``: a rod with hemispherical ends along x, of ``radius`` and total
  ``length`` (end to end).

Element sizes: ``size`` (µm) at the membrane; with ``inner_size`` > ``size`` the
elements grow linearly with the distance from the membrane, from ``size`` one
element away from it to ``inner_size`` at ``grading`` µm further inside
(docs/numerics.md, Mesh resolution: fine near Γ, ~1 µm inside).

These functions run on the gmsh rank only; they never touch MPI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import gmsh
import numpy as np

from solver.mesh.catalog import (
    DEFAULT_GRADING,
    NUM_SEMI_AXES,
    SHAPE_DEFAULTS,
    SHAPE_DIM,
    SHAPE_LENGTHS,
    SHAPES,
    SUPPORTED_ORDERS,
)

__all__ = [
    "SHAPES",
    "SHAPE_DIM",
    "SHAPE_DEFAULTS",
    "CellShape",
    "apply_sizes",
    "icosphere",
    "mesh_options",
]

ALGORITHM_2D_FRONTAL_DELAUNAY = 6
# HXT: quasi-uniform tets whose size halves with `size`, a better worst element than
# Delaunay (1) after optimisation and 4x faster on a fine ball; reproducible with
# gmsh's default of one thread.
ALGORITHM_3D_HXT = 10
_MIN_SAMPLING, _MAX_SAMPLING = 20, 400  # points per direction of the distance field


class ShapeError(ValueError):
    """Arguments that describe no valid shape; the message names the shape."""


def _numbers(values: Sequence[float]) -> str:
    return f"({', '.join(f'{v:g}' for v in values)})"


@dataclass(frozen=True)
class CellShape:
    """A validated cell shape and its element sizes (all lengths in µm).

    Attributes:
        name: One of :data:`SHAPES`.
        lengths: The shape's lengths (``radius``, ``semi_axes``, ``height``, …).
        size: Element size at the membrane.
        inner_size: Element size deep inside (equal to ``size``: uniform).
        grading: Distance over which sizes grow from ``size`` to ``inner_size``.
        center: Centre (``spread``: centre of the footprint on the substrate).
        order: Geometry order of the cells (1 or 2).
    """

    name: str
    lengths: Mapping[str, float | tuple[float, ...]]
    size: float
    inner_size: float
    grading: float
    center: tuple[float, float, float]
    order: int = 1

    @classmethod
    def from_arguments(
        cls,
        name: str,
        *,
        size: float,
        center: Sequence[float] = (0.0, 0.0, 0.0),
        order: int = 1,
        inner_size: float | None = None,
        grading: float | None = None,
        **lengths: float | Sequence[float] | None,
    ) -> CellShape:
        """Check the arguments of a shape (see :data:`SHAPE_LENGTHS`); raise :class:`ShapeError`.

        Lengths a shape takes but that are not given come from :data:`SHAPE_DEFAULTS`
        (``radius`` defaults to 1 µm for disk and sphere, as before); lengths it does
        not take must be ``None``.
        """
        if name not in SHAPES:
            raise ShapeError(f"unknown shape {name!r}: expected one of {', '.join(SHAPES)}")
        takes = SHAPE_LENGTHS[name]
        given = {k: v for k, v in lengths.items() if v is not None}
        extra = sorted(set(given) - set(takes))
        if extra:
            raise ShapeError(
                f"{name}: takes {', '.join(takes)} (µm), not {', '.join(extra)}"
                + ("; use radius" if extra == ["semi_axes"] else "")
            )
        values: dict[str, float | tuple[float, ...]] = {}
        scalars: dict[str, float] = {}  # the single lengths among `values`
        for key in takes:
            if key == "semi_axes":
                axes = given.get(key)
                expected = NUM_SEMI_AXES[name]
                if axes is None or isinstance(axes, int | float) or len(axes) != expected:
                    raise ShapeError(f"{name}: expected {expected} semi_axes (µm), got {axes!r}")
                values[key] = tuple(float(a) for a in axes)
                continue
            if key in given:
                value = given[key]
                if isinstance(value, Sequence):
                    raise ShapeError(f"{name}: {key} must be one length (µm), got {value!r}")
                scalars[key] = float(value)
            elif key == "radius" and name in ("disk", "sphere"):
                scalars[key] = 1.0
            elif key == "dome_radius":
                scalars[key] = 0.5 * scalars["radius"]
            else:
                default = SHAPE_DEFAULTS[name][key]
                assert not isinstance(default, tuple)  # only semi_axes (above) is a tuple
                scalars[key] = float(default)
            values[key] = scalars[key]
        flat = [v for val in values.values() for v in (val if isinstance(val, tuple) else (val,))]
        if min(flat) <= 0:
            raise ShapeError(
                f"{name}: radius/semi-axes/lengths must be positive (µm), got {values}"
            )
        if not size > 0:
            raise ShapeError(f"{name}: size must be positive (µm), got {size!r}")
        inner = float(size if inner_size is None else inner_size)
        if inner < size:
            raise ShapeError(f"{name}: inner_size={inner:g} µm must be at least size={size:g} µm")
        ramp = float(DEFAULT_GRADING if grading is None else grading)
        if not ramp > 0:
            raise ShapeError(f"{name}: grading must be a positive distance (µm), got {grading!r}")
        dim = SHAPE_DIM[name]
        if len(center) not in (dim, 3) or (dim == 2 and len(center) == 3 and center[2] != 0):
            raise ShapeError(f"{name}: center must have {dim} coordinates (µm), got {center!r}")
        if order not in SUPPORTED_ORDERS:
            raise ShapeError(f"{name}: order must be one of {SUPPORTED_ORDERS}, got {order!r}")
        xyz = [float(c) for c in center] + [0.0] * (3 - len(center))
        centre = (xyz[0], xyz[1], xyz[2])
        shape = cls(name, values, float(size), inner, ramp, centre, order)
        shape._check_proportions()
        return shape

    def _check_proportions(self) -> None:
        v, name, size = self._scalars, self.name, self.size
        smallest = min(self.semi_axes)
        if size >= smallest:
            raise ShapeError(
                f"{name}: size={size:g} µm is too coarse: it must be smaller "
                f"than the smallest radius/semi-axis {smallest:g} µm"
            )
        if name == "spread":
            if not v["dome_radius"] < v["radius"]:
                raise ShapeError(
                    f"spread: dome_radius={v['dome_radius']:g} µm must be smaller than the "
                    f"lamella radius={v['radius']:g} µm"
                )
            if not v["thickness"] < v["height"]:
                raise ShapeError(
                    f"spread: thickness={v['thickness']:g} µm must be smaller than "
                    f"height={v['height']:g} µm"
                )
            if size > v["thickness"]:
                raise ShapeError(
                    f"spread: size={size:g} µm is too coarse for the lamella: at most "
                    f"thickness={v['thickness']:g} µm (one element across it)"
                )
        if name == "capsule" and not v["length"] > 2 * v["radius"]:
            raise ShapeError(
                f"capsule: length={v['length']:g} µm must exceed its diameter "
                f"{2 * v['radius']:g} µm (use sphere otherwise)"
            )

    @property
    def dim(self) -> int:
        """Topological (and geometric) dimension of the mesh."""
        return SHAPE_DIM[self.name]

    @property
    def semi_axes(self) -> tuple[float, ...]:
        """The shape's radii of curvature scale: radii, semi-axes and thicknesses (µm)."""
        axes = self.lengths.get("semi_axes")
        if axes is not None:
            return axes if isinstance(axes, tuple) else (axes,)
        v = self._scalars
        if self.name == "spread":
            return (v["radius"], v["dome_radius"], v["height"])
        return (v["radius"],) * (1 if self.name == "capsule" else self.dim)

    @property
    def _scalars(self) -> dict[str, float]:
        """The shape's single lengths (all but ``semi_axes``), in µm."""
        return {k: x for k, x in self.lengths.items() if not isinstance(x, tuple)}

    def describe(self) -> str:
        """``"generated sphere radius=5 size=0.5 ..."``: where a mesh came from."""
        parts = [f"generated {self.name}"]
        for key, value in self.lengths.items():
            parts.append(f"{key}={_numbers(value) if isinstance(value, tuple) else f'{value:g}'}")
        parts.append(f"size={self.size:g}")
        if self.inner_size != self.size:
            parts.append(f"inner_size={self.inner_size:g} grading={self.grading:g}")
        if any(self.center):
            parts.append(f"center={_numbers(self.center[: self.dim])}")
        if self.order != 1:
            parts.append(f"order={self.order}")
        return " ".join(parts)

    def build(self) -> list[int]:
        """Add the shape to the current gmsh model (OCC); return its entity tags."""
        occ = gmsh.model.occ
        v = self._scalars
        xc, yc, zc = self.center
        if self.name in ("disk", "ellipse"):
            rx, ry = self.semi_axes  # the ellipse's semi-axes, or the disk's radius twice
            # OCC requires rx >= ry: a taller-than-wide ellipse is a rotated one; gmsh
            # ignores xAxis unless zAxis is given too.
            rotate = {"zAxis": [0.0, 0.0, 1.0], "xAxis": [0.0, 1.0, 0.0]} if ry > rx else {}
            tags = [occ.addDisk(xc, yc, 0.0, max(rx, ry), min(rx, ry), **rotate)]
        elif self.name in ("sphere", "ellipsoid"):
            tag = occ.addSphere(xc, yc, zc, 1.0)
            occ.dilate([(3, tag)], xc, yc, zc, *self.semi_axes)
            tags = [tag]
        elif self.name == "spread":
            rd, h, t, r = v["dome_radius"], v["height"], v["thickness"], v["radius"]
            dome = occ.addSphere(xc, yc, zc, 1.0)
            occ.dilate([(3, dome)], xc, yc, zc, rd, rd, h)
            upper = occ.addBox(xc - 2 * rd, yc - 2 * rd, zc, 4 * rd, 4 * rd, 2 * h)
            half, _ = occ.intersect([(3, dome)], [(3, upper)])
            lamella = occ.addCylinder(xc, yc, zc, 0.0, 0.0, t, r)
            fused, _ = occ.fuse(half, [(3, lamella)])
            tags = [tag for _, tag in fused]
        else:  # capsule along x
            r, length = v["radius"], v["length"]
            half_core = 0.5 * length - r
            core = occ.addCylinder(xc - half_core, yc, zc, 2 * half_core, 0.0, 0.0, r)
            ends = [occ.addSphere(xc + s * half_core, yc, zc, r) for s in (-1, 1)]
            fused, _ = occ.fuse([(3, core)], [(3, e) for e in ends])
            tags = [tag for _, tag in fused]
        occ.synchronize()
        return tags

    def mesh(self, cytosol: tuple[int, str], membrane: tuple[int, str]) -> None:
        """Build, tag (physical groups ``(tag, name)``) and mesh the shape."""
        tags = self.build()
        boundary = [t for _, t in gmsh.model.getBoundary([(self.dim, t) for t in tags])]
        boundary = sorted({abs(t) for t in boundary})
        gmsh.model.addPhysicalGroup(self.dim, tags, *cytosol)
        gmsh.model.addPhysicalGroup(self.dim - 1, boundary, *membrane)
        apply_sizes(self.dim, boundary, self.size, self.inner_size, self.grading, self.extent)
        gmsh.model.mesh.generate(self.dim)
        if self.order > 1:
            gmsh.model.mesh.setOrder(self.order)

    @property
    def extent(self) -> float:
        """Largest length of the shape (µm), for sampling distances to the membrane."""
        return max(*self.semi_axes, self._scalars.get("length", 0.0))


def mesh_options(size: float, largest: float) -> None:
    """Global gmsh options shared by all cell meshes (sizes in µm)."""
    for option, value in (
        ("Mesh.MeshSizeMin", size),
        ("Mesh.MeshSizeMax", largest),
        ("Mesh.MeshSizeFromCurvature", 0),
        ("Mesh.Algorithm", ALGORITHM_2D_FRONTAL_DELAUNAY),
        ("Mesh.Algorithm3D", ALGORITHM_3D_HXT),
        ("Mesh.Optimize", 1),
    ):
        gmsh.option.setNumber(option, value)


def apply_sizes(
    dim: int, membrane: list[int], size: float, inner_size: float, grading: float, extent: float
) -> None:
    """Element sizes: ``size`` at the membrane, growing to ``inner_size`` inside.

    The size is ``size`` up to one element from the membrane entities (curves in 2-D,
    surfaces in 3-D) and grows linearly to ``inner_size`` over ``grading`` µm
    further in. ``extent`` (µm) sets how densely distances are sampled.
    """
    mesh_options(size, inner_size)
    if inner_size <= size:
        return
    fields = gmsh.model.mesh.field
    distance = fields.add("Distance")
    fields.setNumbers(distance, "CurvesList" if dim == 2 else "SurfacesList", membrane)
    sampling = math.ceil(2 * math.pi * extent / size)
    fields.setNumber(distance, "Sampling", min(max(sampling, _MIN_SAMPLING), _MAX_SAMPLING))
    threshold = fields.add("Threshold")
    fields.setNumber(threshold, "InField", distance)
    fields.setNumber(threshold, "SizeMin", size)
    fields.setNumber(threshold, "SizeMax", inner_size)
    # from one element away: the sampled distance is not exactly 0 on the membrane
    fields.setNumber(threshold, "DistMin", size)
    fields.setNumber(threshold, "DistMax", size + grading)
    fields.setAsBackgroundMesh(threshold)
    for option in ("Mesh.MeshSizeExtendFromBoundary", "Mesh.MeshSizeFromPoints"):
        gmsh.option.setNumber(option, 0)


def icosphere(subdivisions: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-sphere vertices and outward triangles of a subdivided icosahedron.

    The icosahedron is subdivided ``subdivisions`` times (20·4^n triangles): a closed
    surface to import, in tests and example cells.
    """
    t = (1 + math.sqrt(5)) / 2
    points = [
        (-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0),
        (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
        (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1),
    ]  # fmt: skip
    faces = [
        (0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11),
        (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6), (7, 1, 8),
        (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9),
        (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1),
    ]  # fmt: skip
    x = [np.array(p, float) / np.linalg.norm(p) for p in points]
    middle: dict[tuple[int, int], int] = {}  # edge -> its midpoint (edges of all levels)

    def mid(a: int, b: int) -> int:
        key = (min(a, b), max(a, b))
        if key not in middle:
            m = x[a] + x[b]
            x.append(m / np.linalg.norm(m))
            middle[key] = len(x) - 1
        return middle[key]

    for _ in range(subdivisions):
        new = []
        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new
    return np.array(x), np.array(faces, dtype=np.int64)
