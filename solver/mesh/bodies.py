"""Inner bodies and the medium of a nested cell mesh: what they are, and whether they nest.

A nested mesh is a cell (a shape of :mod:`solver.mesh.catalog`, its volume the
*cytosol*, its surface the *membrane*) with zero or more *inner bodies* strictly
inside it (a nucleus, an ER: spheres and ellipsoids in 3-D, disks and ellipses in
2-D, each a volume named by its table key, with a surface named ``surface``), and
optionally *outside* it a medium (a box or ball in 3-D, a rectangle or disk in
2-D) whose outer boundary is a surface too. Lengths are in µm.

Pure numpy, no gmsh and no MPI: the run-file reader checks the nesting here before
anything is meshed, and :mod:`solver.mesh.nested` builds the bodies. Errors are
:class:`NestingError`, which names the key (``inner.nucleus.radius``) below ``[mesh]``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from solver.mesh.catalog import (
    DEFAULT_GRADING,
    FILL,
    SHAPE_DEFAULTS,
    SHAPE_DIM,
    estimate_cells,
    measures,
)

__all__ = [
    "INNER_SHAPES",
    "OUTSIDE_SHAPES",
    "Body",
    "NestingError",
    "bodies_from_tables",
    "check_nesting",
    "estimate_parts",
]

INNER_SHAPES: dict[int, tuple[str, ...]] = {3: ("sphere", "ellipsoid"), 2: ("disk", "ellipse")}
OUTSIDE_SHAPES: dict[int, tuple[str, ...]] = {3: ("box", "ball"), 2: ("rectangle", "disk")}
INNER_KEYS = ("shape", "radius", "semi_axes", "center", "surface", "size")
OUTSIDE_KEYS = ("name", "shape", "extent", "radius", "center", "surface", "size")
DEFAULT_MEDIUM, DEFAULT_BOUNDARY, SURFACE_SUFFIX = "medium", "boundary", "_membrane"
CELL_NAMES = ("cytosol", "membrane")  # the cell's volume and surface
NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
# the key of each shape's lengths (else radius)
_LENGTH_KEY = {
    "ellipse": "semi_axes",
    "ellipsoid": "semi_axes",
    "box": "extent",
    "rectangle": "extent",
}
_STRICT = 1e-9  # relative: a boundary point this close to another boundary touches it
_SAMPLES_2D, _SAMPLES_3D = 720, (48, 96)  # boundary points of a shape for the nesting checks


class NestingError(ValueError):
    """Inner bodies or a medium that do not describe a nested mesh.

    ``key`` is the key below ``[mesh]`` (``inner.nucleus.radius``), ``message``
    what is wrong; ``str()`` gives both.
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


def _numbers(values: Sequence[float]) -> str:
    return f"({', '.join(f'{v:g}' for v in values)})"


@dataclass(frozen=True)
class Body:
    """An inner body or the medium (lengths in µm).

    Attributes:
        key: Its table below ``[mesh]``: ``inner.NAME`` or ``outside``.
        name: The name of its volume.
        surface: The name of its surface (the medium: its outer boundary).
        shape: sphere, ellipsoid, disk, ellipse (ellipsoids); box, rectangle (boxes);
            ball (a sphere).
        dim: 2 or 3.
        center: Centre (x, y, z), z = 0 in 2-D.
        half: Semi-axes of an ellipsoid (a ball, disk or sphere: the radius in every
            direction), half side lengths of a box.
        size: Element size on its surface (the medium: far from the cell).
    """

    key: str
    name: str
    surface: str
    shape: str
    dim: int
    center: tuple[float, float, float]
    half: tuple[float, ...]
    size: float

    @property
    def is_box(self) -> bool:
        """A box or rectangle (else an ellipsoid, ball or disk)."""
        return self.shape in ("box", "rectangle")

    def describe(self) -> str:
        """``"nucleus sphere radius=2 center=(1, 0, 0) size=0.5"``."""
        if self.is_box:
            lengths = f"extent={_numbers([2 * h for h in self.half])}"
        elif self.shape in ("ellipse", "ellipsoid"):
            lengths = f"semi_axes={_numbers(self.half)}"
        else:
            lengths = f"radius={self.half[0]:g}"
        centre = f" center={_numbers(self.center[: self.dim])}" if any(self.center) else ""
        return f"{self.name} {self.shape} {lengths}{centre} size={self.size:g}"

    def measures(self) -> tuple[float, float]:
        """(volume, surface measure): µm³ and µm², or µm² and µm in 2-D."""
        if self.is_box:
            sides = [2 * h for h in self.half]
            if self.dim == 2:
                return sides[0] * sides[1], 2 * (sides[0] + sides[1])
            a, b, c = sides
            return a * b * c, 2 * (a * b + a * c + b * c)
        shape = "ellipse" if self.dim == 2 else "ellipsoid"
        return measures(shape, {"semi_axes": self.half})

    def level(self, points: np.ndarray) -> np.ndarray:
        """Negative strictly inside, zero on the boundary, positive outside (unitless)."""
        d = (points[:, : self.dim] - np.array(self.center[: self.dim])) / np.array(self.half)
        if self.is_box:
            return np.max(np.abs(d), axis=1) - 1.0
        return np.sum(d * d, axis=1) - 1.0

    def boundary_points(self) -> np.ndarray:
        """Points on the boundary, (n, 3): every extreme point along the axes among them."""
        if self.is_box:
            unit = _cube_points(self.dim)
        else:
            unit = _sphere_points(self.dim)
        x = np.zeros((len(unit), 3))
        x[:, : self.dim] = unit * np.array(self.half) + np.array(self.center[: self.dim])
        return x


def _sphere_points(dim: int) -> np.ndarray:
    """Points on the unit circle or sphere, the 2·dim poles along the axes included."""
    if dim == 2:
        angle = np.linspace(0.0, 2 * math.pi, _SAMPLES_2D, endpoint=False)
        return np.column_stack([np.cos(angle), np.sin(angle)])
    n_theta, n_phi = _SAMPLES_3D
    theta = np.linspace(0.0, math.pi, n_theta + 1)
    phi = np.linspace(0.0, 2 * math.pi, n_phi, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    return np.column_stack(
        [(np.sin(t) * np.cos(p)).ravel(), (np.sin(t) * np.sin(p)).ravel(), np.cos(t).ravel()]
    )


def _cube_points(dim: int) -> np.ndarray:
    """Points on the boundary of [-1, 1]^dim: a grid on each face."""
    line = np.linspace(-1.0, 1.0, 41)
    faces = []
    for axis in range(dim):
        for side in (-1.0, 1.0):
            grids = np.meshgrid(*([line] * (dim - 1)), indexing="ij")
            columns = [g.ravel() for g in grids]
            columns.insert(axis, np.full(columns[0].size, side))
            faces.append(np.column_stack(columns))
    return np.concatenate(faces)


# -- the cell ------------------------------------------------------------------------
def cell_level(
    shape: str, lengths: Mapping[str, Any], center: Sequence[float], points: np.ndarray
) -> np.ndarray:
    """Negative strictly inside the cell, positive outside (see :class:`Body.level`)."""
    x = points - np.array([*center, 0.0, 0.0][:3])
    if shape in ("disk", "sphere", "ellipse", "ellipsoid"):
        dim = SHAPE_DIM[shape]
        axes = lengths.get("semi_axes") or (lengths.get("radius") or 1.0,) * dim
        return np.sum((x[:, :dim] / np.array(axes)) ** 2, axis=1) - 1.0
    scalars = {**SHAPE_DEFAULTS[shape], **{k: v for k, v in lengths.items() if v is not None}}
    r = float(scalars["radius"])
    if shape == "capsule":
        half_core = 0.5 * float(scalars["length"]) - r
        along = np.clip(x[:, 0], -half_core, half_core)
        distance = np.sqrt((x[:, 0] - along) ** 2 + x[:, 1] ** 2 + x[:, 2] ** 2)
        return distance / r - 1.0
    # spread: a lamella (radius, thickness) under a half-ellipsoid dome
    rd = float(lengths.get("dome_radius") or 0.5 * r)
    h, t = float(scalars["height"]), float(scalars["thickness"])
    rho = np.hypot(x[:, 0], x[:, 1])
    lamella = np.maximum(rho / r, np.abs(x[:, 2] - 0.5 * t) / (0.5 * t)) - 1.0
    dome = np.maximum((rho / rd) ** 2 + (x[:, 2] / h) ** 2 - 1.0, -x[:, 2] / h)
    return np.minimum(lamella, dome)


def cell_points(shape: str, lengths: Mapping[str, Any], center: Sequence[float]) -> np.ndarray:
    """Points on the boundary of the cell (or enclosing it tightly), (n, 3)."""
    c = np.array([*center, 0.0, 0.0][:3])
    if shape in ("disk", "sphere", "ellipse", "ellipsoid"):
        dim = SHAPE_DIM[shape]
        axes = lengths.get("semi_axes") or (lengths.get("radius") or 1.0,) * dim
        unit = _sphere_points(dim)
        x = np.zeros((len(unit), 3))
        x[:, :dim] = unit * np.array(axes)
        return x + c
    scalars = {**SHAPE_DEFAULTS[shape], **{k: v for k, v in lengths.items() if v is not None}}
    r, unit = float(scalars["radius"]), _sphere_points(3)
    if shape == "capsule":
        half_core = 0.5 * float(scalars["length"]) - r
        ends = [unit * r + [s * half_core, 0.0, 0.0] for s in (-1.0, 1.0)]
        return np.concatenate(ends) + c
    rd = float(lengths.get("dome_radius") or 0.5 * r)
    h, t = float(scalars["height"]), float(scalars["thickness"])
    dome = unit[unit[:, 2] >= 0] * [rd, rd, h]
    angle = np.linspace(0.0, 2 * math.pi, _SAMPLES_2D, endpoint=False)
    rim = np.column_stack([r * np.cos(angle), r * np.sin(angle), np.zeros_like(angle)])
    return np.concatenate([dome, rim, rim + [0.0, 0.0, t]]) + c


# -- reading the tables ----------------------------------------------------------------
def _name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise NestingError(
            key,
            f"expected a lower-case name of letters, digits and '_' that starts with a "
            f"letter (at most 64 characters), got {value!r}",
        )
    return value


def _length(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise NestingError(key, f"expected a positive length (µm), got {value!r}")
    if not math.isfinite(value):
        raise NestingError(key, f"expected a finite length (µm), got {value!r}")
    return float(value)


def _lengths(key: str, value: Any, n: int) -> tuple[float, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != n:
        raise NestingError(key, f"expected a list of {n} lengths (µm), got {value!r}")
    return tuple(_length(f"{key}[{i}]", v) for i, v in enumerate(value))


def _center(key: str, value: Any, dim: int, default: Sequence[float]) -> tuple[float, ...]:
    if value is None:
        return tuple(float(c) for c in (*default, 0.0, 0.0)[:3])
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) not in (dim, 3):
        raise NestingError(key, f"expected {dim} coordinates (µm), got {value!r}")
    numbers = [v for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) != len(value) or not all(math.isfinite(v) for v in numbers):
        raise NestingError(key, f"expected {dim} coordinates (µm), got {value!r}")
    if dim == 2 and len(value) == 3 and value[2] != 0:
        raise NestingError(key, f"a 2-D mesh lies in z = 0, got {value!r}")
    return tuple(float(c) for c in (*value, 0.0)[:3])


def _body(
    key: str, name: str, table: Mapping[str, Any], dim: int, inner: bool, **cell: Any
) -> Body:
    """One body from its table (lengths in µm); ``cell`` gives its centre and size."""
    allowed = INNER_KEYS if inner else OUTSIDE_KEYS
    unknown = [k for k in table if k not in allowed]
    if unknown:
        raise NestingError(
            f"{key}.{unknown[0]}", f"unknown key; expected one of: {', '.join(allowed)}"
        )
    shapes = (INNER_SHAPES if inner else OUTSIDE_SHAPES)[dim]
    shape = table.get("shape")
    if shape not in shapes:
        raise NestingError(
            f"{key}.shape",
            f"expected one of {', '.join(shapes)} for a {dim}-D cell, got {shape!r}",
        )
    needed = _LENGTH_KEY.get(shape, "radius")
    for other in ("radius", "semi_axes", "extent"):
        if other in table and other != needed:
            raise NestingError(f"{key}.{other}", f"not used by shape {shape!r}; use {needed}")
    if needed not in table:
        raise NestingError(f"{key}.{needed}", f"missing: the {needed} of the {shape} (µm)")
    if needed == "radius":
        half = (_length(f"{key}.radius", table["radius"]),) * dim
    elif needed == "semi_axes":
        half = _lengths(f"{key}.semi_axes", table["semi_axes"], dim)
    else:
        half = tuple(0.5 * e for e in _lengths(f"{key}.extent", table["extent"], dim))
    center = _center(f"{key}.center", table.get("center"), dim, cell["center"])
    default_surface = f"{name}{SURFACE_SUFFIX}" if inner else DEFAULT_BOUNDARY
    surface = _name(f"{key}.surface", table.get("surface", default_surface))
    size = _length(f"{key}.size", table["size"]) if "size" in table else float(cell["size"])
    if inner and size >= min(half):
        raise NestingError(
            f"{key}.size",
            f"{size:g} µm is too coarse: it must be smaller than the smallest "
            f"radius/semi-axis {min(half):g} µm",
        )
    c3 = (center[0], center[1], center[2])
    return Body(key, name, surface, str(shape), dim, c3, half, size)


def bodies_from_tables(
    dim: int,
    cell_center: Sequence[float],
    cell_size: float,
    inner: Mapping[str, Any] | None,
    outside: Mapping[str, Any] | None,
) -> tuple[list[Body], Body | None]:
    """The inner bodies and the medium of a cell of dimension ``dim`` (tables in µm).

    ``inner`` maps names to tables of :data:`INNER_KEYS`, ``outside`` is a table of
    :data:`OUTSIDE_KEYS`; centres default to the cell's, sizes to ``cell_size``.
    Names must differ from each other and from ``cytosol`` and ``membrane``.

    Raises:
        NestingError: naming the key, for a value that is wrong or missing.
    """
    cell = {"center": cell_center, "size": cell_size}
    bodies: list[Body] = []
    if inner is not None and not isinstance(inner, Mapping):
        raise NestingError("inner", "expected a table of inner bodies ([mesh.inner.NAME])")
    for name, table in (inner or {}).items():
        key = f"inner.{name}"
        _name(key, name)
        if not isinstance(table, Mapping):
            raise NestingError(key, "expected a table (shape, radius or semi_axes, center, ...)")
        bodies.append(_body(key, name, table, dim, True, **cell))
    medium = None
    if outside is not None:
        if not isinstance(outside, Mapping):
            raise NestingError("outside", "expected a table (name, shape, extent or radius, ...)")
        name = _name("outside.name", outside.get("name", DEFAULT_MEDIUM))
        medium = _body("outside", name, outside, dim, False, **cell)
        if medium.size < cell_size:
            raise NestingError(
                "outside.size",
                f"{medium.size:g} µm is finer than the cell's size {cell_size:g} µm: the "
                "medium's elements grow from the cell's size at the membrane to this one",
            )
    seen = {n: f"the cell's {n}" for n in CELL_NAMES}
    for body in [*bodies, *([medium] if medium else [])]:
        name_key = "outside.name" if body.key == "outside" else body.key
        for key, name in ((name_key, body.name), (f"{body.key}.surface", body.surface)):
            if name in seen:
                raise NestingError(key, f"the name {name!r} is taken by {seen[name]}")
            seen[name] = key
    return bodies, medium


def check_nesting(
    cell_shape: str,
    cell_lengths: Mapping[str, Any],
    cell_center: Sequence[float],
    bodies: Sequence[Body],
    medium: Body | None,
) -> None:
    """Refuse bodies that do not nest: each strictly inside the cell, apart, in the medium.

    An inner body must lie strictly inside the cell and apart from the others, the
    medium must contain the cell strictly; tested on points of the boundaries.

    Raises:
        NestingError: naming the body's table.
    """
    for i, body in enumerate(bodies):
        level = cell_level(cell_shape, cell_lengths, cell_center, body.boundary_points())
        if np.max(level) >= -_STRICT:
            raise NestingError(
                body.key,
                f"the {body.describe()} is not strictly inside the cell ({cell_shape}): "
                "move its center or make it smaller",
            )
        for other in bodies[:i]:
            if (
                np.min(other.level(body.boundary_points())) <= _STRICT
                or np.min(body.level(other.boundary_points())) <= _STRICT
            ):
                raise NestingError(
                    body.key,
                    f"the {body.describe()} overlaps or touches {other.key} "
                    f"({other.describe()}): inner bodies must be apart",
                )
    if medium is not None:
        points = cell_points(cell_shape, cell_lengths, cell_center)
        if np.max(medium.level(points)) >= -_STRICT:
            raise NestingError(
                "outside",
                f"the {medium.describe()} does not contain the cell ({cell_shape}) "
                "strictly: enlarge it or move its center",
            )


def estimate_parts(
    cell_shape: str,
    cell_lengths: Mapping[str, Any],
    size: float,
    inner_size: float | None,
    grading: float | None,
    bodies: Sequence[Body],
    medium: Body | None,
) -> dict[str, float]:
    """About how many cells each part of a nested mesh has, by the key of its size.

    ``"size"``: the cell (:func:`~solver.mesh.catalog.estimate_cells`, inner bodies
    included); ``"inner.NAME.size"``: an inner body at its own size, and the cells its
    finer sizes add around it; ``"outside.size"``: the medium, whose sizes grow from
    ``size`` at the membrane to its own over :func:`medium_grading`. Sizes graded
    away from a surface fill shells whose area grows as that of a ball of the same
    volume-to-area ratio. Cheap and without gmsh; within about 50 % of gmsh's count.
    """
    dim = SHAPE_DIM[cell_shape]
    fill = FILL[dim]
    cell_volume, cell_area = measures(cell_shape, cell_lengths)
    parts = {"size": estimate_cells(cell_shape, cell_lengths, size, inner_size, grading)}
    ramp = DEFAULT_GRADING if grading is None else grading
    cytosol = cell_volume - sum(b.measures()[0] for b in bodies)
    for body in bodies:
        volume, area = body.measures()
        far = max(body.size, inner_size or size)
        shell = _Shell(dim, area, dim * volume / area, (body.size, far), ramp)
        finer = shell.cells(cytosol, fill, floor=size)
        parts[f"{body.key}.size"] = volume / (fill * body.size**dim) + finer
    if medium is not None:
        volume = max(medium.measures()[0] - cell_volume, 0.0)
        far = max(medium.size, size)
        shell = _Shell(dim, cell_area, dim * cell_volume / cell_area, (size, far), 0.0)
        shell.ramp = medium_grading(size, far)
        near = shell.cells(volume, fill)
        parts["outside.size"] = near + max(volume - shell.volume, 0.0) / (fill * far**dim)
    return parts


class _Shell:
    """Cells in the layer outside a surface of ``area`` whose sizes grow away from it.

    The size is ``sizes[0]`` up to that distance, then grows linearly to ``sizes[1]``
    over ``ramp``; the layer's area at distance d is ``area (1 + d/radius)^(dim-1)``.
    """

    def __init__(
        self, dim: int, area: float, radius: float, sizes: tuple[float, float], ramp: float
    ) -> None:
        self.dim, self.area, self.radius, self.sizes, self.ramp = dim, area, radius, sizes, ramp
        self.volume = 0.0  # of the layer counted by the last call of cells()

    def cells(self, cap: float, fill: float, floor: float | None = None) -> float:
        """Cells in the layer up to volume ``cap`` (with ``floor``: only those finer than it)."""
        near, far = self.sizes
        d = np.linspace(0.0, near + self.ramp, 401)
        h = np.where(d < near, near, near + (far - near) * (d - near) / max(self.ramp, 1e-300))
        dv = self.area * (1 + d / self.radius) ** (self.dim - 1) * (d[1] - d[0])
        keep = np.cumsum(dv) <= cap
        density = 1 / (fill * h**self.dim)
        if floor is not None:
            density = np.maximum(density - 1 / (fill * floor**self.dim), 0.0)
        self.volume = float(dv[keep].sum())
        return float((dv * density)[keep].sum())


def medium_grading(size: float, far: float) -> float:
    """Distance (µm) over which medium sizes grow from ``size`` at the membrane to ``far``.

    Twice the difference: element sizes grow by at most half the distance travelled.
    """
    return 2.0 * max(far - size, 0.0) if far > size else 0.0
