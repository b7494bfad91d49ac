"""The ``[mesh]`` table of a run file: validated once, into a typed :class:`MeshSpec`.

A mesh is a generated shape (:mod:`solver.mesh.catalog` names them and the lengths
each takes; lengths in µm), optionally with inner bodies (``[mesh.inner.NAME]``) and
in a medium (``[mesh.outside]``, see :mod:`solver.mesh.bodies`), or a file
(``shape = "file"``, ``file`` relative to the run file). Every check of the table is
here; the mesh builders (:func:`solver.mesh.meshing.mesh_from_config`) take the spec as
it is.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solver.config.values import Values, shown
from solver.errors import InputError
from solver.mesh import bodies
from solver.mesh.catalog import (
    FILE_SHAPE,
    NUM_SEMI_AXES,
    SHAPE_DIM,
    SHAPE_LENGTHS,
    SHAPES,
    SUPPORTED_ORDERS,
    estimate_cells,
)

KEYS = (
    "shape",
    "radius",
    "semi_axes",
    "height",
    "dome_radius",
    "thickness",
    "length",
    "size",
    "inner_size",
    "grading",
    "center",
    "file",
    "order",
    "inner",
    "outside",
)
_ALL_LENGTHS = ("radius", "semi_axes", "height", "dome_radius", "thickness", "length")


@dataclass(frozen=True)
class MeshSpec(Mapping[str, Any]):
    """A validated ``[mesh]`` table in solver units (µm).

    Attributes:
        shape: A name of :data:`solver.mesh.catalog.SHAPES`, or ``"file"``.
        table: The validated keys and values (``shape`` included), as written to
            ``run.json``; the spec reads as this mapping.
    """

    shape: str
    table: Mapping[str, Any] = field(default_factory=dict)

    @property
    def file(self) -> Path | None:
        """The mesh file (absolute, or relative to the working folder), if any."""
        return self.table.get("file")

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments of :func:`solver.mesh.meshing.generate` (not for files)."""
        return {k: v for k, v in self.table.items() if k != "shape"}

    def __getitem__(self, key: str) -> Any:
        return self.table[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.table)

    def __len__(self) -> int:
        return len(self.table)


def read_mesh(v: Values, table: Mapping[str, Any]) -> MeshSpec:
    """Validate a ``[mesh]`` table; InputError naming the key for anything wrong."""
    v.keys("mesh", table, KEYS)
    shape = v.choice(
        "mesh.shape",
        table.get("shape", FILE_SHAPE if "file" in table else None),
        (*SHAPES, FILE_SHAPE),
    )
    if shape == FILE_SHAPE:
        return MeshSpec(shape, _file_table(v, table))
    if "size" not in table:
        raise InputError("mesh.size", "missing: the target element size, e.g. '0.5 um'")
    out: dict[str, Any] = {"shape": shape, "size": v.positive("mesh.size", table["size"], "length")}
    takes = SHAPE_LENGTHS[shape]
    for key in _ALL_LENGTHS:
        if key in table and key not in takes:
            hint = "use radius" if takes == ("radius",) else f"it takes {', '.join(takes)}"
            raise InputError(f"mesh.{key}", f"not used by shape {shape!r}; {hint}")
    for key in ("inner_size", "grading"):
        if key in table:
            out[key] = v.positive(f"mesh.{key}", table[key], "length")
    if shape in NUM_SEMI_AXES:
        axes, n = table.get("semi_axes"), NUM_SEMI_AXES[shape]
        if not isinstance(axes, list) or len(axes) != n:
            raise InputError("mesh.semi_axes", f"expected a list of {n} lengths for {shape!r}")
        out["semi_axes"] = tuple(
            v.positive(f"mesh.semi_axes[{i}]", a, "length") for i, a in enumerate(axes)
        )
    elif takes == ("radius",):
        out["radius"] = v.positive("mesh.radius", table.get("radius", 1.0), "length")
    else:  # lengths not given take the shape's defaults
        for key in takes:
            if key in table:
                out[key] = v.positive(f"mesh.{key}", table[key], "length")
    dim = SHAPE_DIM[shape]
    if "center" in table:
        center = v.vector("mesh.center", table["center"], "length")
        if len(center) < dim or (len(center) == 3 and dim == 2 and center[2] != 0):
            raise InputError(
                "mesh.center", f"expected {dim} coordinates for a {dim}-D {shape}, got {center}"
            )
        out["center"] = center
    if "order" in table:
        out["order"] = v.integer("mesh.order", table["order"], SUPPORTED_ORDERS)
    nesting = _nesting(v, table, out) if "inner" in table or "outside" in table else None
    _check_elements(v, out, nesting)
    return MeshSpec(shape, out)


def _body_table(v: Values, key: str, table: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    """An inner body's or the medium's table, its lengths in µm (checked further by bodies)."""
    table = v.table(key, table)
    v.keys(key, table, allowed)
    out: dict[str, Any] = {}
    for k, value in table.items():
        if k in ("radius", "size"):
            out[k] = v.positive(f"{key}.{k}", value, "length")
        elif k in ("semi_axes", "extent", "center"):
            out[k] = v.vector(f"{key}.{k}", value, "length")
        else:
            out[k] = value
    return out


def _nesting(
    v: Values, table: Mapping[str, Any], out: dict[str, Any]
) -> tuple[list[bodies.Body], bodies.Body | None]:
    """Read ``[mesh.inner.NAME]`` and ``[mesh.outside]`` into ``out``; check the nesting."""
    shape = out["shape"]
    if "inner" in table:
        inner = v.table("mesh.inner", table["inner"])
        out["inner"] = {
            name: _body_table(v, f"mesh.inner.{name}", body, bodies.INNER_KEYS)
            for name, body in inner.items()
        }
    if "outside" in table:
        out["outside"] = _body_table(v, "mesh.outside", table["outside"], bodies.OUTSIDE_KEYS)
    lengths = {k: out[k] for k in _ALL_LENGTHS if k in out}
    center = out.get("center", (0.0, 0.0, 0.0))
    try:
        found = bodies.bodies_from_tables(
            SHAPE_DIM[shape], center, out["size"], out.get("inner"), out.get("outside")
        )
        bodies.check_nesting(shape, lengths, center, *found)
    except bodies.NestingError as err:
        raise InputError(f"mesh.{err.key}", err.message) from None
    return found


def _check_elements(
    v: Values,
    out: Mapping[str, Any],
    nesting: tuple[list[bodies.Body], bodies.Body | None] | None = None,
) -> None:
    """Refuse a generated mesh estimated to have more cells than ``[limits] mesh_elements``."""
    size, inner = out["size"], out.get("inner_size")
    if inner is not None and inner < size:
        raise InputError("mesh.inner_size", f"expected at least mesh.size ({size:g} um)")
    lengths = {k: out[k] for k in _ALL_LENGTHS if k in out}
    parts = {"size": estimate_cells(out["shape"], lengths, size, inner, out.get("grading"))}
    if nesting is not None:
        parts = bodies.estimate_parts(
            out["shape"], lengths, size, inner, out.get("grading"), *nesting
        )
    cells = sum(parts.values())
    limit = v.limits.mesh_elements
    if cells > limit:
        largest = max(parts, key=lambda k: parts[k])
        key = f"mesh.{largest}"
        if largest == "size" and inner is not None and inner > size:
            key = "mesh.inner_size"
        what = (
            f"about {cells:.2g} cells for this {out['shape']} "
            f"(size {size:g} um{f', inner_size {inner:g} um' if inner else ''})"
        )
        if nesting is not None:
            what += f", {parts[largest]:.2g} of them from {key}"
        raise InputError(key, v.limits.exceeded("mesh_elements", what))


def _file_table(v: Values, table: Mapping[str, Any]) -> dict[str, Any]:
    extra = [k for k in table if k not in ("shape", "file")]
    if extra:
        raise InputError(f"mesh.{extra[0]}", "not used with shape 'file' (the file has the mesh)")
    if "file" not in table:
        raise InputError("mesh.file", "missing: the path of a gmsh .msh or XDMF mesh")
    path = v.path("mesh.file", table["file"])
    try:
        exists = path.is_file()
    except OSError as err:  # a name too long
        raise InputError("mesh.file", f"cannot read {shown(str(path))}: {err.strerror}") from None
    if not exists:
        raise InputError("mesh.file", f"mesh file {shown(str(path))} does not exist")
    return {"shape": FILE_SHAPE, "file": path}
