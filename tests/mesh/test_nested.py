"""Nested generated meshes: a cell with inner bodies, in a medium; serial and under MPI.

Geometric tolerances: every curved surface is a polygon/polyhedron inscribed in the
exact one, with edges about the element size h there; chords deviate from a curve of
radius R by h²/(8R), so lengths, areas and volumes have relative errors c (h/R)²,
with c = 1/24 (perimeter) and 1/6 (area) for a regular polygon and, measured on
gmsh's spheres, c ≈ 0.3 for areas and volumes. We allow (h/R)² per curved surface
(3x margin for edges up to 1.4 h); flat faces (the box, the rectangle) are exact. A
volume bounded by several surfaces (the cytosol, between membrane and envelope) has
the sum of their absolute errors. The 2-D nucleus is also meshed at h and h/2: its
errors must fall at second order (observed order >= 1.7).
"""

from __future__ import annotations

import math

try:  # the dolfinx wheel must be initialised before dolfinx or petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:
    pass

from mpi4py import MPI

import dolfinx.fem
import dolfinx.mesh
import numpy as np
import pytest

from solver.mesh import bodies, meshing
from solver.mesh import report as mesh_report
from solver.mesh.meshing import CYTOSOL, MEMBRANE, MeshError, TaggedMesh

COMM = MPI.COMM_WORLD
MIN_ORDER = 1.7

SPHERE = {
    "shape": "sphere",
    "radius": 3.0,
    "size": 0.6,
    "inner": {
        "nucleus": {
            "shape": "sphere",
            "radius": 1.2,
            "center": (0.8, 0.0, 0.0),
            "surface": "envelope",
            "size": 0.4,
        }
    },
    "outside": {
        "shape": "box",
        "extent": (12.0, 10.0, 10.0),
        "center": (1.0, 0.0, 0.0),
        "size": 2.0,
    },
}
DISK = {
    "shape": "disk",
    "radius": 3.0,
    "size": 0.3,
    "inner": {"nucleus": {"shape": "disk", "radius": 1.0, "center": (0.5, 0.5), "size": 0.2}},
    "outside": {"shape": "rectangle", "extent": (12.0, 10.0), "size": 1.0},
}
DISK_IN_DISK = {
    "shape": "disk",
    "radius": 3.0,
    "size": 0.3,
    "outside": {"shape": "disk", "radius": 6.0, "size": 1.0, "name": "bath", "surface": "far"},
}
TWO_BODIES = {
    "shape": "ellipsoid",
    "semi_axes": (3.5, 3.0, 2.5),
    "size": 0.5,
    "inner": {
        "nucleus": {"shape": "ellipsoid", "semi_axes": (1.2, 1.0, 0.8), "center": (-1.2, 0, 0)},
        "er": {"shape": "sphere", "radius": 0.7, "center": (1.4, 0.5, 0.0), "size": 0.3},
    },
}
CASES = {"sphere": SPHERE, "disk": DISK, "disk-in-disk": DISK_IN_DISK, "two-bodies": TWO_BODIES}


def make(case: dict) -> TaggedMesh:
    kwargs = {k: v for k, v in case.items() if k != "shape"}
    return meshing.generate(case["shape"], COMM, **kwargs)


@pytest.fixture(scope="module")
def meshes() -> dict[str, TaggedMesh]:
    return {name: make(case) for name, case in CASES.items()}


def measure(tagged: TaggedMesh, name: str) -> float:
    """Volume or area of a region, from its tags (``ds`` and ``dS``: report's own code)."""
    dim, tag = tagged.regions[name]
    return mesh_report._measure(tagged, dim, tag)


def test_regions_and_tags(meshes):
    sphere = meshes["sphere"]
    assert dict(sphere.regions) == {
        "cytosol": (3, CYTOSOL),
        "nucleus": (3, 3),
        "medium": (3, 5),
        "membrane": (2, MEMBRANE),
        "envelope": (2, 4),
        "boundary": (2, 6),
    }
    assert sphere.volumes == {"cytosol": 1, "nucleus": 3, "medium": 5}
    assert sphere.surfaces == {"membrane": 2, "envelope": 4, "boundary": 6}
    assert dict(meshes["disk"].regions)["nucleus_membrane"] == (1, 4)  # the default surface name
    assert dict(meshes["disk-in-disk"].regions) == {
        "cytosol": (2, 1),
        "bath": (2, 3),
        "membrane": (1, 2),
        "far": (1, 4),
    }
    two = meshes["two-bodies"]
    assert two.volumes == {"cytosol": 1, "nucleus": 3, "er": 5}
    assert two.surfaces == {"membrane": 2, "nucleus_membrane": 4, "er_membrane": 6}
    assert "inner nucleus ellipsoid" in two.source and "inner er sphere" in two.source


def test_one_volume_meshes_keep_the_default_regions():
    tagged = meshing.generate("disk", COMM, radius=1.0, size=0.3)
    assert dict(tagged.regions) == {"cytosol": (2, CYTOSOL), "membrane": (1, MEMBRANE)}
    plain = TaggedMesh(tagged.mesh, tagged.cell_tags, tagged.facet_tags, "by hand")
    assert dict(plain.regions) == dict(tagged.regions)
    assert "compartments" not in meshing.summary(tagged)


def sphere_volume(r: float) -> float:
    return 4 / 3 * math.pi * r**3


@pytest.mark.parametrize("name", ["sphere", "disk", "disk-in-disk"])
def test_volumes_and_areas(meshes, name):
    tagged = meshes[name]
    case = CASES[name]
    dim = tagged.mesh.topology.dim
    r, h = case["radius"], case["size"]
    cell = (sphere_volume(r), 4 * math.pi * r**2) if dim == 3 else (math.pi * r**2, 2 * math.pi * r)
    error = {"cell": (h / r) ** 2 * cell[0]}  # absolute error of the cell's volume
    nucleus = case.get("inner", {}).get("nucleus")
    inner_volume = 0.0
    if nucleus:
        rn, hn = nucleus["radius"], nucleus["size"]
        exact = (
            (sphere_volume(rn), 4 * math.pi * rn**2)
            if dim == 3
            else (math.pi * rn**2, 2 * math.pi * rn)
        )
        tol = (hn / rn) ** 2
        assert measure(tagged, "nucleus") == pytest.approx(exact[0], rel=tol)
        surface = case["inner"]["nucleus"].get("surface", "nucleus_membrane")
        assert measure(tagged, surface) == pytest.approx(exact[1], rel=tol)
        inner_volume, error["nucleus"] = exact[0], tol * exact[0]
    assert measure(tagged, "cytosol") == pytest.approx(
        cell[0] - inner_volume, abs=sum(error.values())
    )
    assert measure(tagged, "membrane") == pytest.approx(cell[1], rel=(h / r) ** 2)
    outside = case["outside"]
    medium, boundary = outside.get("name", "medium"), outside.get("surface", "boundary")
    if "extent" in outside:  # flat faces: exact
        sides = outside["extent"]
        box = math.prod(sides)
        faces = 2 * sum(a * b for i, a in enumerate(sides) for b in sides[i + 1 :])
        faces = 2 * sum(sides) if dim == 2 else faces
        assert measure(tagged, boundary) == pytest.approx(faces, rel=1e-12)
        assert measure(tagged, medium) == pytest.approx(box - cell[0], abs=error["cell"])
    else:  # a disk of the medium's size
        rm, hm = outside["radius"], outside["size"]
        tol = (hm / rm) ** 2
        assert measure(tagged, boundary) == pytest.approx(2 * math.pi * rm, rel=tol)
        assert measure(tagged, medium) == pytest.approx(
            math.pi * rm**2 - cell[0], abs=tol * math.pi * rm**2 + error["cell"]
        )


def test_two_inner_bodies(meshes):
    tagged = meshes["two-bodies"]
    a, b, c = TWO_BODIES["semi_axes"]
    cell = 4 / 3 * math.pi * a * b * c
    nucleus = 4 / 3 * math.pi * 1.2 * 1.0 * 0.8
    er = sphere_volume(0.7)
    tol_nucleus, tol_er, tol_cell = (0.5 / 0.8) ** 2, (0.3 / 0.7) ** 2, (0.5 * 3.5 / 2.5**2) ** 2
    assert measure(tagged, "nucleus") == pytest.approx(nucleus, rel=tol_nucleus)
    assert measure(tagged, "er") == pytest.approx(er, rel=tol_er)
    assert measure(tagged, "cytosol") == pytest.approx(
        cell - nucleus - er, abs=tol_cell * cell + tol_nucleus * nucleus + tol_er * er
    )
    assert measure(tagged, "er_membrane") == pytest.approx(4 * math.pi * 0.49, rel=tol_er)


def test_disk_nucleus_converges_at_second_order():
    errors, sizes = [], []
    for h in (0.2, 0.1):
        case = {**DISK, "inner": {"nucleus": {**DISK["inner"]["nucleus"], "size": h}}}
        tagged = make(case)
        report = mesh_report.report(tagged)
        [envelope] = [c for c in report.compartments if c.name == "nucleus_membrane"]
        sizes.append(envelope.h_mean)
        errors.append(
            (
                abs(measure(tagged, "nucleus") - math.pi) / math.pi,
                abs(envelope.measure - 2 * math.pi) / (2 * math.pi),
            )
        )
    for k in range(2):
        order = math.log(errors[0][k] / errors[1][k]) / math.log(sizes[0] / sizes[1])
        assert order >= MIN_ORDER, (errors, sizes)


# the surfaces between two volumes, and the one on the mesh's boundary
INTERFACES = {
    "sphere": {"membrane": ("cytosol", "medium"), "envelope": ("cytosol", "nucleus")},
    "disk": {"membrane": ("cytosol", "medium"), "nucleus_membrane": ("cytosol", "nucleus")},
    "disk-in-disk": {"membrane": ("cytosol", "bath")},
    "two-bodies": {"nucleus_membrane": ("cytosol", "nucleus"), "er_membrane": ("cytosol", "er")},
}
EXTERIOR = {
    "sphere": "boundary",
    "disk": "boundary",
    "disk-in-disk": "far",
    "two-bodies": "membrane",
}


def sides(tagged: TaggedMesh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per local facet: its local cells (second -1 if one) and their volume tags."""
    mesh = tagged.mesh
    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim - 1, tdim)
    cells = mesh.topology.index_map(tdim)
    volume = np.full(cells.size_local + cells.num_ghosts, -1)
    volume[tagged.cell_tags.indices] = tagged.cell_tags.values
    f2c = mesh.topology.connectivity(tdim - 1, tdim)
    count = np.diff(f2c.offsets)
    first = f2c.array[f2c.offsets[:-1]]
    second = np.where(
        count == 2, f2c.array[np.minimum(f2c.offsets[:-1] + 1, f2c.array.size - 1)], -1
    )
    return np.column_stack([first, second]), volume, count


@pytest.mark.parametrize("name", CASES)
def test_every_interface_facet_has_one_cell_in_each_volume(meshes, name):
    """On every rank: a facet of a surface between two volumes that has a cell owned here
    has its other side's cell here too, one cell in each volume; and every facet
    between two volumes is tagged with the surface between them."""
    tagged = meshes[name]
    mesh = tagged.mesh
    tdim = mesh.topology.dim
    cells = mesh.topology.index_map(tdim)
    assert tagged.cell_tags.indices.size == cells.size_local + cells.num_ghosts  # all tagged
    pair, volume, count = sides(tagged)
    facet_tag = np.full(count.size, -1)
    facet_tag[tagged.facet_tags.indices] = tagged.facet_tags.values
    owned_facets = mesh.topology.index_map(tdim - 1).size_local
    across = 0  # interface facets with an owned cell on one side and a ghost on the other
    for surface, (inside, outside) in INTERFACES[name].items():
        tag, expected = tagged.surfaces[surface], {tagged.volumes[inside], tagged.volumes[outside]}
        facets = tagged.facet_tags.find(tag)
        near_owned = facets[np.any((pair[facets] >= 0) & (pair[facets] < cells.size_local), axis=1)]
        assert np.all(count[near_owned] == 2)
        assert all({int(v) for v in volume[pair[f]]} == expected for f in near_owned)
        across += int(np.count_nonzero(np.any(pair[near_owned] >= cells.size_local, axis=1)))
        between = np.flatnonzero(
            (count == 2)
            & np.isin(volume[pair[:, 0]], list(expected))
            & np.isin(volume[np.maximum(pair[:, 1], 0)], list(expected))
            & (volume[pair[:, 0]] != volume[np.maximum(pair[:, 1], 0)])
        )
        assert np.all(facet_tag[between] == tag)
        owned = COMM.allreduce(int(np.count_nonzero(facets < owned_facets)), op=MPI.SUM)
        assert owned == meshing.summary(tagged)["compartments"][surface] > 0
    # an owned cell's facet with one cell here is on the mesh's boundary: ghosted across facets
    c2f = mesh.topology.connectivity(tdim, tdim - 1).array.reshape(len(volume), -1)
    of_owned = np.unique(c2f[: cells.size_local])
    assert np.all(facet_tag[of_owned[count[of_owned] == 1]] == tagged.surfaces[EXTERIOR[name]])
    if COMM.size > 1:
        assert COMM.allreduce(cells.num_ghosts, op=MPI.MIN) > 0
        if name == "sphere":  # the partition cuts the interfaces: the test sees the ghosts
            assert COMM.allreduce(across, op=MPI.SUM) > 0


@pytest.mark.parametrize("name", CASES)
def test_exterior_surfaces_are_the_boundary(meshes, name):
    tagged = meshes[name]
    mesh = tagged.mesh
    tdim = mesh.topology.dim
    exterior = dolfinx.mesh.exterior_facet_indices(mesh.topology)
    tagged_facets = tagged.facet_tags.find(tagged.surfaces[EXTERIOR[name]])
    owned = np.sort(tagged_facets[tagged_facets < mesh.topology.index_map(tdim - 1).size_local])
    assert np.array_equal(owned, np.sort(exterior))


def test_report_lists_every_compartment(meshes):
    report = mesh_report.report(meshes["sphere"])
    by_name = {c.name: c for c in report.compartments}
    assert list(by_name) == ["cytosol", "nucleus", "medium", "membrane", "envelope", "boundary"]
    assert by_name["membrane"].between == ("cytosol", "medium")
    assert by_name["envelope"].between == ("cytosol", "nucleus")
    assert by_name["boundary"].between == ("medium", "outside")
    summary = meshing.summary(meshes["sphere"])["compartments"]
    for c in report.compartments:
        assert c.entities == summary[c.name] > 0
        assert 0 < c.h_min <= c.h_mean <= c.h_max
    assert by_name["envelope"].h_mean == pytest.approx(0.4, rel=0.3)
    assert report.area == pytest.approx(by_name["membrane"].measure)
    text = "\n".join(report.lines())
    assert "compartments:" in text and "between cytosol and nucleus" in text
    assert "nucleus  volume  tag 3:" in text and "µm³" in text
    disk = "\n".join(mesh_report.report(meshes["disk"]).lines())
    assert "nucleus_membrane surface tag 4:" in disk and " edges, " in disk and "µm²" in disk


def test_cell_sizes_follow_the_sizes_asked_for(meshes):
    report = mesh_report.report(meshes["sphere"])
    by_name = {c.name: c for c in report.compartments}
    assert by_name["membrane"].h_mean == pytest.approx(0.6, rel=0.3)
    assert by_name["boundary"].h_mean == pytest.approx(2.0, rel=0.3)
    assert by_name["medium"].h_max > 2 * by_name["cytosol"].h_max


def test_estimate_is_near_gmsh(meshes):
    for name in ("sphere", "disk", "two-bodies"):
        case = CASES[name]
        dim = meshes[name].mesh.topology.dim
        lengths = {k: case[k] for k in ("radius", "semi_axes") if k in case}
        found = bodies.bodies_from_tables(
            dim, (0, 0, 0), case["size"], case.get("inner"), case.get("outside")
        )
        parts = bodies.estimate_parts(case["shape"], lengths, case["size"], None, None, *found)
        cells = meshing.summary(meshes[name])["cells"]
        assert 0.7 < sum(parts.values()) / cells < 1.4, (name, parts, cells)


def test_order_2(meshes):
    tagged = make({**DISK, "order": 2, "size": 0.6, "outside": {**DISK["outside"], "size": 2.0}})
    assert tagged.mesh.geometry.cmaps[0].degree == 2
    assert measure(tagged, "membrane") == pytest.approx(6 * math.pi, rel=1e-3)
    assert measure(tagged, "nucleus") == pytest.approx(math.pi, rel=1e-3)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (
            {"inner": {"nucleus": {"shape": "disk", "radius": 1.0, "center": (2.5, 0.0)}}},
            "inner.nucleus",
        ),
        (
            {
                "inner": {
                    "a": {"shape": "disk", "radius": 1.0},
                    "b": {"shape": "disk", "radius": 0.8, "center": (1.2, 0)},
                }
            },
            "inner.b",
        ),
        ({"inner": {"nucleus": {"shape": "sphere", "radius": 1.0}}}, "inner.nucleus.shape"),
        ({"inner": {"nucleus": {"shape": "disk"}}}, "inner.nucleus.radius"),
        ({"inner": {"cytosol": {"shape": "disk", "radius": 1.0}}}, "inner.cytosol"),
        (
            {"inner": {"nucleus": {"shape": "disk", "radius": 1.0, "surface": "membrane"}}},
            "inner.nucleus.surface",
        ),
        ({"outside": {"shape": "rectangle", "extent": (5.0, 12.0)}}, "outside"),
        ({"outside": {"shape": "box", "extent": (9.0, 9.0, 9.0)}}, "outside.shape"),
        ({"outside": {"shape": "disk", "radius": 9.0, "extent": (9.0, 9.0)}}, "outside.extent"),
    ],
)
def test_bad_nesting_is_one_line_naming_the_key(change, key):
    with pytest.raises(MeshError) as info:
        meshing.generate("disk", COMM, radius=3.0, size=0.5, **change)
    text = str(info.value)
    assert text.startswith(f"{key}:") and "\n" not in text


def test_nesting_checks_of_other_cells():
    def body(center, radius=0.5):
        table = {"n": {"shape": "sphere", "radius": radius, "center": center}}
        return bodies.bodies_from_tables(3, (0, 0, 0), 0.2, table, None)[0]

    capsule = ("capsule", {"radius": 1.0, "length": 6.0})
    bodies.check_nesting(*capsule, (0, 0, 0), body((2.4, 0, 0)), None)
    with pytest.raises(bodies.NestingError, match="not strictly inside"):
        bodies.check_nesting(*capsule, (0, 0, 0), body((0, 0.6, 0)), None)
    spread = ("spread", {"radius": 4.0, "height": 2.0, "thickness": 0.5})
    bodies.check_nesting(*spread, (0, 0, 0), body((0, 0, 1.0)), None)
    with pytest.raises(bodies.NestingError, match="not strictly inside"):
        bodies.check_nesting(*spread, (0, 0, 0), body((3.0, 0, 0.5), 0.3), None)  # on the lamella
    medium = bodies.bodies_from_tables(3, (0, 0, 0), 0.2, None, {"shape": "ball", "radius": 4.2})[1]
    bodies.check_nesting(*spread, (0, 0, 0), [], medium)
    small = bodies.bodies_from_tables(3, (0, 0, 0), 0.2, None, {"shape": "ball", "radius": 3.9})[1]
    with pytest.raises(bodies.NestingError, match="does not contain the cell"):
        bodies.check_nesting(*spread, (0, 0, 0), [], small)
