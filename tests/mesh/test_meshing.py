"""Tests of solver.mesh.meshing; run serially and under ``mpiexec -n 2``.

Geometric tolerances: a piecewise-linear boundary with edges of length h
deviates from a curve of radius of curvature R by O(h²/R), so areas,
volumes and boundary measures have relative error O((h/R)²). We allow
``3 (h/R)²`` with R the smallest radius of curvature.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

try:  # the dolfinx wheel must be initialised before dolfinx or petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:  # a dolfinx installed another way
    pass

from mpi4py import MPI

import dolfinx.fem
import dolfinx.mesh
import gmsh
import numpy as np
import pytest
import ufl

from solver.mesh import meshing
from solver.mesh.meshing import CYTOSOL, MEMBRANE, MeshError, TaggedMesh

COMM = MPI.COMM_WORLD
ROOT = 0
GEOMETRIC_CONSTANT = 3.0  # C in the relative tolerance C (h/R)²
THOMSEN_P = 1.6075  # Knud Thomsen's ellipsoid-area formula, max error 1.061 %
THOMSEN_ERROR = 0.0107
HALVING_TOLERANCE = 0.15  # size ratio of successive meshes must be 2 ± 15 %


def integrate(tagged: TaggedMesh, integrand, measure: str = "dx") -> float:
    """Global integral over the cytosol ("dx") or the membrane ("ds")."""
    mesh = tagged.mesh
    if measure == "dx":
        dm = ufl.Measure("dx", domain=mesh, subdomain_data=tagged.cell_tags, subdomain_id=CYTOSOL)
    else:
        dm = ufl.Measure("ds", domain=mesh, subdomain_data=tagged.facet_tags, subdomain_id=MEMBRANE)
    local = dolfinx.fem.assemble_scalar(dolfinx.fem.form(integrand * dm))
    return COMM.allreduce(local, op=MPI.SUM)


def one(tagged: TaggedMesh):
    return dolfinx.fem.Constant(tagged.mesh, 1.0)


def ellipse_perimeter(a: float, b: float) -> float:
    """Ramanujan's second approximation (relative error ~1e-10 for a/b = 2)."""
    h = ((a - b) / (a + b)) ** 2
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


def ellipsoid_area(a: float, b: float, c: float) -> float:
    p = THOMSEN_P
    return 4 * math.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p)


# shape, generate kwargs, exact volume, exact membrane measure, extra tolerance
# of the membrane formula, smallest radius of curvature (µm)
CASES = {
    "disk": ("disk", {"radius": 2.0, "size": 0.2}, 4 * math.pi, 4 * math.pi, 0.0, 2.0),
    "disk-order2": (
        "disk",
        {"radius": 2.0, "size": 0.4, "order": 2},
        4 * math.pi,
        4 * math.pi,
        0.0,
        2.0,
    ),
    "ellipse": (
        "ellipse",
        {"semi_axes": (2.0, 1.0), "size": 0.05, "center": (1.0, -2.0)},
        2 * math.pi,
        ellipse_perimeter(2.0, 1.0),
        0.0,
        0.5,
    ),
    "ellipse-tall": (
        "ellipse",
        {"semi_axes": (1.0, 2.0), "size": 0.05},
        2 * math.pi,
        ellipse_perimeter(2.0, 1.0),
        0.0,
        0.5,
    ),
    "sphere": ("sphere", {"radius": 1.0, "size": 0.2}, 4 / 3 * math.pi, 4 * math.pi, 0.0, 1.0),
    "ellipsoid": (
        "ellipsoid",
        {"semi_axes": (1.5, 1.0, 1.2), "size": 0.15, "center": (0.5, 0.0, 1.0)},
        4 / 3 * math.pi * 1.5 * 1.2,
        ellipsoid_area(1.5, 1.0, 1.2),
        THOMSEN_ERROR,
        1.0**2 / 1.5,
    ),
}


@pytest.fixture(scope="module")
def meshes() -> dict[str, TaggedMesh]:
    return {name: meshing.generate(case[0], COMM, **case[1]) for name, case in CASES.items()}


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A temporary directory, the same on every rank."""
    path = Path(
        COMM.bcast(tempfile.mkdtemp(prefix="meshing-") if COMM.rank == ROOT else None, root=ROOT)
    )
    yield path
    COMM.barrier()
    if COMM.rank == ROOT:
        shutil.rmtree(path, ignore_errors=True)


def shared_path(path: Path) -> Path:
    """``path`` as named on the root (identical on all ranks)."""
    return Path(COMM.bcast(str(path) if COMM.rank == ROOT else None, root=ROOT))


@pytest.mark.parametrize("name", CASES)
def test_volume_and_membrane_measure(meshes, name):
    shape, kwargs, volume, area, formula_error, curvature_radius = CASES[name]
    tagged = meshes[name]
    dim = 2 if shape in ("disk", "ellipse") else 3
    assert tagged.mesh.topology.dim == dim and tagged.mesh.geometry.dim == dim
    tol = GEOMETRIC_CONSTANT * (kwargs["size"] / curvature_radius) ** 2
    assert integrate(tagged, one(tagged)) == pytest.approx(volume, rel=tol)
    assert integrate(tagged, one(tagged), "ds") == pytest.approx(area, rel=tol + formula_error)
    center = np.zeros(dim)
    center[: len(kwargs.get("center", ()))] = kwargs.get("center", ())
    x = ufl.SpatialCoordinate(tagged.mesh)
    for i in range(dim):
        centroid = integrate(tagged, x[i]) / integrate(tagged, one(tagged))
        assert centroid == pytest.approx(center[i], abs=tol)
    assert shape in tagged.source and f"size={kwargs['size']:g}" in tagged.source


def test_order2_is_more_accurate(meshes):
    order1 = meshing.generate("disk", COMM, radius=2.0, size=0.4)
    exact = 4 * math.pi
    error1 = abs(integrate(order1, one(order1)) - exact)
    error2 = abs(integrate(meshes["disk-order2"], one(meshes["disk-order2"])) - exact)
    assert error2 < 0.1 * error1


@pytest.mark.parametrize("name", ["ellipse-tall", "ellipsoid"])
def test_semi_axes_along_coordinate_axes(meshes, name):
    """∫(x_i - c_i)² over an ellipsoid is volume · a_i² / (dim + 2)."""
    _, kwargs, volume, _, _, curvature_radius = CASES[name]
    tagged = meshes[name]
    x = ufl.SpatialCoordinate(tagged.mesh)
    dim = tagged.mesh.geometry.dim
    center = list(kwargs.get("center", (0.0,) * dim))
    tol = GEOMETRIC_CONSTANT * (kwargs["size"] / curvature_radius) ** 2
    for i, a in enumerate(kwargs["semi_axes"]):
        moment = integrate(tagged, (x[i] - center[i]) ** 2)
        assert moment == pytest.approx(volume * a**2 / (dim + 2), rel=tol)


@pytest.mark.parametrize("name", CASES)
def test_tags_cover_cells_and_whole_boundary(meshes, name):
    tagged = meshes[name]
    mesh = tagged.mesh
    tdim = mesh.topology.dim
    cell_map = mesh.topology.index_map(tdim)
    assert np.all(tagged.cell_tags.values == CYTOSOL)
    assert tagged.cell_tags.indices.size == cell_map.size_local + cell_map.num_ghosts
    assert set(np.unique(tagged.facet_tags.values)) == {MEMBRANE}
    mesh.topology.create_connectivity(tdim - 1, tdim)
    exterior = dolfinx.mesh.exterior_facet_indices(mesh.topology)
    facet_map = mesh.topology.index_map(tdim - 1)
    membrane = tagged.facet_tags.find(MEMBRANE)
    owned = np.sort(membrane[membrane < facet_map.size_local])
    assert np.array_equal(owned, exterior)
    stats = meshing.summary(tagged)
    assert stats["membrane_facets"] == COMM.allreduce(exterior.size, op=MPI.SUM)
    assert stats["cells"] == cell_map.size_global
    assert stats["dim"] == tdim
    assert 0 < stats["h_min"] <= stats["h_mean"] <= stats["h_max"]


@pytest.mark.parametrize("name", ["disk", "sphere"])
def test_membrane_submesh(meshes, name):
    tagged = meshes[name]
    mesh = tagged.mesh
    tdim = mesh.topology.dim
    smsh, _, _, _ = dolfinx.mesh.create_submesh(mesh, tdim - 1, tagged.facet_tags.find(MEMBRANE))
    assert smsh.topology.dim == tdim - 1
    cells = smsh.topology.index_map(tdim - 1).size_global
    assert cells == meshing.summary(tagged)["membrane_facets"]


def mean_edge_length(tagged: TaggedMesh) -> float:
    mesh = tagged.mesh
    mesh.topology.create_connectivity(1, mesh.topology.dim)
    edges = mesh.topology.index_map(1)
    lengths = mesh.h(1, np.arange(edges.size_local, dtype=np.int32))
    return COMM.allreduce(float(lengths.sum()), op=MPI.SUM) / edges.size_global


@pytest.mark.parametrize(("shape", "sizes"), [("disk", (0.2, 0.1, 0.05)), ("sphere", (0.4, 0.2))])
def test_size_halves(shape, sizes):
    tagged = [meshing.generate(shape, COMM, radius=1.0, size=s) for s in sizes]
    edges = [mean_edge_length(t) for t in tagged]
    h_max = [meshing.summary(t)["h_max"] for t in tagged]
    for coarse, fine in pairwise(edges):
        assert coarse / fine == pytest.approx(2.0, rel=HALVING_TOLERANCE)
    for coarse, fine in pairwise(h_max):
        assert coarse / fine == pytest.approx(2.0, rel=HALVING_TOLERANCE)
    for size, edge in zip(sizes, edges, strict=True):
        assert edge == pytest.approx(size, rel=0.35)


@pytest.mark.parametrize("name", ["ellipse", "sphere", "disk-order2"])
def test_xdmf_round_trip(meshes, name, shared_tmp):
    tagged = meshes[name]
    path = shared_tmp / f"{name}.xdmf"
    meshing.write_xdmf(tagged, path)
    assert tagged.mesh.name != "" and tagged.facet_tags.name != ""
    back = meshing.read(path, COMM)
    before, after = meshing.summary(tagged), meshing.summary(back)
    for key in ("dim", "cells", "vertices", "membrane_facets"):
        assert after[key] == before[key]
    assert back.source == str(path)
    assert integrate(back, one(back)) == pytest.approx(integrate(tagged, one(tagged)))
    assert integrate(back, one(back), "ds") == pytest.approx(integrate(tagged, one(tagged), "ds"))


def write_msh(path: Path, dim: int, membrane_name: str, membrane_tag: int) -> None:
    """Write a unit disk (dim 2) or ball (dim 3) .msh with gmsh (root only)."""
    gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Terminal", 0)
    try:
        gmsh.model.add("cell")
        occ = gmsh.model.occ
        cell = occ.addDisk(0, 0, 0, 1.0, 1.0) if dim == 2 else occ.addSphere(0, 0, 0, 1.0)
        occ.synchronize()
        gmsh.option.setNumber("Mesh.MeshSizeMax", 0.4)
        boundary = [t for _, t in gmsh.model.getBoundary([(dim, cell)], oriented=False)]
        gmsh.model.addPhysicalGroup(dim, [cell], 5, "inside")
        gmsh.model.addPhysicalGroup(dim - 1, boundary, membrane_tag, membrane_name)
        gmsh.model.mesh.generate(dim)
        gmsh.write(str(path))
    finally:
        gmsh.finalize()


@pytest.mark.parametrize(("dim", "name", "tag"), [(3, "Membrane", 7), (2, "", MEMBRANE)])
def test_read_msh(shared_tmp, dim, name, tag):
    path = shared_tmp / "cell.msh"
    if COMM.rank == ROOT:
        write_msh(path, dim, name, tag)
    COMM.barrier()
    tagged = meshing.read(path, COMM)
    assert tagged.mesh.geometry.dim == dim == tagged.mesh.topology.dim
    assert meshing.summary(tagged)["membrane_facets"] > 0
    assert np.all(tagged.cell_tags.values == CYTOSOL)
    assert np.all(tagged.facet_tags.values == MEMBRANE)
    perimeter = 2 * math.pi if dim == 2 else 4 * math.pi
    assert integrate(tagged, one(tagged), "ds") == pytest.approx(perimeter, rel=0.1)


@pytest.mark.serial
def test_read_msh_without_membrane(shared_tmp):
    if COMM.size > 1:
        pytest.skip("serial test")
    path = shared_tmp / "no-membrane.msh"
    write_msh(path, 3, "outside", 9)
    with pytest.raises(MeshError, match="no membrane") as info:
        meshing.read(path, COMM)
    assert str(path) in str(info.value) and "outside" in str(info.value)


def test_read_xdmf_without_membrane(meshes, shared_tmp):
    tagged = meshes["disk"]
    mesh = tagged.mesh
    wrong = dolfinx.mesh.meshtags(mesh, 1, tagged.facet_tags.indices, 5)
    path = shared_tmp / "no-membrane.xdmf"
    meshing.write_xdmf(TaggedMesh(mesh, tagged.cell_tags, wrong, "test"), path)
    with pytest.raises(MeshError, match=r"no membrane.*\[5\]") as info:
        meshing.read(path, COMM)
    assert str(path) in str(info.value)


def test_read_errors(shared_tmp):
    missing = shared_tmp / "missing.msh"
    with pytest.raises(MeshError, match="does not exist") as info:
        meshing.read(missing, COMM)
    assert str(missing) in str(info.value)
    wrong = shared_tmp / "cell.vtk"
    if COMM.rank == ROOT:
        wrong.write_text("not a mesh")
    COMM.barrier()
    with pytest.raises(MeshError, match=r"\.msh") as info:
        meshing.read(wrong, COMM)
    assert str(wrong) in str(info.value)
    garbage = shared_tmp / "garbage.msh"
    if COMM.rank == ROOT:
        garbage.write_text("this is not gmsh")
    COMM.barrier()
    with pytest.raises(MeshError) as info:
        meshing.read(garbage, COMM)
    assert str(garbage) in str(info.value)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("cube",), {"size": 0.1}, "disk, ellipse, sphere, ellipsoid"),
        (("disk",), {"radius": -1.0, "size": 0.1}, "positive"),
        (("sphere",), {"radius": 1.0, "size": 0.0}, "positive"),
        (("sphere",), {"radius": 1.0, "size": 1.0}, "too coarse"),
        (("ellipse",), {"semi_axes": (1.0, 2.0, 3.0), "size": 0.1}, "expected 2 semi_axes"),
        (("ellipsoid",), {"size": 0.1}, "expected 3 semi_axes"),
        (("disk",), {"radius": 1.0, "size": 0.1, "order": 3}, "order"),
        (("sphere",), {"radius": 1.0, "size": 0.1, "center": (0, 0)}, "center"),
    ],
)
def test_generate_rejects_bad_input(args, kwargs, message):
    with pytest.raises(MeshError, match=message) as info:
        meshing.generate(*args, COMM, **kwargs)
    assert args[0] in str(info.value)


def test_mesh_from_config(meshes, shared_tmp):
    tagged = meshing.mesh_from_config(
        {"shape": "disk", "radius": 1.0, "size": 0.25}, COMM, shared_tmp
    )
    assert meshing.summary(tagged)["dim"] == 2
    ellipsoid = meshing.mesh_from_config(
        {"shape": "ellipsoid", "semi_axes": [1.0, 0.8, 0.6], "size": 0.3, "order": 1},
        COMM,
        shared_tmp,
    )
    assert meshing.summary(ellipsoid)["dim"] == 3
    meshing.write_xdmf(meshes["sphere"], shared_tmp / "cell.xdmf")
    from_file = meshing.mesh_from_config({"shape": "file", "file": "cell.xdmf"}, COMM, shared_tmp)
    assert meshing.summary(from_file)["cells"] == meshing.summary(meshes["sphere"])["cells"]
    for table, key in [
        ({"radius": 1.0, "size": 0.1}, "shape"),
        ({"shape": "disk", "radius": 1.0}, "size"),
        ({"shape": "ellipse", "size": 0.1}, "semi_axes"),
        ({"shape": "ellipse", "semi_axes": [2, 1], "size": 0.1, "radius": 1}, "radius"),
        ({"shape": "disk", "radius": 1.0, "size": 0.1, "semi_axes": [1, 2]}, "semi_axes"),
        ({"shape": "file"}, "file"),
        ({"shape": "file", "file": "cell.xdmf", "size": 0.1}, "size"),
    ]:
        with pytest.raises(MeshError, match=key):
            meshing.mesh_from_config(table, COMM, shared_tmp)
