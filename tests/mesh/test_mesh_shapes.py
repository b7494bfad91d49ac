"""Tests of the cell-shape generators and ``polarity mesh SHAPE``; serial and under MPI.

Convergence: with P1 (affine) cells the boundary is a polygon/polyhedron inscribed
in the curved membrane, so volume and membrane area have relative errors
O((h/R)²). Each shape is meshed at two sizes h and h/2 and the observed order
log(e_h / e_h/2) / log(h_Γ / h_Γ/2), with h_Γ the measured mean membrane edge
length, must be at least 1.7 (measured: 2.00–2.25); the finer error must also stay
below 3 (h/R)², R the smallest radius of curvature.
"""

from __future__ import annotations

import math

try:  # the dolfinx wheel must be initialised before dolfinx or petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:
    pass

from mpi4py import MPI

import gmsh
import numpy as np
import pytest

from solver import cli
from solver.mesh import meshing
from solver.mesh import report as mesh_report
from solver.mesh.meshing import CYTOSOL, MEMBRANE, MeshError

COMM = MPI.COMM_WORLD
MIN_ORDER = 1.7  # observed order of volume and area errors (expected 2)
GEOMETRIC_CONSTANT = 3.0  # C in the relative tolerance C (h/R)²


def spread_exact(
    radius: float, height: float, dome: float, thickness: float
) -> tuple[float, float]:
    """Volume and area of a half-spheroid dome (base ``dome``, ``height``) on a disk lamella."""
    r, h, rd, t = radius, height, dome, thickness
    volume = math.pi * r**2 * t + math.pi * rd**2 * ((h - t) - (h**3 - t**3) / (3 * h**2))
    # dome above the lamella: z = h sin(phi), rho = rd cos(phi), Gauss-Legendre in phi
    x, w = np.polynomial.legendre.leggauss(64)
    lo, hi = math.asin(t / h), math.pi / 2
    phi = 0.5 * (hi - lo) * x + 0.5 * (hi + lo)
    speed = np.sqrt(rd**2 * np.sin(phi) ** 2 + h**2 * np.cos(phi) ** 2)
    dome_area = 0.5 * (hi - lo) * float(np.sum(w * 2 * math.pi * rd * np.cos(phi) * speed))
    rim = rd * math.sqrt(1 - t**2 / h**2)  # dome radius where it meets the lamella top
    area = math.pi * r**2 + 2 * math.pi * r * t + math.pi * (r**2 - rim**2) + dome_area
    return volume, area


def spheroid_exact(a: float, c: float) -> tuple[float, float]:
    """Volume and area of a prolate spheroid (a, a, c), c > a."""
    e = math.sqrt(1 - a**2 / c**2)
    return 4 / 3 * math.pi * a * a * c, 2 * math.pi * a**2 * (1 + c / (a * e) * math.asin(e))


# shape, lengths (µm), exact (volume, area), sizes (µm), smallest radius of curvature (µm)
CASES = {
    "disk": ("disk", {"radius": 1.0}, (math.pi, 2 * math.pi), (0.2, 0.1), 1.0),
    "sphere": ("sphere", {"radius": 1.0}, (4 / 3 * math.pi, 4 * math.pi), (0.4, 0.2), 1.0),
    "ellipsoid": (
        "ellipsoid",
        {"semi_axes": (1.0, 1.0, 1.5)},
        spheroid_exact(1.0, 1.5),
        (0.4, 0.2),
        1.0 / 1.5,
    ),
    "spread": (
        "spread",
        {"radius": 2.0, "height": 1.2, "dome_radius": 1.2, "thickness": 0.4},
        spread_exact(2.0, 1.2, 1.2, 0.4),
        (0.4, 0.2),
        1.2**2 / 1.2,
    ),
    "capsule": (
        "capsule",
        {"radius": 1.0, "length": 3.0},
        (math.pi + 4 / 3 * math.pi, 2 * math.pi + 4 * math.pi),
        (0.4, 0.2),
        1.0,
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_volume_and_area_converge_at_second_order(name):
    shape, lengths, exact, sizes, curvature_radius = CASES[name]
    reports = [mesh_report.report(meshing.generate(shape, COMM, size=h, **lengths)) for h in sizes]
    h = [r.h_membrane_mean for r in reports]
    for i, key in enumerate(("volume", "area")):
        errors = [abs(getattr(r, key) - exact[i]) / exact[i] for r in reports]
        order = math.log(errors[0] / errors[1]) / math.log(h[0] / h[1])
        assert order >= MIN_ORDER, f"{name} {key}: errors {errors}, sizes {h}"
        assert errors[1] < GEOMETRIC_CONSTANT * (sizes[1] / curvature_radius) ** 2
    assert all(r.membrane_facets > 0 and r.quality_min > 0 for r in reports)


def test_spread_cell_sits_on_the_substrate():
    """The footprint lies in z = center_z; the dome reaches z = center_z + height."""
    tagged = meshing.generate(
        "spread", COMM, size=0.4, radius=2.0, height=1.5, thickness=0.4, center=(1.0, 0.0, -1.0)
    )
    x = tagged.mesh.geometry.x
    low = COMM.allreduce(float(x[:, 2].min(initial=np.inf)), op=MPI.MIN)
    high = COMM.allreduce(float(x[:, 2].max(initial=-np.inf)), op=MPI.MAX)
    right = COMM.allreduce(float(x[:, 0].max(initial=-np.inf)), op=MPI.MAX)
    assert low == pytest.approx(-1.0, abs=1e-12)
    assert high == pytest.approx(0.5, abs=1e-3)
    assert right == pytest.approx(3.0, abs=1e-12)  # lamella edge: centre x + radius
    assert "dome_radius=1" in tagged.source  # default: half the lamella radius


def test_grading_toward_the_membrane():
    """With inner_size, the membrane keeps ``size`` and the inside coarsens."""
    lengths = {"radius": 3.0, "size": 0.5}
    uniform = mesh_report.report(meshing.generate("sphere", COMM, **lengths))
    graded = mesh_report.report(
        meshing.generate("sphere", COMM, inner_size=1.5, grading=1.0, **lengths)
    )
    assert "inner_size=1.5 grading=1" in graded.source
    assert graded.h_membrane_mean == pytest.approx(uniform.h_membrane_mean, rel=0.1)
    assert graded.h_max > 2 * uniform.h_max
    assert graded.cells < 0.6 * uniform.cells
    assert graded.volume == pytest.approx(uniform.volume, rel=0.01)


def test_order2_capsule_is_more_accurate():
    exact_volume = CASES["capsule"][2][0]
    errors = []
    for order in (1, 2):
        tagged = meshing.generate("capsule", COMM, size=0.4, radius=1.0, length=3.0, order=order)
        errors.append(abs(mesh_report.report(tagged).volume - exact_volume))
    assert errors[1] < 0.1 * errors[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"radius": 2.0, "dome_radius": 2.5}, "dome_radius"),
        ({"radius": 2.0, "height": 0.35, "thickness": 0.4}, "thickness"),
        ({"radius": 2.0, "thickness": 0.2}, "lamella"),
        ({"radius": 2.0, "semi_axes": (1, 2, 3)}, "not semi_axes"),
        ({"radius": 2.0, "inner_size": 0.2}, "inner_size"),
        ({"radius": 2.0, "inner_size": 1.0, "grading": 0.0}, "grading"),
    ],
)
def test_spread_rejects_bad_proportions(kwargs, message):
    with pytest.raises(MeshError, match=message) as info:
        meshing.generate("spread", COMM, size=0.3, **kwargs)
    assert "spread" in str(info.value)


def test_capsule_must_be_longer_than_wide():
    with pytest.raises(MeshError, match="capsule: length=2"):
        meshing.generate("capsule", COMM, size=0.3, radius=1.0, length=2.0)


def test_mesh_from_config_takes_new_shapes(tmp_shared):
    table = {"shape": "capsule", "radius": 1.0, "length": 3.0, "size": 0.5, "inner_size": 0.8}
    tagged = meshing.mesh_from_config(table, COMM, tmp_shared)
    assert "capsule" in tagged.source and "inner_size=0.8" in tagged.source
    with pytest.raises(MeshError, match="height.*not used by shape"):
        meshing.mesh_from_config({**table, "height": 1.0}, COMM, tmp_shared)


def physical_groups(path) -> dict[tuple[int, int], str]:
    """Physical groups of a .msh file (read on the root, broadcast)."""
    groups = None
    if COMM.rank == 0:
        gmsh.initialize(interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
        try:
            gmsh.merge(str(path))
            groups = {g: gmsh.model.getPhysicalName(*g) for g in gmsh.model.getPhysicalGroups()}
        finally:
            gmsh.finalize()
    return COMM.bcast(groups, root=0)


@pytest.mark.parametrize(
    ("shape", "options", "dim"),
    [
        ("spread", ["--radius", "2", "--height", "1.2", "--thickness", "400 nm"], 3),
        ("capsule", ["--radius", "1", "--length", "3", "--inner-size", "0.8"], 3),
        ("ellipse", ["--semi-axes", "2", "1", "--order", "2"], 2),
    ],
)
def test_cli_writes_msh_with_physical_groups(tmp_shared, capsys, shape, options, dim):
    out = tmp_shared / f"{shape}.msh"
    code = cli.main(["mesh", shape, *options, "--size", "0.4", "-o", str(out)])
    assert code == 0
    groups = physical_groups(out)
    assert groups == {(dim, CYTOSOL): "cytosol", (dim - 1, MEMBRANE): "membrane"}
    tagged = meshing.read(out, COMM)
    assert tagged.mesh.topology.dim == dim
    assert mesh_report.report(tagged).membrane_facets > 0
    if COMM.rank == 0:
        printed = capsys.readouterr().out
        assert f"written: {out}" in printed and "membrane" in printed
    # an existing file is kept unless --overwrite
    assert cli.main(["mesh", shape, *options, "--size", "0.4", "-o", str(out)]) == 2
    assert cli.main(["mesh", shape, *options, "--size", "0.4", "-o", str(out), "--overwrite"]) == 0


def test_cli_writes_xdmf_and_checks_it(tmp_shared, capsys):
    out = tmp_shared / "cell.xdmf"
    assert cli.main(["mesh", "sphere", "--radius", "1", "--size", "0.3", "-o", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["mesh", "--check", str(out)]) == 0
    if COMM.rank == 0:
        printed = capsys.readouterr().out
        assert "tetrahedra" in printed and "membrane area" in printed
        assert "worst" in printed and "too coarse" not in printed


def test_read_is_distributed(tmp_shared):
    """A .msh is read on the root and partitioned: no rank owns every cell."""
    out = tmp_shared / "ball.msh"
    assert cli.main(["mesh", "sphere", "--radius", "1", "--size", "0.25", "-o", str(out)]) == 0
    for path in (out, tmp_shared / "ball.xdmf"):
        if path.suffix == ".xdmf":
            meshing.write_xdmf(meshing.read(out, COMM), path)
        tagged = meshing.read(path, COMM)
        cells = tagged.mesh.topology.index_map(3)
        owned = COMM.allgather(cells.size_local)
        assert sum(owned) == cells.size_global
        if COMM.size > 1:
            assert max(owned) < cells.size_global and min(owned) > 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["mesh", "sphere", "--radius", "1", "--size", "0.3"], "-o"),
        (["mesh", "sphere", "--radius", "1", "--size", "2", "-o", "x.msh"], "too coarse"),
        (["mesh", "sphere", "--radius", "one", "-o", "x.msh"], "--radius"),
        (["mesh", "sphere", "--size", "0.3", "-o", "x.vtk"], ".msh or .xdmf"),
        (["mesh", "disk", "--height", "1", "-o", "x.msh"], "height"),
        (["mesh", "sphere", "--unit", "nm", "-o", "x.msh"], "--unit"),
        (["mesh"], "SHAPE"),
        (["mesh", "--check", "missing.msh"], "does not exist"),
    ],
)
def test_cli_bad_input_exit_code_2(tmp_shared, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_shared)
    assert cli.main(argv) == 2
    if COMM.rank == 0:
        assert message in capsys.readouterr().err


RUN_FILE = """
[mesh]
shape = "{shape}"
{lengths}
size = "0.5 um"
inner_size = "0.8 um"

[time]
end = "1 s"
dt = "0.1 s"

[species.c]
compartment = "cytosol"
D = "1 um^2/s"
initial = 1
"""


@pytest.mark.parametrize(
    ("shape", "lengths", "code", "message"),
    [
        ("spread", 'radius = "3 um"\nheight = "1.5 um"\nthickness = "500 nm"', 0, "spread"),
        ("capsule", 'radius = "1 um"\nlength = "3 um"', 0, "capsule radius=1 length=3"),
        ("sphere", 'radius = "1 um"\nheight = "1 um"', 2, "mesh.height: not used by shape"),
        ("capsule", 'radius = "1 um"\nthickness = "1 um"', 2, "it takes radius, length"),
        ("spread", 'radius = "1 um"\ndome_radius = "2 um"', 2, "dome_radius=2"),
    ],
)
def test_run_file_shapes(tmp_shared, capsys, shape, lengths, code, message):
    path = tmp_shared / "config.toml"
    if COMM.rank == 0:
        path.write_text(RUN_FILE.format(shape=shape, lengths=lengths))
    COMM.barrier()
    assert cli.main(["check", str(path)]) == code
    if COMM.rank == 0:
        captured = capsys.readouterr()
        assert message in (captured.out if code == 0 else captured.err)
        if code == 0:
            assert "inner_size=0.8" in captured.out


@pytest.mark.serial  # the message is printed on rank 0
def test_polarity_mesh_refuses_a_mesh_too_fine_to_make(tmp_path, capsys):
    import time

    from solver import cli

    out = tmp_path / "fine.msh"
    start = time.perf_counter()
    assert cli.main(["mesh", "sphere", "--size", "0.001", "-o", str(out)]) == 2
    assert time.perf_counter() - start < 5.0  # refused before gmsh runs
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--size" in err[0] and "--max-elements" in err[0]
    assert not out.exists()
    # the limit can be raised
    assert cli.main(["mesh", "disk", "--size", "0.5", "--max-elements", "10", "-o", str(out)]) == 2
    assert cli.main(["mesh", "disk", "--size", "0.5", "-o", str(out)]) == 0
    assert out.exists()
