"""Files of a run: the output folder, atomic writes, run.json and the versions.

Layout of an output folder: ``cytosol.xdmf`` and ``membrane.xdmf`` with their HDF5
data (one time series per compartment, one field per species, named after it:
:mod:`solver.io.series`), ``metrics.csv`` (:mod:`solver.io.metrics`), ``run.json``
and ``checkpoint/`` (:mod:`solver.io.checkpoint`). Only rank 0 writes files, and
every file that is replaced is replaced whole (:func:`atomic_write`).
"""

from __future__ import annotations

import io
import json
import os
import platform
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mpi4py import MPI

from solver.errors import InputError, describe
from solver.version import __version__


def prepare_output_dir(path: Path, comm: MPI.Comm, overwrite: bool = False) -> Path:
    """Create ``path``; refuse an existing non-empty folder unless ``overwrite``.

    With ``overwrite``, only a folder that :func:`solver.io.claim.replace_refusal`
    accepts (a previous run's or sweep's outputs, or an empty folder) is emptied; its
    lock file (:data:`solver.io.claim.LOCK`), held by this run, is kept. Collective:
    rank 0 decides, every rank gets the same answer (an :class:`InputError`).
    """
    from solver.io import claim

    error = None
    if comm.rank == 0:
        try:
            error = claim.prepare(path, overwrite)
        except OSError as err:
            error = f"output folder {str(path)!r}: cannot prepare it: {describe(err)}"
    error = comm.bcast(error, root=0)
    if error:
        raise InputError("", error)
    return path


class WriteError(Exception):
    """A file of the output folder could not be written (disk full, an I/O error).

    Raised on every rank of the run together (see :func:`on_root`), so the time loop
    can end the run with status ``failed`` instead of hanging or aborting.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = path
        self.reason = reason


def on_root[T](comm: MPI.Comm, path: Path, action: Callable[[], T]) -> T | None:
    """``action()`` on rank 0; an OSError there is a :class:`WriteError` on every rank.

    Collective. ``path`` names the file in the error. Returns the result on rank 0
    and None elsewhere.
    """
    result, error = None, None
    if comm.rank == 0:
        try:
            result = action()
        except OSError as err:
            error = (str(getattr(err, "filename", None) or path), describe(err))
    error = comm.bcast(error, root=0)
    if error is not None:
        raise WriteError(*error)
    return result


def versions() -> dict[str, str]:
    """Versions of the solver and of the stack it runs on."""
    from petsc4py import PETSc

    import dolfinx

    return {
        "solver": __version__,
        "dolfinx": dolfinx.__version__,
        "petsc": ".".join(str(v) for v in PETSc.Sys.getVersion()),
        "python": platform.python_version(),
        "mpi": MPI.Get_library_version().splitlines()[0].strip(),
    }


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)``, flush the file to disk, then rename it to ``path``.

    A crash at any moment leaves either the old file or the new one, never half of one;
    an error (a full disk) leaves the old file and removes the temporary one.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # a full disk or an I/O error: leave nothing half-written behind
        tmp.unlink(missing_ok=True)
        raise


def write_hdf5(path: Path, fill: Callable[[Any], object]) -> None:
    """Build an HDF5 file in memory with ``fill(h5py_file)``, then write it atomically.

    Only Python writes to the disk: a full disk is one OSError and nothing half-written
    remains, whereas an HDF5 file open on a full disk fails again at the release of
    every object and at the exit of the program (where it can crash it).
    """
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        fill(f)
    data = buffer.getbuffer()
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_json(path: Path, record: Mapping[str, Any]) -> None:
    """Write ``record`` as indented JSON, atomically (this process only)."""
    text = json.dumps(record, indent=2, default=str) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_run_json(path: Path, record: Mapping[str, Any], comm: MPI.Comm) -> None:
    """Write ``run.json`` atomically on rank 0 (a crash never leaves half a file).

    Collective: every rank returns once the file is complete, or raises
    :class:`WriteError` if it could not be written.
    """
    on_root(comm, path, lambda: write_json(path, record))


def update_run_json(path: Path, comm: MPI.Comm, **fields: Any) -> None:
    """Set ``fields`` in ``run.json`` (a new record if it has none); collective.

    Raises :class:`WriteError` on every rank if it cannot be written.
    """
    record = read_run_json(path, comm)
    record.update(fields)
    write_run_json(path, record, comm)


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
