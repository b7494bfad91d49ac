"""Files of a run: the output folder, atomic writes, run.json and the versions.

Layout of an output folder: ``cytosol.xdmf`` and ``membrane.xdmf`` with their HDF5
data (one time series per compartment, one field per species, named after it:
:mod:`solver.io.series`), ``metrics.csv`` (:mod:`solver.io.metrics`), ``run.json``
and ``checkpoint/`` (:mod:`solver.io.checkpoint`). Only rank 0 writes files, and
every file that is replaced is replaced whole (:func:`atomic_write`).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mpi4py import MPI

import dolfinx

from solver.errors import InputError
from solver.version import __version__


def prepare_output_dir(path: Path, comm: MPI.Comm, overwrite: bool = False) -> Path:
    """Create ``path``; refuse an existing non-empty folder unless ``overwrite``.

    Collective: rank 0 decides, every rank gets the same answer.
    """
    error = None
    if comm.rank == 0:
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            if not overwrite:
                error = (
                    f"output folder {str(path)!r} exists and is not empty; choose another "
                    "with -o, or pass --overwrite to replace it"
                )
            elif path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        if error is None:
            path.mkdir(parents=True, exist_ok=True)
    error = comm.bcast(error, root=0)
    if error:
        raise InputError("output", error)
    return path


def versions() -> dict[str, str]:
    """Versions of the solver and of the stack it runs on."""
    from petsc4py import PETSc

    return {
        "solver": __version__,
        "dolfinx": dolfinx.__version__,
        "petsc": ".".join(str(v) for v in PETSc.Sys.getVersion()),
        "python": platform.python_version(),
        "mpi": MPI.Get_library_version().splitlines()[0].strip(),
    }


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)``, flush the file to disk, then rename it to ``path``.

    A crash at any moment leaves either the old file or the new one, never half of one.
    """
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: Path, record: Mapping[str, Any]) -> None:
    """Write ``record`` as indented JSON, atomically (this process only)."""
    text = json.dumps(record, indent=2, default=str) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_run_json(path: Path, record: Mapping[str, Any], comm: MPI.Comm) -> None:
    """Write ``run.json`` atomically on rank 0 (a crash never leaves half a file).

    Collective: every rank returns once the file is complete.
    """
    if comm.rank == 0:
        write_json(path, record)
    comm.barrier()


def read_run_json(path: Path, comm: MPI.Comm) -> dict[str, Any]:
    """``run.json`` read on rank 0 and given to every rank ({} if unreadable)."""
    record: dict[str, Any] | None = None
    if comm.rank == 0:
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            record = {}
    return comm.bcast(record, root=0)


def command_line() -> str:
    """The command line of this process, as typed."""
    return " ".join(sys.argv)
