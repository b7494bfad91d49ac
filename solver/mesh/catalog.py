"""The cell shapes by name: their dimension, the lengths each takes, and defaults.

Pure data, read by the run-file reader (:mod:`solver.config.mesh`) and by the shapes
that gmsh meshes (:mod:`solver.mesh.shapes`). A new shape is added here (its name,
dimension, lengths, defaults) and in :class:`solver.mesh.shapes.CellShape` (how it is
built).
"""

from __future__ import annotations

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
