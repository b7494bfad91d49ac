"""An output folder of ``polarity run`` read as a whole: the public reader of results."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from solver.io.compartments import Compartment, compartments
from solver.io.metrics import load_metrics
from solver.io.results import Series, load_record, series_of


@dataclass(frozen=True)
class Results:
    """The results in the output folder ``out``, read when first asked for.

    ``record`` is ``run.json`` (status, settings, final read-outs, wall times),
    ``metrics`` the columns of ``metrics.csv`` (totals, pools, read-outs per output
    time; solver units), :attr:`compartments` the run's volumes and surfaces with their
    species, :meth:`series` a compartment's field series (lengths in µm, times in s,
    fields in the units of their ``units`` attribute).
    """

    out: Path

    @cached_property
    def record(self) -> dict[str, Any]:
        """``run.json``."""
        return load_record(self.out)

    @property
    def status(self) -> str:
        """``completed``, ``stopped``, ``failed`` or ``running`` (the run has not ended)."""
        return str(self.record.get("status", "unknown"))

    @cached_property
    def metrics(self) -> dict[str, np.ndarray]:
        """The columns of ``metrics.csv``, one value per output time."""
        return load_metrics(self.out)

    @property
    def compartments(self) -> dict[str, Compartment]:
        """Every compartment of the run by name (the cytosol and membrane of older runs)."""
        return compartments(self.record)

    def series(self, compartment: str) -> Series:
        """The field series of ``compartment`` (``"cytosol"``, ``"membrane"``, ...).

        Raises:
            KeyError: The run wrote no series of ``compartment`` (it holds no species,
                or the run has no such compartment).
        """
        found = series_of(self.out, compartment)
        if found is None:
            written = [c for c in self.compartments if (self.out / f"{c}.xdmf").is_file()]
            raise KeyError(
                f"{self.out}: no {compartment} series; series: {', '.join(written) or 'none'}"
            )
        return found


def read_results(out: str | Path) -> Results:
    """The results of the run in the output folder ``out``.

    Raises InputError if ``out`` is not an output folder of ``polarity run``.
    """
    results = Results(Path(out))
    results.record  # noqa: B018  (read now, so a wrong folder fails here)
    return results
