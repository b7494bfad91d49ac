"""``metrics.csv``, its writer and its one reader.

One row per output time: totals, pools and read-outs.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mpi4py import MPI

import numpy as np

from solver.errors import InputError
from solver.io.files import atomic_write

FILE = "metrics.csv"


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
        """Append one row (a value for every column) and flush it."""
        if self.file is None:
            return
        self.writer.writerow([_format(row[c]) for c in self.columns])
        self.file.flush()

    def close(self) -> None:
        """Close the file (rank 0)."""
        if self.file is not None:
            self.file.close()


def _format(value: Any) -> str:
    if isinstance(value, float | np.floating):
        return repr(float(value)) if math.isfinite(value) else str(float(value))
    return str(value)


def _read(path: Path) -> tuple[list[str], list[list[float]]]:
    """Header and rows of a metrics file; InputError if it is not one."""
    try:
        with path.open(newline="") as f:
            table = [r for r in csv.reader(f) if r]
        if not table:
            return [], []
        header = table[0]
        rows = [[float(v) for v in r] for r in table[1:]]
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise InputError(str(path), f"unreadable: {err}") from None
    bad = next((k for k, r in enumerate(rows) if len(r) != len(header)), None)
    if bad is not None:
        raise InputError(
            str(path), f"unreadable: row {bad + 2} has {len(rows[bad])} values, not {len(header)}"
        )
    return header, rows


def load_metrics(out: Path) -> dict[str, np.ndarray]:
    """Columns of ``out/metrics.csv`` as float arrays (empty dict if there is none)."""
    path = Path(out) / FILE
    if not path.is_file():
        return {}
    header, rows = _read(path)
    data = np.array(rows, dtype=float).reshape(len(rows), len(header))
    return {h: data[:, k].copy() for k, h in enumerate(header)}


def truncate_metrics(
    path: Path, columns: Sequence[str], t: float, comm: MPI.Comm
) -> list[dict[str, float]]:
    """Keep the rows of ``metrics.csv`` up to time ``t`` (s); return them (collective).

    Raises InputError when the file's columns are not ``columns``: a restarted run
    cannot append to it.
    """
    rows: list[dict[str, float]] | None = None
    error = None
    if comm.rank == 0:
        try:
            header, table = _read(path) if path.is_file() else ([], [])
            if header != list(columns):
                raise InputError(str(path), "its columns differ from this run's; cannot append")
            keep = [r for r in table if r[0] <= t * (1 + 1e-12) + 1e-14]
            rows = [dict(zip(columns, r, strict=True)) for r in keep]
            atomic_write(path, lambda tmp: _write_rows(tmp, columns, keep))
        except InputError as err:
            error = str(err)
        except OSError as err:
            error = f"{path}: {err}"
    rows, error = comm.bcast((rows, error), root=0)
    if error:
        raise InputError("restart", error)
    return rows


def _write_rows(path: Path, columns: Sequence[str], rows: list[list[float]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows([[_format(v) for v in r] for r in rows])
