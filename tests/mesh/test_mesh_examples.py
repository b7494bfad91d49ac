"""The example cells of meshes/ load on any number of ranks and are fine enough to use."""

from __future__ import annotations

import json
from pathlib import Path

try:  # the dolfinx wheel must be initialised before dolfinx or petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:
    pass

from mpi4py import MPI

import pytest

from solver import cli
from solver.mesh import meshing
from solver.mesh import report as mesh_report
from solver.mesh import surface as mesh_import
from tests.cases import exchange_file

MESHES = Path(__file__).resolve().parents[2] / "meshes"
MAX_BYTES = 2_000_000  # each shipped file stays small
EXAMPLES = sorted(MESHES.glob("*.msh"))


def test_examples_are_small():
    assert {p.name for p in EXAMPLES} >= {"blebbed-cell.msh", "spread-cell.msh"}
    for path in [*EXAMPLES, MESHES / "blebbed-cell.stl"]:
        assert path.stat().st_size < MAX_BYTES, path


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_loads_without_warnings(path):
    report = mesh_report.report(meshing.read(path, MPI.COMM_WORLD))
    assert report.dim == 3 and report.membrane_facets > 0
    assert report.warnings() == []  # docs/numerics.md, Mesh resolution; no slivers


def test_blebbed_cell_keeps_its_surface():
    """The volume mesh's membrane has the area and volume of the shipped surface (1 %)."""
    surface = mesh_import.load_surface(MESHES / "blebbed-cell.stl", 1.0)
    report = mesh_report.report(meshing.read(MESHES / "blebbed-cell.msh", MPI.COMM_WORLD))
    assert report.area == pytest.approx(surface.area(), rel=0.01)
    assert report.volume == pytest.approx(surface.volume(), rel=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_out_of_the_box(tmp_shared, path):
    """A run file names the shipped mesh directly: two steps of binding and unbinding."""
    config = tmp_shared / "config.toml"
    if MPI.COMM_WORLD.rank == 0:
        config.write_text(
            exchange_file(
                path.as_posix(),
                end="0.02 s",
                D="10 um^2/s",
                c0="1 + 0.05*x",
                m0="100 molecule/um^2",
            )
        )
    MPI.COMM_WORLD.barrier()
    out = tmp_shared / "out"
    assert cli.main(["run", str(config), "-o", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "completed" and record["steps"] == 2
