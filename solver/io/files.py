"""Outputs: the output folder, metrics.csv and run.json.

Layout of an output folder (the contract of DESIGN §5): ``cytosol.xdmf`` and
``membrane.xdmf`` with their HDF5 data (one time series per compartment, one field
per species, named after it: :mod:`solver.io.series`), ``metrics.csv``, ``run.json``
and ``checkpoint/`` (:mod:`solver.io.checkpoint`). Only rank 0 writes files.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mpi4py import MPI

import dolfinx
import numpy as np

from solver.errors import InputError


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


class MetricsWriter:
    """``metrics.csv``: one row per output time; rank 0 writes, others ignore.

    ``append`` continues an existing file (whose header is ``columns``).
    """

    def __init__(
        self, path: Path, columns: Sequence[str], comm: MPI.Comm, append: bool = False
    ) -> None:
        self.columns = list(columns)
        self.file = None
        if comm.rank == 0:
            self.file = path.open("a" if append else "w", newline="")
            self.writer = csv.writer(self.file)
            if not append:
                self.writer.writerow(self.columns)
            self.file.flush()

    def write(self, row: Mapping[str, float]) -> None:
        if self.file is None:
            return
        self.writer.writerow([_format(row[c]) for c in self.columns])
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _format(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return repr(float(value)) if math.isfinite(value) else str(float(value))
    return str(value)


def read_metrics(path: Path) -> dict[str, list[float]]:
    """Columns of a ``metrics.csv`` as lists of floats."""
    with path.open() as f:
        rows = list(csv.reader(f))
    header, data = rows[0], rows[1:]
    return {h: [float(r[i]) for r in data] for i, h in enumerate(header)}


def versions() -> dict[str, str]:
    """Versions of the solver and of the stack it runs on."""
    from petsc4py import PETSc

    import solver

    return {
        "solver": solver.__version__,
        "dolfinx": dolfinx.__version__,
        "petsc": ".".join(str(v) for v in PETSc.Sys.getVersion()),
        "python": platform.python_version(),
        "mpi": MPI.Get_library_version().splitlines()[0].strip(),
    }


def write_run_json(path: Path, record: Mapping[str, Any], comm: MPI.Comm) -> None:
    """Write ``run.json`` atomically on rank 0 (a crash never leaves half a file).

    Collective: every rank returns once the file is complete.
    """
    if comm.rank == 0:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
        os.replace(tmp, path)
    comm.barrier()


def command_line() -> str:
    return " ".join(sys.argv)
