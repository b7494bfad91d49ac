"""Meshes of the cell: generation with gmsh, reading, writing and summaries.

The cell is a volume, the *cytosol* (a 2-D cross-section or a 3-D cell: the
shapes of :mod:`solver.mesh.shapes`, or a surface imported by
:mod:`solver.mesh.surface`), bounded by the *membrane*, its whole boundary.
Every mesh handed to the rest of the package is a :class:`TaggedMesh`: all
cells carry the tag :data:`CYTOSOL` and all membrane facets the tag
:data:`MEMBRANE`. Lengths are in µm throughout.

gmsh runs on rank 0 only; :func:`dolfinx.io.gmsh.model_to_mesh` distributes
the mesh. Every public function is collective: call it on all ranks of
``comm`` with the same arguments.
"""

from __future__ import annotations

import contextlib
import signal
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:  # the dolfinx wheel must be initialised before dolfinx or petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:  # a dolfinx installed another way (conda, spack, docker images)
    pass

from mpi4py import MPI

import dolfinx.io
import dolfinx.io.gmsh
import dolfinx.mesh
import gmsh
import numpy as np

from solver.config.mesh import MeshSpec, read_mesh
from solver.config.values import Values
from solver.errors import InputError
from solver.mesh import shapes as mesh_shapes

if TYPE_CHECKING:
    from solver.config import RunConfig

__all__ = [
    "CYTOSOL",
    "MEMBRANE",
    "SHAPES",
    "MeshError",
    "TaggedMesh",
    "generate",
    "read",
    "write_xdmf",
    "summary",
    "mesh_from_config",
]

CYTOSOL: int = 1  # cell tag of the cytosol (every cell)
MEMBRANE: int = 2  # facet tag of the membrane (the boundary of the cell)
SHAPES: tuple[str, ...] = mesh_shapes.SHAPES  # what generate() meshes

MESH_NAME, CELL_TAGS_NAME, FACET_TAGS_NAME = "mesh", "cell_tags", "facet_tags"  # XDMF grids
MEMBRANE_GROUP, CYTOSOL_GROUP = "membrane", "cytosol"  # gmsh physical group names

_ROOT = 0  # the rank that runs gmsh
_MESH_SUFFIXES = (".msh", ".xdmf")
_XDMF_MESH_NAMES = (MESH_NAME, "Grid")
_KEPT_SIGNALS = tuple(
    getattr(signal, n) for n in ("SIGTERM", "SIGUSR1", "SIGINT") if hasattr(signal, n)
)
_PLANE_TOL = 1e-12  # |z| (µm) below which a 2-D mesh lies in the plane


class MeshError(ValueError):
    """A mesh cannot be made or read; the message names the file or shape."""


@dataclass(frozen=True)
class TaggedMesh:
    """A distributed cell mesh with its cytosol and membrane tags.

    Attributes:
        mesh: The mesh (coordinates in µm), of dimension 2 or 3.
        cell_tags: :data:`CYTOSOL` on every local cell.
        facet_tags: :data:`MEMBRANE` on the membrane facets, nothing else.
        source: Where the mesh came from, e.g. ``"generated sphere
            radius=5 size=0.5"`` or the file path.
    """

    mesh: dolfinx.mesh.Mesh
    cell_tags: dolfinx.mesh.MeshTags
    facet_tags: dolfinx.mesh.MeshTags
    source: str


def _raise_collectively(comm: MPI.Comm, error: str | None) -> None:
    """Raise :class:`MeshError` on every rank if the root reported ``error``."""
    error = comm.bcast(error, root=_ROOT)
    if error:
        raise MeshError(error)


@contextlib.contextmanager
def _gmsh_model(name: str) -> Iterator[None]:
    """A quiet, fresh gmsh model; gmsh is finalized after if we started it."""
    started = not gmsh.isInitialized()
    if started:
        # gmsh installs its own handlers of SIGTERM & co.: keep the run's (clean stops)
        handlers = {s: signal.getsignal(s) for s in _KEPT_SIGNALS}
        gmsh.initialize(interruptible=False)
        for s, handler in handlers.items():
            if handler is not None:
                signal.signal(s, handler)
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.model.add(name)
    try:
        yield
    finally:
        if started:
            gmsh.finalize()
        else:
            gmsh.model.remove()


def _all_local_cells(mesh: dolfinx.mesh.Mesh) -> dolfinx.mesh.MeshTags:
    """:data:`CYTOSOL` on every local (owned and ghost) cell."""
    cell_map = mesh.topology.index_map(mesh.topology.dim)
    cells = np.arange(cell_map.size_local + cell_map.num_ghosts, dtype=np.int32)
    return dolfinx.mesh.meshtags(mesh, mesh.topology.dim, cells, CYTOSOL)


def _membrane_tags(
    mesh: dolfinx.mesh.Mesh, gmsh_tags: dolfinx.mesh.MeshTags | None
) -> dolfinx.mesh.MeshTags:
    """Facet tags of a generated mesh: :data:`MEMBRANE` on the whole boundary.

    gmsh's tags (owned facets only) are kept if they are exactly the
    exterior facets; otherwise the exterior facets are tagged here.
    """
    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim - 1, tdim)
    exterior = dolfinx.mesh.exterior_facet_indices(mesh.topology)
    if gmsh_tags is not None:
        same = np.array_equal(np.sort(gmsh_tags.find(MEMBRANE)), exterior)
        if mesh.comm.allreduce(same, op=MPI.LAND):
            return gmsh_tags
    return dolfinx.mesh.meshtags(mesh, tdim - 1, exterior.astype(np.int32), MEMBRANE)


def on_root(
    comm: MPI.Comm, name: str, build: Callable[[], Any], finish: Callable[[Any], TaggedMesh]
) -> TaggedMesh:
    """Run ``build`` in a gmsh model on the root, then ``finish`` everywhere (collective).

    ``build`` returns (root only) a value broadcast to ``finish``, or raises
    :class:`MeshError`/gmsh's ``Exception``, which is raised on all ranks.
    """
    if comm.rank != _ROOT:
        _raise_collectively(comm, None)
        return finish(comm.bcast(None, root=_ROOT))
    with _gmsh_model(name):
        try:
            info = build()
        except MeshError as exc:
            _raise_collectively(comm, str(exc))
        except Exception as exc:  # gmsh raises bare Exception
            _raise_collectively(comm, f"{name}: gmsh failed: {exc}")
        _raise_collectively(comm, None)
        return finish(comm.bcast(info, root=_ROOT))


def write_msh(path: Path | None, binary: bool = False) -> None:
    """Save the meshed gmsh model (its physical groups only) to ``path`` (root only)."""
    if path is not None:
        gmsh.option.setNumber("Mesh.SaveAll", 0)
        gmsh.option.setNumber("Mesh.Binary", int(binary))
        gmsh.write(str(path))


def distribute_model(comm: MPI.Comm, dim: int, source: str) -> TaggedMesh:
    """Distribute the gmsh model of the root (collective)."""
    model = gmsh.model if comm.rank == _ROOT else None
    data = dolfinx.io.gmsh.model_to_mesh(model, comm, _ROOT, gdim=dim)
    return TaggedMesh(
        data.mesh, _all_local_cells(data.mesh), _membrane_tags(data.mesh, data.facet_tags), source
    )


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
) -> TaggedMesh:
    """Mesh a cell shape with gmsh (see :mod:`solver.mesh.shapes` for the shapes).

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

    Returns:
        The mesh (gdim = 2 for disk/ellipse, 3 otherwise) with tags.

    Raises:
        MeshError: naming the shape, for arguments that describe no valid cell.
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
    source = cell.describe()

    def build() -> None:
        cell.mesh((CYTOSOL, CYTOSOL_GROUP), (MEMBRANE, MEMBRANE_GROUP))
        write_msh(None if msh_file is None else Path(msh_file), msh_binary)

    return on_root(comm, source, build, lambda _: distribute_model(comm, cell.dim, source))


def _prepare_msh(path: Path) -> int:
    """Load ``path`` into the gmsh model and retag it (root only).

    Keeps one physical group of cells (all of them, :data:`CYTOSOL`) and one
    of membrane facets (:data:`MEMBRANE`). Returns the topological dimension.
    """
    gmsh.merge(str(path))
    gmsh.model.mesh.renumberNodes()  # model_to_mesh needs node tags 1..N
    dims = [d for d in range(4) if len(gmsh.model.mesh.getElementTypes(d))]
    tdim = max(dims) if dims else 0
    if tdim not in (2, 3):
        raise MeshError(f"{path}: expected a 2-D or 3-D mesh, found dimension {tdim}")
    if len(gmsh.model.mesh.getElementTypes(tdim)) > 1:
        raise MeshError(f"{path}: mixed cell types are not supported")
    if tdim == 2 and np.max(np.abs(gmsh.model.mesh.getNodes()[1][2::3]), initial=0) > _PLANE_TOL:
        raise MeshError(f"{path}: a 2-D mesh must lie in the plane z = 0")
    groups = {(d, t): gmsh.model.getPhysicalName(d, t) for d, t in gmsh.model.getPhysicalGroups()}
    named = [t for (d, t), n in groups.items() if d == tdim - 1 and n.lower() == MEMBRANE_GROUP]
    chosen = named or [t for (d, t) in groups if (d, t) == (tdim - 1, MEMBRANE)]
    entities = sorted(
        {e for t in chosen for e in gmsh.model.getEntitiesForPhysicalGroup(tdim - 1, t)}
    )
    if not entities:
        found = (
            ", ".join(f"{n or '(unnamed)'} (dim {d}, tag {t})" for (d, t), n in groups.items())
            or "none"
        )
        raise MeshError(
            f"{path}: no membrane facets: expected a physical group of dimension "
            f"{tdim - 1} named {MEMBRANE_GROUP!r} or tagged {MEMBRANE}; "
            f"physical groups found: {found}"
        )
    gmsh.model.removePhysicalGroups()
    gmsh.model.addPhysicalGroup(
        tdim, [t for _, t in gmsh.model.getEntities(tdim)], CYTOSOL, CYTOSOL_GROUP
    )
    gmsh.model.addPhysicalGroup(tdim - 1, entities, MEMBRANE, MEMBRANE_GROUP)
    return tdim


def _read_msh(path: Path, comm: MPI.Comm) -> TaggedMesh:
    """Read a gmsh ``.msh`` file (see :func:`read`)."""

    def finish(tdim: int) -> TaggedMesh:
        model = gmsh.model if comm.rank == _ROOT else None
        data = dolfinx.io.gmsh.model_to_mesh(model, comm, _ROOT, gdim=tdim)
        assert data.facet_tags is not None  # _prepare_msh made the membrane group
        return TaggedMesh(data.mesh, _all_local_cells(data.mesh), data.facet_tags, str(path))

    return on_root(comm, str(path), lambda: _prepare_msh(path), finish)


def _xdmf_grids(path: Path) -> tuple[list[str], list[str]]:
    """Names of all grids under ``/Xdmf/Domain`` and of those with data (tags)."""
    try:
        domain = ElementTree.parse(path).getroot().find("Domain")
    except ElementTree.ParseError as exc:
        raise MeshError(f"{path}: not a readable XDMF file ({exc})") from exc
    grids = [] if domain is None else domain.findall("Grid")
    return (
        [g.get("Name", "") for g in grids],
        [g.get("Name", "") for g in grids if g.find("Attribute") is not None],
    )


def _read_xdmf(path: Path, comm: MPI.Comm) -> TaggedMesh:
    """Read an XDMF file with facet tags (see :func:`read`)."""
    grids, error = None, None
    if comm.rank == _ROOT:
        try:
            grids = _xdmf_grids(path)
        except MeshError as exc:
            error = str(exc)
    _raise_collectively(comm, error)
    grids, tag_grids = comm.bcast(grids, root=_ROOT)
    mesh_name = next((n for n in _XDMF_MESH_NAMES if n in grids), None)
    if mesh_name is None:
        raise MeshError(
            f"{path}: expected a mesh grid named one of {_XDMF_MESH_NAMES}, found grids {grids}"
        )
    try:
        xdmf = dolfinx.io.XDMFFile(comm, str(path), "r")
        mesh = xdmf.read_mesh(name=mesh_name)
    except RuntimeError as exc:  # e.g. the .h5 file is missing
        raise MeshError(f"{path}: cannot read mesh {mesh_name!r}: {exc}") from exc
    with xdmf:
        tdim, gdim = mesh.topology.dim, mesh.geometry.dim
        if tdim not in (2, 3) or gdim != tdim:
            raise MeshError(
                f"{path}: expected a 2-D or 3-D mesh (tdim = gdim), found tdim={tdim}, gdim={gdim}"
            )
        mesh.topology.create_connectivity(tdim - 1, tdim)
        membrane: list[np.ndarray] = []
        values: set[int] = set()
        for name in sorted(set(tag_grids) - {mesh_name}, key=lambda n: n != FACET_TAGS_NAME):
            tags = xdmf.read_meshtags(mesh, name)
            if tags.dim == tdim - 1:
                membrane.append(tags.find(MEMBRANE))
                values.update(int(v) for v in np.unique(tags.values))
    facets = np.unique(np.concatenate(membrane or [np.empty(0, np.int32)])).astype(np.int32)
    if comm.allreduce(facets.size, op=MPI.SUM) == 0:
        found = sorted(set().union(*comm.allgather(values)))
        raise MeshError(
            f"{path}: no membrane facets: expected facet tag {MEMBRANE}; "
            f"facet tag values found: {found or 'none'} in grids {tag_grids}"
        )
    facet_tags = dolfinx.mesh.meshtags(mesh, tdim - 1, facets, MEMBRANE)
    return TaggedMesh(mesh, _all_local_cells(mesh), facet_tags, str(path))


def read(path: str | Path, comm: MPI.Comm) -> TaggedMesh:
    """Read a cell mesh from a gmsh ``.msh`` or an XDMF file.

    All cells are cytosol. Membrane facets are those of the physical
    group named ``"membrane"`` (any case) in a ``.msh`` file, else those
    tagged :data:`MEMBRANE` (in an XDMF file: in any facet tag grid).
    Coordinates are taken to be in µm.

    Raises:
        MeshError: naming ``path``, if it does not exist, has another
            extension, has no membrane facets or is not 2-D/3-D.
    """
    path = Path(path)
    if path.suffix.lower() not in _MESH_SUFFIXES:
        raise MeshError(
            f"{path}: unsupported mesh file extension {path.suffix!r}: "
            f"expected one of {', '.join(_MESH_SUFFIXES)}"
        )
    if not comm.bcast(path.is_file() if comm.rank == _ROOT else None, root=_ROOT):
        raise MeshError(f"{path}: mesh file does not exist")
    if path.suffix.lower() == ".msh":
        return _read_msh(path, comm)
    return _read_xdmf(path, comm)


def write_xdmf(tagged: TaggedMesh, path: str | Path) -> None:
    """Write mesh, cell tags and facet tags to one XDMF file (+ .h5).

    The grids are named ``"mesh"``, ``"cell_tags"`` and ``"facet_tags"``;
    :func:`read` reads the file back. Collective.
    """
    mesh = tagged.mesh
    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim - 1, tdim)
    names = (mesh.name, tagged.cell_tags.name, tagged.facet_tags.name)
    mesh.name, tagged.cell_tags.name, tagged.facet_tags.name = (
        MESH_NAME,
        CELL_TAGS_NAME,
        FACET_TAGS_NAME,
    )
    try:
        with dolfinx.io.XDMFFile(mesh.comm, str(path), "w") as xdmf:
            xdmf.write_mesh(mesh)
            geometry = f"/Xdmf/Domain/Grid[@Name='{MESH_NAME}']/Geometry"
            xdmf.write_meshtags(tagged.cell_tags, mesh.geometry, geometry_xpath=geometry)
            xdmf.write_meshtags(tagged.facet_tags, mesh.geometry, geometry_xpath=geometry)
    finally:
        mesh.name, tagged.cell_tags.name, tagged.facet_tags.name = names


def summary(tagged: TaggedMesh) -> dict[str, Any]:
    """Global counts and cell sizes of a mesh. Collective.

    Returns:
        ``dim``, ``cells``, ``vertices``, ``membrane_facets`` (global
        counts) and ``h_min``, ``h_max``, ``h_mean``: smallest, largest and
        mean cell diameter (µm).
    """
    mesh, comm = tagged.mesh, tagged.mesh.comm
    tdim = mesh.topology.dim
    cell_map = mesh.topology.index_map(tdim)
    h = mesh.h(tdim, np.arange(cell_map.size_local, dtype=np.int32))
    membrane = tagged.facet_tags.find(MEMBRANE)
    membrane = membrane[membrane < mesh.topology.index_map(tdim - 1).size_local]
    return {
        "dim": tdim,
        "cells": cell_map.size_global,
        "vertices": mesh.topology.index_map(0).size_global,
        "membrane_facets": comm.allreduce(int(membrane.size), op=MPI.SUM),
        "h_min": comm.allreduce(float(h.min(initial=np.inf)), op=MPI.MIN),
        "h_max": comm.allreduce(float(h.max(initial=0.0)), op=MPI.MAX),
        "h_mean": comm.allreduce(float(h.sum()), op=MPI.SUM) / cell_map.size_global,
    }


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
