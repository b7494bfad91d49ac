"""Tests of the mesh report (``polarity mesh --check``, ``polarity check``); serial and MPI."""

from __future__ import annotations

import math

try:  # the dolfinx wheel must be initialised before dolfinx or petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:
    pass

from mpi4py import MPI

import numpy as np
import pytest

from solver import cli
from solver.mesh import meshing
from solver.mesh import report as mesh_report
from solver.mesh.report import H_MEMBRANE_MAX, element_quality

COMM = MPI.COMM_WORLD


def test_quality_of_regular_and_flat_simplices():
    regular_triangle = [[0, 0], [1, 0], [0.5, math.sqrt(3) / 2]]
    right_triangle = [[0, 0], [1, 0], [0, 1]]
    flat_triangle = [[0, 0], [1, 0], [2, 0]]
    q = element_quality(np.array([regular_triangle, right_triangle, flat_triangle], float))
    # right isosceles: r = (2 - √2)/2, R = √2/2, 2r/R = 2(√2 - 1)
    assert q == pytest.approx([1.0, 2 * (math.sqrt(2) - 1), 0.0], abs=1e-12)
    regular_tet = [[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]
    corner_tet = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    flat_tet = [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]]
    q = element_quality(np.array([regular_tet, corner_tet, flat_tet], float))
    # corner tetrahedron: r = 1/(3 + √3), R = √3/2
    assert q == pytest.approx([1.0, 3 * 2 / (math.sqrt(3) * (3 + math.sqrt(3))), 0.0], abs=1e-12)


@pytest.mark.parametrize(("size", "coarse"), [(0.5, True), (0.3, False)])
def test_report_of_a_ball(size, coarse):
    report = mesh_report.report(meshing.generate("sphere", COMM, radius=1.5, size=size))
    assert report.dim == 3 and report.order == 1
    assert report.volume == pytest.approx(4 / 3 * math.pi * 1.5**3, rel=3 * (size / 1.5) ** 2)
    assert report.area == pytest.approx(4 * math.pi * 1.5**2, rel=3 * (size / 1.5) ** 2)
    assert report.extent == pytest.approx(3.0, rel=1e-12)  # gmsh puts poles on the sphere
    summary = meshing.summary(meshing.generate("sphere", COMM, radius=1.5, size=size))
    assert report.cells == summary["cells"] and report.membrane_facets == summary["membrane_facets"]
    assert report.h_membrane_min <= report.h_membrane_mean <= report.h_membrane_max
    assert 0 < report.quality_min <= report.quality_mean <= 1
    warned = any("too coarse" in w for w in report.warnings())
    assert warned == coarse == (report.h_membrane_mean > H_MEMBRANE_MAX)
    text = "\n".join(report.lines())
    assert "cytosol volume" in text and "membrane area" in text and "µm³" in text


def test_report_in_2d_speaks_of_area_and_length():
    report = mesh_report.report(meshing.generate("disk", COMM, radius=2.0, size=0.2))
    text = "\n".join(report.lines())
    assert "cytosol area" in text and "membrane length" in text and "triangles" in text
    assert report.area == pytest.approx(4 * math.pi, rel=3 * 0.1**2)
    assert report.warnings() == []


def test_extent_warning_for_a_cell_in_the_wrong_unit():
    report = mesh_report.report(meshing.generate("sphere", COMM, radius=0.3, size=0.1))
    assert any("are its coordinates in µm" in w for w in report.warnings())


def test_polarity_check_prints_the_mesh_report(tmp_shared, capsys):
    config = tmp_shared / "config.toml"
    if COMM.rank == 0:
        config.write_text(
            '[mesh]\nshape = "sphere"\nradius = "2 um"\nsize = "0.6 um"\n'
            '[time]\nend = "1 s"\ndt = "0.1 s"\n'
            '[species.c]\ncompartment = "cytosol"\nD = "1 um^2/s"\ninitial = 1\n'
        )
    COMM.barrier()
    assert cli.main(["check", str(config)]) == 0
    if COMM.rank == 0:
        out = capsys.readouterr().out
        assert "generated sphere radius=2 size=0.6" in out
        assert "membrane edges" in out and "worst" in out
        assert "warning: membrane elements are too coarse" in out
