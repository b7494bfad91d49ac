"""An output folder of ``polarity run`` read as a whole: the public reader of results."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from solver.io.metrics import load_metrics
from solver.io.results import COMPARTMENTS, Series, load_record, series_of


@dataclass(frozen=True)
class Results:
    """The results in the output folder ``out``, read when first asked for.

    ``record`` is ``run.json`` (status, settings, final read-outs, wall times),
    ``metrics`` the columns of ``metrics.csv`` (totals, pools, read-outs per output
    time; solver units), :meth:`series` a compartment's field series (lengths in µm,
    times in s, fields in the units of their ``units`` attribute).
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

    def series(self, compartment: str) -> Series:
        """The field series of ``compartment`` (``"cytosol"`` or ``"membrane"``)."""
        found = series_of(self.out, compartment)
        if found is None:
            raise KeyError(f"{self.out}: no {compartment} series; compartments: {COMPARTMENTS}")
        return found


def read_results(out: str | Path) -> Results:
    """The results of the run in the output folder ``out``.

    Raises InputError if ``out`` is not an output folder of ``polarity run``.
    """
    results = Results(Path(out))
    results.record  # noqa: B018  (read now, so a wrong folder fails here)
    return results
