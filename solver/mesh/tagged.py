"""The tagged mesh every other part of the package receives, and its distribution.

A :class:`TaggedMesh` is a distributed dolfinx mesh whose cells carry the tag of
their volume compartment and whose facets carry the tag of their surface
compartment; :attr:`TaggedMesh.regions` names them. A mesh of one volume (every
generated shape, every imported surface, every file with one volume) is the
*cytosol* (cell tag :data:`CYTOSOL`) bounded by the *membrane* (facet tag
:data:`MEMBRANE`). A mesh of several volumes (a cell with a nucleus, a cell in a
medium) names each volume and each surface, and is ghosted across facets
(:data:`dolfinx.mesh.GhostMode.shared_facet`): for every facet between two volumes
whose cell on one side is owned by a rank, the cell on the other side is on that
rank too, and the facet is tagged there.

gmsh runs on rank 0 only; :func:`distribute_model` distributes its mesh. Every
public function here is collective unless it says otherwise.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

try:  # the dolfinx wheel must be initialised before dolfinx or petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:  # a dolfinx installed another way (conda, spack, docker images)
    pass

from mpi4py import MPI

import dolfinx.io.gmsh
import dolfinx.la
import dolfinx.mesh
import gmsh
import numpy as np

__all__ = [
    "CYTOSOL",
    "MEMBRANE",
    "CYTOSOL_GROUP",
    "MEMBRANE_GROUP",
    "MeshError",
    "TaggedMesh",
    "default_regions",
    "distribute_model",
    "on_root",
    "write_msh",
]

CYTOSOL: int = 1  # cell tag of the cytosol (every cell of a one-volume mesh)
MEMBRANE: int = 2  # facet tag of the membrane (the boundary of the cell)
MEMBRANE_GROUP, CYTOSOL_GROUP = "membrane", "cytosol"  # gmsh physical group names

ROOT = 0  # the rank that runs gmsh
_KEPT_SIGNALS = tuple(
    getattr(signal, n) for n in ("SIGTERM", "SIGUSR1", "SIGINT") if hasattr(signal, n)
)
#: facets of a conforming mesh of volumes have at most two cells
_FACET_LINKS = 2

Region = tuple[int, int]  # (dimension, tag) of a compartment


class MeshError(ValueError):
    """A mesh cannot be made or read; the message names the file or shape."""


def default_regions(tdim: int) -> dict[str, Region]:
    """The regions of a one-volume mesh: the cytosol and its boundary, the membrane."""
    return {CYTOSOL_GROUP: (tdim, CYTOSOL), MEMBRANE_GROUP: (tdim - 1, MEMBRANE)}


@dataclass(frozen=True)
class TaggedMesh:
    """A distributed mesh with its compartments tagged.

    Attributes:
        mesh: The mesh (coordinates in µm), of dimension 2 or 3.
        cell_tags: The tag of its volume on every local cell (one-volume meshes:
            :data:`CYTOSOL` on every local cell).
        facet_tags: The tag of its surface on the facets of each named surface
            (one-volume meshes: :data:`MEMBRANE` on the membrane facets, nothing else).
        source: Where the mesh came from, e.g. ``"generated sphere
            radius=5 size=0.5"`` or the file path.
        regions: Compartment name -> ``(dim, tag)``: volumes have the mesh's
            dimension and are found in ``cell_tags``, surfaces one less and are found
            in ``facet_tags``. Default (and for every one-volume mesh):
            :func:`default_regions`.
    """

    mesh: dolfinx.mesh.Mesh
    cell_tags: dolfinx.mesh.MeshTags
    facet_tags: dolfinx.mesh.MeshTags
    source: str
    regions: Mapping[str, Region] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        regions = dict(self.regions) or default_regions(self.mesh.topology.dim)
        object.__setattr__(self, "regions", MappingProxyType(regions))

    @property
    def volumes(self) -> dict[str, int]:
        """Volume name -> cell tag, in the order of :attr:`regions`."""
        tdim = self.mesh.topology.dim
        return {name: tag for name, (dim, tag) in self.regions.items() if dim == tdim}

    @property
    def surfaces(self) -> dict[str, int]:
        """Surface name -> facet tag, in the order of :attr:`regions`."""
        tdim = self.mesh.topology.dim
        return {name: tag for name, (dim, tag) in self.regions.items() if dim == tdim - 1}


def raise_collectively(comm: MPI.Comm, error: str | None) -> None:
    """Raise :class:`MeshError` on every rank if the root reported ``error``."""
    error = comm.bcast(error, root=ROOT)
    if error:
        raise MeshError(error)


@contextlib.contextmanager
def gmsh_model(name: str) -> Iterator[None]:
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


def all_local_cells(mesh: dolfinx.mesh.Mesh) -> dolfinx.mesh.MeshTags:
    """:data:`CYTOSOL` on every local (owned and ghost) cell."""
    cell_map = mesh.topology.index_map(mesh.topology.dim)
    cells = np.arange(cell_map.size_local + cell_map.num_ghosts, dtype=np.int32)
    return dolfinx.mesh.meshtags(mesh, mesh.topology.dim, cells, CYTOSOL)


def membrane_tags(
    mesh: dolfinx.mesh.Mesh, gmsh_tags: dolfinx.mesh.MeshTags | None
) -> dolfinx.mesh.MeshTags:
    """Facet tags of a generated one-volume mesh: :data:`MEMBRANE` on the whole boundary.

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


def complete_tags(
    mesh: dolfinx.mesh.Mesh, dim: int, tags: dolfinx.mesh.MeshTags | None
) -> dolfinx.mesh.MeshTags:
    """``tags`` on every local entity, ghosts included: the owner's value wins.

    An entity tagged on no rank stays untagged. Collective.
    """
    mesh.topology.create_entities(dim)
    index_map = mesh.topology.index_map(dim)
    values = dolfinx.la.vector(index_map, 1, dtype=np.int32)
    values.array[:] = -1
    if tags is not None:
        values.array[tags.indices] = tags.values
    values.scatter_forward()  # owners' values (possibly -1) to the ghosts
    if tags is not None:  # keep what this rank knew where the owner had nothing
        known = values.array[tags.indices] < 0
        values.array[tags.indices[known]] = tags.values[known]
    found = np.flatnonzero(values.array >= 0).astype(np.int32)
    return dolfinx.mesh.meshtags(mesh, dim, found, values.array[found].astype(np.int32))


def on_root(
    comm: MPI.Comm, name: str, build: Callable[[], Any], finish: Callable[[Any], TaggedMesh]
) -> TaggedMesh:
    """Run ``build`` in a gmsh model on the root, then ``finish`` everywhere (collective).

    ``build`` returns (root only) a value broadcast to ``finish``, or raises
    :class:`MeshError`/gmsh's ``Exception``, which is raised on all ranks.
    """
    if comm.rank != ROOT:
        raise_collectively(comm, None)
        return finish(comm.bcast(None, root=ROOT))
    with gmsh_model(name):
        try:
            info = build()
        except MeshError as exc:
            raise_collectively(comm, str(exc))
        except Exception as exc:  # gmsh raises bare Exception
            raise_collectively(comm, f"{name}: gmsh failed: {exc}")
        raise_collectively(comm, None)
        return finish(comm.bcast(info, root=ROOT))


def write_msh(path: Path | None, binary: bool = False) -> None:
    """Save the meshed gmsh model (its physical groups only) to ``path`` (root only)."""
    if path is not None:
        gmsh.option.setNumber("Mesh.SaveAll", 0)
        gmsh.option.setNumber("Mesh.Binary", int(binary))
        gmsh.write(str(path))


def shared_facet_partitioner() -> Callable[..., Any]:
    """The cell partitioner of meshes of several volumes: ghosts across facets."""
    # a singledispatch function: mypy checks the call against the generic signature
    return dolfinx.mesh.create_cell_partitioner(  # type: ignore[call-arg]
        dolfinx.mesh.GhostMode.shared_facet, _FACET_LINKS
    )


def distribute_model(
    comm: MPI.Comm, dim: int, source: str, regions: Mapping[str, Region] | None = None
) -> TaggedMesh:
    """Distribute the gmsh model of the root (collective).

    Without ``regions`` (or with the default ones), the model is one volume: every
    cell is cytosol and the whole boundary membrane, distributed as dolfinx does by
    default. Otherwise the model's physical groups are ``regions``: the cells keep
    their volume's tag, the facets their surface's tag, and the mesh is ghosted
    across facets.
    """
    model = gmsh.model if comm.rank == ROOT else None
    if regions is None or dict(regions) == default_regions(dim):
        data = dolfinx.io.gmsh.model_to_mesh(model, comm, ROOT, gdim=dim)
        return TaggedMesh(
            data.mesh, all_local_cells(data.mesh), membrane_tags(data.mesh, data.facet_tags), source
        )
    data = dolfinx.io.gmsh.model_to_mesh(
        model, comm, ROOT, gdim=dim, partitioner=shared_facet_partitioner()
    )
    return tag_regions(data.mesh, data.cell_tags, data.facet_tags, source, regions)


def tag_regions(
    mesh: dolfinx.mesh.Mesh,
    cell_tags: dolfinx.mesh.MeshTags | None,
    facet_tags: dolfinx.mesh.MeshTags | None,
    source: str,
    regions: Mapping[str, Region],
) -> TaggedMesh:
    """A :class:`TaggedMesh` of several volumes from tags read or made (collective).

    Tags are completed on ghosts; tags that name no region are dropped.
    """
    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim - 1, tdim)
    tags = []
    for dim, given in ((tdim, cell_tags), (tdim - 1, facet_tags)):
        done = complete_tags(mesh, dim, given)
        named = [tag for d, tag in regions.values() if d == dim]
        keep = np.isin(done.values, named)
        tags.append(dolfinx.mesh.meshtags(mesh, dim, done.indices[keep], done.values[keep]))
    return TaggedMesh(mesh, tags[0], tags[1], source, dict(regions))
