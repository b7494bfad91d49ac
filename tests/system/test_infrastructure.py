"""The set-up the Makefile relies on: Python discovery, packaging metadata, MPI fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIND_PYTHON = ROOT / "tools" / "find-python"


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _find_python(**env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "PYTHON"} | env
    return subprocess.run(
        [str(FIND_PYTHON)], capture_output=True, text=True, env=environ, timeout=60
    )


@pytest.mark.serial
def test_find_python_prints_a_python_of_at_least_3_12():
    found = _find_python()
    assert found.returncode == 0, found.stderr
    exe = found.stdout.strip()
    assert len(found.stdout.splitlines()) == 1 and os.access(exe, os.X_OK), found.stdout
    version = subprocess.run(
        [exe, "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert tuple(map(int, version.stdout.split())) >= (3, 12)


@pytest.mark.serial
def test_find_python_honours_PYTHON():
    found = _find_python(PYTHON=sys.executable)
    assert (found.returncode, found.stdout.strip()) == (0, sys.executable), found.stderr


@pytest.mark.serial
def test_find_python_rejects_an_unusable_PYTHON_and_says_why():
    found = _find_python(PYTHON="/bin/false")
    assert found.returncode == 1 and found.stdout == ""
    assert "PYTHON=/bin/false" in found.stderr and "3.12" in found.stderr


@pytest.mark.serial
def test_pyproject_declares_the_console_script_and_the_extras():
    project = _pyproject()["project"]
    assert project["scripts"]["polarity"] == "solver.cli:entry"
    assert project["requires-python"] == ">=3.12"
    extras = project["optional-dependencies"]
    assert extras["dolfinx"] == ["dolfinx-solver-real==0.11.*"]
    assert any(req.startswith("pytest") for req in extras["test"])
    assert not any("dolfinx" in req or "petsc" in req for req in project["dependencies"])


@pytest.mark.serial
def test_markers_are_declared_in_pyproject_and_read_by_pytest(pytestconfig):
    declared = _pyproject()["tool"]["pytest"]["ini_options"]["markers"]
    assert {line.split(":")[0] for line in declared} >= {"serial", "slow"}
    assert pytestconfig.inipath == ROOT / "pyproject.toml"  # no stray pytest.ini wins


def test_tmp_shared_is_one_directory_on_every_rank(comm, tmp_shared):
    assert len(set(comm.allgather(str(tmp_shared)))) == 1
    if comm.rank == 0:
        (tmp_shared / "from-rank-0").write_text("hello")
    comm.barrier()
    assert (tmp_shared / "from-rank-0").read_text() == "hello"


def test_dolfinx_wheel_assembles_on_every_rank(comm):
    """The installed stack: one MPI shared by mpi4py and PETSc, FFCx compiles with cc."""
    from petsc4py import PETSc

    import dolfinx
    import ufl
    from dolfinx import fem, mesh

    assert dolfinx.__version__.startswith("0.11")
    assert np.dtype(PETSc.ScalarType) == np.float64
    assert PETSc.COMM_WORLD.getSize() == comm.size
    msh = mesh.create_unit_square(comm, 8, 8)
    one = fem.Constant(msh, PETSc.ScalarType(1.0))
    area = comm.allreduce(fem.assemble_scalar(fem.form(one * ufl.dx)), op=MPI.SUM)
    assert area == pytest.approx(1.0, rel=1e-12)
