"""The cell shapes by name: their dimension, the lengths each takes, and defaults.

Pure data (and a pure estimate of a mesh's size, :func:`estimate_cells`), read by the
run-file reader (:mod:`solver.config.mesh`) and by the shapes
that gmsh meshes (:mod:`solver.mesh.shapes`). A new shape is added here (its name,
dimension, lengths, defaults) and in :class:`solver.mesh.shapes.CellShape` (how it is
built).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

FILE_SHAPE = "file"  # ``shape`` of a ``[mesh]`` table that reads a mesh file
SHAPES: tuple[str, ...] = ("disk", "ellipse", "sphere", "ellipsoid", "spread", "capsule")
SHAPE_DIM: dict[str, int] = {
    "disk": 2,
    "ellipse": 2,
    "sphere": 3,
    "ellipsoid": 3,
    "spread": 3,
    "capsule": 3,
}
# Lengths (µm) each shape takes; a semi_axes tuple stands for several.
SHAPE_LENGTHS: dict[str, tuple[str, ...]] = {
    "disk": ("radius",),
    "ellipse": ("semi_axes",),
    "sphere": ("radius",),
    "ellipsoid": ("semi_axes",),
    "spread": ("radius", "height", "dome_radius", "thickness"),
    "capsule": ("radius", "length"),
}
NUM_SEMI_AXES: dict[str, int] = {"ellipse": 2, "ellipsoid": 3}
# Defaults of `polarity mesh SHAPE` (µm): a 10-µm-wide round cell, and for `spread`
# a neutrophil-sized dome on a lamella, for `capsule` a 12-µm rod.
SHAPE_DEFAULTS: dict[str, dict[str, float | tuple[float, ...]]] = {
    "disk": {"radius": 5.0},
    "ellipse": {"semi_axes": (6.0, 4.0)},
    "sphere": {"radius": 5.0},
    "ellipsoid": {"semi_axes": (6.0, 4.0, 4.0)},
    "spread": {"radius": 10.0, "height": 4.0, "dome_radius": 5.0, "thickness": 0.8},
    "capsule": {"radius": 3.0, "length": 12.0},
}
DEFAULT_GRADING = 3.0  # µm: cytosolic depletion layer (D_c/k)^½ (docs/numerics.md, Mesh resolution)
SUPPORTED_ORDERS = (1, 2)

#: a cell of the target size h takes about FILL[dim]·h^dim of the domain: the area of
#: an equilateral triangle of edge h (2-D), twice the volume of a regular tetrahedron
#: (3-D: measured on gmsh's HXT meshes of spheres, ellipsoids, capsules and spreads)
FILL = {2: math.sqrt(3) / 4, 3: 1 / (3 * math.sqrt(2))}


def measures(shape: str, lengths: Mapping[str, float | tuple[float, ...]]) -> tuple[float, float]:
    """(volume, boundary measure) of a shape: µm³ and µm² in 3-D, µm² and µm in 2-D.

    Lengths not given take the defaults of :class:`solver.mesh.shapes.CellShape`
    (radius 1 µm for disk and sphere). Exact for disk, sphere and capsule; within a
    few percent for ellipse, ellipsoid and spread (whose lamella and dome overlap).
    """
    given = {k: v for k, v in lengths.items() if v is not None}

    def scalar(key: str) -> float:
        if key in given:
            return float(given[key])  # type: ignore[arg-type]
        if key == "radius" and shape in ("disk", "sphere"):
            return 1.0
        if key == "dome_radius":
            return 0.5 * scalar("radius")
        return float(SHAPE_DEFAULTS[shape][key])  # type: ignore[arg-type]

    if shape in NUM_SEMI_AXES:
        axes = tuple(float(a) for a in given.get("semi_axes", SHAPE_DEFAULTS[shape]["semi_axes"]))  # type: ignore[union-attr]
        if shape == "ellipse":
            a, b = axes
            h = ((a - b) / (a + b)) ** 2
            return math.pi * a * b, math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))
        a, b, c = axes
        p = 1.6075  # Knud Thomsen's approximation of the ellipsoid's area
        mean = ((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3
        return 4 / 3 * math.pi * a * b * c, 4 * math.pi * mean ** (1 / p)
    r = scalar("radius")
    if shape == "disk":
        return math.pi * r * r, 2 * math.pi * r
    if shape == "sphere":
        return 4 / 3 * math.pi * r**3, 4 * math.pi * r * r
    if shape == "capsule":
        core = max(scalar("length") - 2 * r, 0.0)
        return (
            math.pi * r * r * core + 4 / 3 * math.pi * r**3,
            2 * math.pi * r * core + 4 * math.pi * r * r,
        )
    # spread: a half-ellipsoid dome (dome_radius, dome_radius, height) on a lamella
    rd, h, t = scalar("dome_radius"), scalar("height"), scalar("thickness")
    _, dome_area = measures("ellipsoid", {"semi_axes": (rd, rd, h)})
    volume = 2 / 3 * math.pi * rd * rd * h + math.pi * r * r * t
    return volume, 0.5 * dome_area + 2 * math.pi * r * r + 2 * math.pi * r * t


def estimate_cells(
    shape: str,
    lengths: Mapping[str, float | tuple[float, ...]],
    size: float,
    inner_size: float | None = None,
    grading: float | None = None,
) -> float:
    """About how many cells (tetrahedra, triangles) a generated mesh of a shape has.

    Cells of edge ``size`` fill a layer one element deep at the membrane; with
    ``inner_size`` above ``size``, the edge grows linearly over ``grading`` µm to
    ``inner_size``, which fills the rest. Cheap and without gmsh, to refuse a mesh
    too fine to make before trying; within about 50 % of gmsh's count.
    """
    dim = SHAPE_DIM[shape]
    volume, area = measures(shape, lengths)
    fill = FILL[dim]
    inner = size if inner_size is None or inner_size <= size else inner_size
    if inner == size:
        return volume / (fill * size**dim)
    ramp = DEFAULT_GRADING if grading is None else grading
    # the membrane layer, then the ramp: ∫ dd / h(d)^dim for h from size to inner
    near = min(volume, area * size)
    count = near / (fill * size**dim)
    if dim == 3:
        per_area = ramp / (inner - size) * (1 / size**2 - 1 / inner**2) / 2
    else:
        per_area = ramp / (inner - size) * (1 / size - 1 / inner)
    ramped = min(volume - near, area * ramp)
    count += min(area * per_area / fill, ramped / (fill * size**dim))
    count += max(volume - near - ramped, 0.0) / (fill * inner**dim)
    return count
