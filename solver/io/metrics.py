"""``metrics.csv``, its writer and its one reader.

One row per output time: totals, pools and read-outs.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mpi4py import MPI

import numpy as np

from solver.errors import InputError
from solver.io.files import atomic_write, on_root

FILE = "metrics.csv"


class MetricsWriter:
    """``metrics.csv``: one row per output time; rank 0 writes, others ignore.

    ``append`` continues an existing file (whose header is ``columns``). Each row is
    written whole or not at all: a row that cannot be written (a full disk) is cut
    off again, and :class:`~solver.io.files.WriteError` is raised on every rank.
    Every method is collective.
    """

    def __init__(
        self, path: Path, columns: Sequence[str], comm: MPI.Comm, append: bool = False
    ) -> None:
        self.path = path
        self.columns = list(columns)
        self.comm = comm
        self.file: io.FileIO | None = None

        def start() -> None:
            self.file = io.FileIO(path, "a" if append else "w")
            if not append:
                self._append(self.columns)

        on_root(comm, path, start)

    def _append(self, values: Sequence[str]) -> None:
        """Write one line at the end, all of it or nothing (rank 0)."""
        assert self.file is not None
        text = io.StringIO()
        csv.writer(text).writerow(values)
        data = text.getvalue().encode()
        size = os.fstat(self.file.fileno()).st_size
        try:
            done = 0
            while done < len(data):
                done += self.file.write(data[done:]) or 0
        except OSError:
            os.ftruncate(self.file.fileno(), size)
            raise

    def write(self, row: Mapping[str, float]) -> None:
        """Append one row (a value for every column)."""
        on_root(self.comm, self.path, lambda: self._append([_format(row[c]) for c in self.columns]))

    def close(self) -> None:
        """Close the file (rank 0; not collective)."""
        if self.file is not None:
            self.file.close()
            self.file = None


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
    cannot append to it; :class:`~solver.io.files.WriteError` when it cannot be written.
    """
    rows: list[dict[str, float]] | None = None
    error = None
    keep: list[list[float]] = []
    if comm.rank == 0:
        try:
            header, table = _read(path) if path.is_file() else ([], [])
            if header != list(columns):
                raise InputError(str(path), "its columns differ from this run's; cannot append")
            keep = [r for r in table if r[0] <= t * (1 + 1e-12) + 1e-14]
            rows = [dict(zip(columns, r, strict=True)) for r in keep]
        except InputError as err:
            error = str(err)
    rows, error = comm.bcast((rows, error), root=0)
    if error:
        raise InputError("restart", error)
    on_root(comm, path, lambda: atomic_write(path, lambda tmp: _write_rows(tmp, columns, keep)))
    return rows


def _write_rows(path: Path, columns: Sequence[str], rows: list[list[float]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows([[_format(v) for v in r] for r in rows])
