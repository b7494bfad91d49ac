"""Mesh files: reading gmsh ``.msh`` and XDMF files, writing XDMF, with their regions.

A file of one volume is the cell: every cell is cytosol, and the membrane is the
physical group named ``membrane`` (``.msh``) or the facets tagged
:data:`~solver.mesh.tagged.MEMBRANE` (XDMF). A ``.msh`` file of several volume
physical groups keeps every named volume and surface group as a region, by its
lower-case name and its physical tag. XDMF mesh tags carry no names: :func:`write_xdmf`
stores the regions of a mesh of several volumes in an ``Information`` element of the
XDMF file (name :data:`REGIONS_INFORMATION`, value a JSON object ``{"name": [dim,
tag], ...}``), which :func:`read` reads back; an XDMF file without it is read as one
volume. Every public function is collective.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from mpi4py import MPI

import dolfinx.io
import dolfinx.io.gmsh
import dolfinx.mesh
import gmsh
import numpy as np

from solver.mesh.tagged import (
    CYTOSOL,
    CYTOSOL_GROUP,
    MEMBRANE,
    MEMBRANE_GROUP,
    ROOT,
    MeshError,
    Region,
    TaggedMesh,
    all_local_cells,
    default_regions,
    on_root,
    raise_collectively,
    shared_facet_partitioner,
    tag_regions,
)

__all__ = ["MESH_SUFFIXES", "REGIONS_INFORMATION", "read", "write_xdmf"]

MESH_NAME, CELL_TAGS_NAME, FACET_TAGS_NAME = "mesh", "cell_tags", "facet_tags"  # XDMF grids
REGIONS_INFORMATION = "regions"  # Name of the XDMF Information element with the regions
MESH_SUFFIXES = (".msh", ".xdmf")
_XDMF_MESH_NAMES = (MESH_NAME, "Grid")
_PLANE_TOL = 1e-12  # |z| (µm) below which a 2-D mesh lies in the plane


def _found(groups: Mapping[tuple[int, int], str]) -> str:
    return ", ".join(f"{n or '(unnamed)'} (dim {d}, tag {t})" for (d, t), n in groups.items())


def _prepare_msh(path: Path) -> tuple[int, dict[str, Region] | None]:
    """Load ``path`` into the gmsh model and retag it (root only).

    One volume group (or none): all cells :data:`CYTOSOL`, the membrane group
    :data:`MEMBRANE`, regions None. Several: the named groups of volumes and surfaces
    as they are (see :func:`_named_groups`). Returns the dimension and the regions.
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
    if sum(d == tdim for d, _ in groups) > 1:
        return tdim, _named_groups(path, tdim, groups)
    named = [t for (d, t), n in groups.items() if d == tdim - 1 and n.lower() == MEMBRANE_GROUP]
    chosen = named or [t for (d, t) in groups if (d, t) == (tdim - 1, MEMBRANE)]
    entities = sorted(
        {e for t in chosen for e in gmsh.model.getEntitiesForPhysicalGroup(tdim - 1, t)}
    )
    if not entities:
        raise MeshError(
            f"{path}: no membrane facets: expected a physical group of dimension "
            f"{tdim - 1} named {MEMBRANE_GROUP!r} or tagged {MEMBRANE}; "
            f"physical groups found: {_found(groups) or 'none'}"
        )
    gmsh.model.removePhysicalGroups()
    gmsh.model.addPhysicalGroup(
        tdim, [t for _, t in gmsh.model.getEntities(tdim)], CYTOSOL, CYTOSOL_GROUP
    )
    gmsh.model.addPhysicalGroup(tdim - 1, entities, MEMBRANE, MEMBRANE_GROUP)
    return tdim, None


def _named_groups(
    path: Path, tdim: int, groups: Mapping[tuple[int, int], str]
) -> dict[str, Region]:
    """The regions of a ``.msh`` file of several volume groups (root only).

    Every volume group must be named, one of them ``cytosol``, and hold every cell
    once; surface groups without a name are dropped, as are groups of other
    dimensions. Names are lower-cased and must differ.
    """
    regions: dict[str, Region] = {}
    for (d, t), name in sorted(groups.items(), key=lambda g: (-g[0][0], g[0][1])):
        if d not in (tdim, tdim - 1) or (d == tdim - 1 and not name):
            gmsh.model.removePhysicalGroups([(d, t)])
            continue
        if not name:
            raise MeshError(
                f"{path}: the volume physical group of tag {t} has no name: a mesh of "
                f"several volumes names each (physical groups found: {_found(groups)})"
            )
        key = name.lower()
        if key in regions:
            raise MeshError(f"{path}: two physical groups are named {key!r} (any case)")
        regions[key] = (d, t)
    if CYTOSOL_GROUP not in regions or regions[CYTOSOL_GROUP][0] != tdim:
        raise MeshError(
            f"{path}: no volume named {CYTOSOL_GROUP!r}: a mesh of several volumes names "
            f"the cell's {CYTOSOL_GROUP}; physical groups found: {_found(groups)}"
        )
    for dim in (tdim, tdim - 1):
        seen: dict[int, str] = {}
        for name, (d, t) in regions.items():
            for entity in gmsh.model.getEntitiesForPhysicalGroup(d, t) if d == dim else ():
                if entity in seen:
                    raise MeshError(
                        f"{path}: physical groups {seen[entity]!r} and {name!r} share "
                        f"{'cells' if dim == tdim else 'facets'}: each belongs to one"
                    )
                seen[entity] = name
        if dim == tdim:
            loose = [t for _, t in gmsh.model.getEntities(tdim) if t not in seen]
            cells = sum(len(e) for t in loose for e in gmsh.model.mesh.getElements(tdim, t)[1])
            if cells:
                raise MeshError(
                    f"{path}: {cells} cells belong to no volume physical group: in a mesh "
                    "of several volumes every cell belongs to one"
                )
    return dict(sorted(regions.items(), key=lambda r: (-r[1][0], r[0] != CYTOSOL_GROUP)))


def _read_msh(path: Path, comm: MPI.Comm) -> TaggedMesh:
    """Read a gmsh ``.msh`` file (see :func:`read`)."""

    def finish(info: tuple[int, dict[str, Region] | None]) -> TaggedMesh:
        tdim, regions = info
        model = gmsh.model if comm.rank == ROOT else None
        if regions is None:
            data = dolfinx.io.gmsh.model_to_mesh(model, comm, ROOT, gdim=tdim)
            assert data.facet_tags is not None  # _prepare_msh made the membrane group
            return TaggedMesh(data.mesh, all_local_cells(data.mesh), data.facet_tags, str(path))
        data = dolfinx.io.gmsh.model_to_mesh(
            model, comm, ROOT, gdim=tdim, partitioner=shared_facet_partitioner()
        )
        return tag_regions(data.mesh, data.cell_tags, data.facet_tags, str(path), regions)

    return on_root(comm, str(path), lambda: _prepare_msh(path), finish)


def _xdmf_grids(path: Path) -> tuple[list[str], list[str], dict[str, Region] | None]:
    """Names of the grids under ``/Xdmf/Domain``, of those with data, and the regions."""
    try:
        domain = ElementTree.parse(path).getroot().find("Domain")
    except ElementTree.ParseError as exc:
        raise MeshError(f"{path}: not a readable XDMF file ({exc})") from exc
    grids = [] if domain is None else domain.findall("Grid")
    regions = None
    for info in [] if domain is None else domain.findall("Information"):
        if info.get("Name") == REGIONS_INFORMATION:
            regions = _parse_regions(path, info.get("Value", ""))
    return (
        [g.get("Name", "") for g in grids],
        [g.get("Name", "") for g in grids if g.find("Attribute") is not None],
        regions,
    )


def _parse_regions(path: Path, text: str) -> dict[str, Region]:
    """The regions of an XDMF ``Information`` element: ``{"name": [dim, tag], ...}``."""
    try:
        value = json.loads(text)
        regions = {
            str(name): (int(region[0]), int(region[1]))
            for name, region in value.items()
            if len(region) == 2 and all(isinstance(x, int) for x in region)
        }
        if len(regions) != len(value) or not regions:
            raise ValueError("expected name: [dimension, tag] pairs")
    except (ValueError, AttributeError, TypeError) as exc:
        raise MeshError(
            f"{path}: unreadable Information {REGIONS_INFORMATION!r}: {exc}; expected "
            '{"name": [dimension, tag], ...}'
        ) from None
    return regions


def _read_xdmf(path: Path, comm: MPI.Comm) -> TaggedMesh:
    """Read an XDMF file with facet tags (see :func:`read`)."""
    grids, error = None, None
    if comm.rank == ROOT:
        try:
            grids = _xdmf_grids(path)
        except MeshError as exc:
            error = str(exc)
    raise_collectively(comm, error)
    grids, tag_grids, regions = comm.bcast(grids, root=ROOT)
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
        if regions is not None and regions != default_regions(tdim):
            return _xdmf_regions(path, xdmf, mesh, tag_grids, regions)
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
    return TaggedMesh(mesh, all_local_cells(mesh), facet_tags, str(path))


def _xdmf_regions(
    path: Path,
    xdmf: dolfinx.io.XDMFFile,
    mesh: dolfinx.mesh.Mesh,
    tag_grids: list[str],
    regions: dict[str, Region],
) -> TaggedMesh:
    """The mesh of several volumes of an XDMF file with its regions (collective)."""
    tdim = mesh.topology.dim
    bad = [n for n, (d, _) in regions.items() if d not in (tdim, tdim - 1)]
    if bad:
        raise MeshError(f"{path}: region {bad[0]!r} is of neither dimension {tdim} nor {tdim - 1}")
    tags: dict[int, dolfinx.mesh.MeshTags] = {}
    for name in (CELL_TAGS_NAME, FACET_TAGS_NAME):
        if name not in tag_grids:
            raise MeshError(f"{path}: regions are named, but the grid {name!r} is missing")
        read = xdmf.read_meshtags(mesh, name)
        tags[read.dim] = read
    tagged = tag_regions(mesh, tags.get(tdim), tags.get(tdim - 1), str(path), regions)
    cell_map = mesh.topology.index_map(tdim)
    untagged = cell_map.size_local + cell_map.num_ghosts - tagged.cell_tags.indices.size
    if mesh.comm.allreduce(untagged, op=MPI.SUM):
        raise MeshError(f"{path}: some cells belong to no named volume")
    return tagged


def read(path: str | Path, comm: MPI.Comm) -> TaggedMesh:
    """Read a cell mesh from a gmsh ``.msh`` or an XDMF file.

    A file of one volume: all cells are cytosol. Membrane facets are those of the
    physical group named ``"membrane"`` (any case) in a ``.msh`` file, else those
    tagged :data:`MEMBRANE` (in an XDMF file: in any facet tag grid). A file of
    several volumes keeps its named regions (see the module's description).
    Coordinates are taken to be in µm.

    Raises:
        MeshError: naming ``path``, if it does not exist, has another
            extension, has no membrane facets or is not 2-D/3-D, or names its
            volumes and surfaces inconsistently.
    """
    path = Path(path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise MeshError(
            f"{path}: unsupported mesh file extension {path.suffix!r}: "
            f"expected one of {', '.join(MESH_SUFFIXES)}"
        )
    if not comm.bcast(path.is_file() if comm.rank == ROOT else None, root=ROOT):
        raise MeshError(f"{path}: mesh file does not exist")
    if path.suffix.lower() == ".msh":
        return _read_msh(path, comm)
    return _read_xdmf(path, comm)


def write_xdmf(tagged: TaggedMesh, path: str | Path) -> None:
    """Write mesh, cell tags and facet tags to one XDMF file (+ .h5).

    The grids are named ``"mesh"``, ``"cell_tags"`` and ``"facet_tags"``; the
    regions of a mesh of several volumes are written to an ``Information`` element.
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
    if dict(tagged.regions) != default_regions(tdim):
        error = None
        if mesh.comm.rank == ROOT:
            try:
                _add_information(Path(path), tagged.regions)
            except (OSError, ValueError) as exc:
                error = f"{path}: cannot add the regions: {exc}"
        raise_collectively(mesh.comm, error)


def _add_information(path: Path, regions: Mapping[str, Any]) -> None:
    """Put the regions in an ``Information`` element at the end of the Domain (root only)."""
    text = path.read_text()
    value = json.dumps({name: list(region) for name, region in regions.items()})
    element = (
        f"    <Information Name={quoteattr(REGIONS_INFORMATION)} Value={quoteattr(value)} />\n"
    )
    end = text.rindex("  </Domain>")
    path.write_text(text[:end] + element + text[end:])
