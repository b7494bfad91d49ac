"""Meshes of the cell: generation with gmsh, reading, writing and summaries.

The cell is a volume, the *cytosol* (a 2-D cross-section or a 3-D cell: the
shapes of :mod:`solver.mesh.shapes`, or a surface imported by
:mod:`solver.mesh.surface`), bounded by the *membrane*, its whole boundary; it may
hold inner bodies and sit in a medium (:mod:`solver.mesh.nested`). Every mesh
handed to the rest of the package is a :class:`~solver.mesh.tagged.TaggedMesh`
whose ``regions`` name its volumes and surfaces: a one-volume mesh has all cells
tagged :data:`CYTOSOL` and all membrane facets :data:`MEMBRANE`. Files are read
and written by :mod:`solver.mesh.files`. Lengths are in µm throughout.

gmsh runs on rank 0 only; :func:`dolfinx.io.gmsh.model_to_mesh` distributes
the mesh. Every public function is collective: call it on all ranks of
``comm`` with the same arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:  # the dolfinx wheel must be initialised before dolfinx or petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:  # a dolfinx installed another way (conda, spack, docker images)
    pass

from mpi4py import MPI

import numpy as np

from solver.config.mesh import MeshSpec, read_mesh
from solver.config.values import Values
from solver.errors import InputError
from solver.mesh import bodies as mesh_bodies
from solver.mesh import shapes as mesh_shapes
from solver.mesh.files import (
    CELL_TAGS_NAME,
    FACET_TAGS_NAME,
    MESH_NAME,
    read,
    write_xdmf,
)
from solver.mesh.tagged import (
    CYTOSOL,
    CYTOSOL_GROUP,
    MEMBRANE,
    MEMBRANE_GROUP,
    MeshError,
    TaggedMesh,
    default_regions,
    distribute_model,
    on_root,
    write_msh,
)

if TYPE_CHECKING:
    from solver.config import RunConfig

__all__ = [
    "CELL_TAGS_NAME",
    "CYTOSOL",
    "CYTOSOL_GROUP",
    "FACET_TAGS_NAME",
    "MEMBRANE",
    "MEMBRANE_GROUP",
    "MESH_NAME",
    "SHAPES",
    "MeshError",
    "TaggedMesh",
    "default_regions",
    "distribute_model",
    "generate",
    "on_root",
    "read",
    "write_msh",
    "write_xdmf",
    "summary",
    "mesh_from_config",
]

SHAPES: tuple[str, ...] = mesh_shapes.SHAPES  # what generate() meshes


def generate(
    shape: str,
    comm: MPI.Comm,
    *,
    size: float,
    radius: float | None = None,
    semi_axes: Sequence[float] | None = None,
    height: float | None = None,
    dome_radius: float | None = None,
    thickness: float | None = None,
    length: float | None = None,
    center: Sequence[float] = (0.0, 0.0, 0.0),
    order: int = 1,
    inner_size: float | None = None,
    grading: float | None = None,
    msh_file: str | Path | None = None,
    msh_binary: bool = False,
    inner: Mapping[str, Mapping[str, Any]] | None = None,
    outside: Mapping[str, Any] | None = None,
) -> TaggedMesh:
    """Mesh a cell shape with gmsh (see :mod:`solver.mesh.shapes` for the shapes).

    With ``inner`` or ``outside``, the cell holds inner bodies or sits in a medium
    (:mod:`solver.mesh.nested`, :mod:`solver.mesh.bodies`): its regions name every
    volume and surface, and it is ghosted across facets.

    Args:
        shape: One of :data:`SHAPES`.
        comm: Communicator to distribute the mesh on.
        size: Element size at the membrane (µm).
        radius: Radius of a disk, sphere or capsule, or of the lamella of a
            ``spread`` cell (µm; disk and sphere: 1 µm by default).
        semi_axes: ``(a, b)`` of an ellipse or ``(a, b, c)`` of an
            ellipsoid (µm), along x, y(, z).
        height: Height of the dome of a ``spread`` cell (µm).
        dome_radius: Base radius of the dome of a ``spread`` cell (µm).
        thickness: Thickness of the lamella of a ``spread`` cell (µm).
        length: End-to-end length of a ``capsule`` (µm).
        center: Centre of the cell (µm); a 2-D shape lies in z = 0.
        order: Geometry order of the cells (1 or 2).
        inner_size: Element size deep inside (µm); default ``size`` (uniform).
        grading: Distance (µm) over which sizes grow from ``size`` to
            ``inner_size`` (default 3 µm).
        msh_file: If given, the root also saves the gmsh mesh there (.msh).
        msh_binary: Save ``msh_file`` in gmsh's binary format (default: text).
        inner: Inner bodies by name: tables of ``shape``, ``radius`` or
            ``semi_axes``, ``center``, ``surface``, ``size`` (µm).
        outside: The medium: a table of ``name``, ``shape``, ``extent`` or
            ``radius``, ``center``, ``surface``, ``size`` (µm).

    Returns:
        The mesh (gdim = 2 for disk/ellipse, 3 otherwise) with tags.

    Raises:
        MeshError: naming the shape, for arguments that describe no valid cell, or
            the key (``inner.nucleus.radius``) for inner bodies or a medium that do
            not nest.
    """
    try:
        cell = mesh_shapes.CellShape.from_arguments(
            shape,
            size=size,
            center=center,
            order=order,
            inner_size=inner_size,
            grading=grading,
            radius=radius,
            semi_axes=semi_axes,
            height=height,
            dome_radius=dome_radius,
            thickness=thickness,
            length=length,
        )
    except mesh_shapes.ShapeError as exc:
        raise MeshError(str(exc)) from None
    if inner or outside is not None:
        return _generate_nested(cell, comm, inner, outside, msh_file, msh_binary)
    source = cell.describe()

    def build() -> None:
        cell.mesh((CYTOSOL, CYTOSOL_GROUP), (MEMBRANE, MEMBRANE_GROUP))
        write_msh(None if msh_file is None else Path(msh_file), msh_binary)

    return on_root(comm, source, build, lambda _: distribute_model(comm, cell.dim, source))


def _generate_nested(
    cell: mesh_shapes.CellShape,
    comm: MPI.Comm,
    inner: Mapping[str, Mapping[str, Any]] | None,
    outside: Mapping[str, Any] | None,
    msh_file: str | Path | None,
    msh_binary: bool,
) -> TaggedMesh:
    """:func:`generate` with inner bodies or a medium."""
    from solver.mesh import nested

    lengths = dict(cell.lengths)
    try:
        bodies, medium = mesh_bodies.bodies_from_tables(
            cell.dim, cell.center, cell.size, inner, outside
        )
        mesh_bodies.check_nesting(cell.name, lengths, cell.center, bodies, medium)
    except mesh_bodies.NestingError as exc:
        raise MeshError(str(exc)) from None
    source = nested.describe(cell, bodies, medium)

    def build() -> dict[str, tuple[int, int]]:
        regions = nested.build(cell, bodies, medium)
        write_msh(None if msh_file is None else Path(msh_file), msh_binary)
        return regions

    return on_root(
        comm, source, build, lambda regions: distribute_model(comm, cell.dim, source, regions)
    )


def summary(tagged: TaggedMesh) -> dict[str, Any]:
    """Global counts and cell sizes of a mesh. Collective.

    Returns:
        ``dim``, ``cells``, ``vertices``, ``membrane_facets`` (global
        counts) and ``h_min``, ``h_max``, ``h_mean``: smallest, largest and
        mean cell diameter (µm). A mesh of several volumes adds
        ``compartments``: name -> global number of cells (a volume) or facets (a
        surface).
    """
    mesh, comm = tagged.mesh, tagged.mesh.comm
    tdim = mesh.topology.dim
    cell_map = mesh.topology.index_map(tdim)
    h = mesh.h(tdim, np.arange(cell_map.size_local, dtype=np.int32))
    membrane = tagged.facet_tags.find(tagged.regions.get(MEMBRANE_GROUP, (tdim - 1, MEMBRANE))[1])
    membrane = membrane[membrane < mesh.topology.index_map(tdim - 1).size_local]
    return {
        "dim": tdim,
        "cells": cell_map.size_global,
        "vertices": mesh.topology.index_map(0).size_global,
        "membrane_facets": comm.allreduce(int(membrane.size), op=MPI.SUM),
        "h_min": comm.allreduce(float(h.min(initial=np.inf)), op=MPI.MIN),
        "h_max": comm.allreduce(float(h.max(initial=0.0)), op=MPI.MAX),
        "h_mean": comm.allreduce(float(h.sum()), op=MPI.SUM) / cell_map.size_global,
    } | _compartments(tagged)


def _compartments(tagged: TaggedMesh) -> dict[str, Any]:
    """``{"compartments": {name: owned cells or facets, global}}`` of a nested mesh, else {}."""
    mesh = tagged.mesh
    tdim = mesh.topology.dim
    if dict(tagged.regions) == default_regions(tdim):
        return {}
    counts = {}
    for name, (dim, tag) in tagged.regions.items():
        tags = tagged.cell_tags if dim == tdim else tagged.facet_tags
        found = tags.find(tag)
        owned = int(np.count_nonzero(found < mesh.topology.index_map(dim).size_local))
        counts[name] = mesh.comm.allreduce(owned, op=MPI.SUM)
    return {"compartments": counts}


def mesh_from_config(
    spec: MeshSpec | Mapping[str, Any], comm: MPI.Comm, base_dir: Path | None = None
) -> TaggedMesh:
    """Make the mesh a ``[mesh]`` table asks for.

    ``spec`` is a :class:`~solver.config.mesh.MeshSpec` (as in a loaded run file), or
    a table (lengths in µm), validated here as a run file's would be, with a file
    relative to ``base_dir``.

    Raises:
        MeshError: naming the key, for a table that describes no mesh, or naming the
            shape or file, for a mesh that cannot be made or read.
    """
    if not isinstance(spec, MeshSpec):
        try:
            spec = read_mesh(Values(Path(base_dir or ".")), spec)
        except InputError as err:
            raise MeshError(f"[mesh]: {err}") from None
    if spec.file is not None:
        return read(spec.file, comm)
    return generate(spec.shape, comm, **spec.arguments())


def cell_mesh(cfg: RunConfig, comm: MPI.Comm) -> TaggedMesh:
    """The mesh of a run file's ``[mesh]`` table; InputError naming the file if it fails."""
    try:
        return mesh_from_config(cfg.mesh, comm)
    except MeshError as err:
        raise InputError(f"{cfg.source}: mesh", str(err)) from None
