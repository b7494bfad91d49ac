"""The files a run writes while it runs.

Field series, ``metrics.csv``, ``run.json`` and the checkpoint, new or continued after
a restart.

:class:`RunOutputs` is driven by the time loop (:mod:`solver.time.loop`): it opens
the files, writes one output (fields and a metrics row) when asked, writes
checkpoints, and completes ``run.json`` at the end. Every method is collective.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mpi4py import MPI

from solver.io import checkpoint, files
from solver.io.annotate import amount_table, field_table
from solver.io.metrics import FILE as METRICS_FILE
from solver.io.metrics import MetricsWriter, truncate_metrics
from solver.io.restart import changes
from solver.io.series import FieldInfo, SeriesState, SeriesWriter
from solver.mesh import meshing

if TYPE_CHECKING:
    from solver.fem.forms import Block
    from solver.simulation import Simulation


class RunOutputs:
    """The output folder ``out`` of the run of ``sim``.

    Args:
        sim: The simulation whose fields are written.
        out: The output folder.
        columns: The columns of ``metrics.csv``.
        restart: The checkpoint the run continues from (the files are continued
            from its time), or None for a new folder.
        overwrite: Replace an existing folder (new runs only).
        overrides: The ``--set`` items of this invocation (recorded in ``run.json``).
    """

    def __init__(
        self,
        sim: Simulation,
        out: Path,
        columns: Sequence[str],
        restart: checkpoint.Stored | None = None,
        overwrite: bool = False,
        overrides: Sequence[str] = (),
    ) -> None:
        self.sim = sim
        self.out = Path(out)
        self.comm: MPI.Comm = sim.comm
        self.fields = field_table(sim.config.model, sim.derived, sim.geometry.gdim)
        self.amounts = amount_table(sim.config.model, self.fields)
        columns = with_amounts(columns, self.amounts)
        meta = restart.meta if restart else None
        if meta is None:
            files.prepare_output_dir(self.out, self.comm, overwrite)
        else:
            files.on_root(self.comm, self.out, self._drop_temporaries)
        self.writers: dict[str, SeriesWriter] = {}
        for b in sim.blocks:
            name = b.name
            state = SeriesState([tuple(e) for e in meta["series"][name]]) if meta else None
            self.writers[name] = SeriesWriter(
                self.out / name, sim.layouts[name], self._infos(b), state
            )
        self.rows: list[dict[str, float]] = []  # metrics rows kept from before a restart
        path = self.out / METRICS_FILE
        if meta is not None:
            self.rows = truncate_metrics(path, columns, sim.t, self.comm)
        self.metrics = MetricsWriter(path, columns, self.comm, append=meta is not None)
        if restart is not None:
            self.record = files.read_run_json(self.out / "run.json", self.comm)
            self.record.setdefault("restarts", []).append(
                {
                    "t": sim.t,
                    "mpi_ranks": self.comm.size,
                    "overrides": list(overrides),
                    "changes": changes(restart, sim.config),
                }
            )
            self.record.update(
                status="running", mpi_ranks=self.comm.size, command=files.command_line()
            )
        else:
            self.record = self._new_record(overrides)
        files.write_run_json(self.out / "run.json", self.record, self.comm)

    def _drop_temporaries(self) -> None:
        """Remove ``*.tmp`` files a killed run left behind (rank 0)."""
        for folder in (self.out, checkpoint.path_in(self.out).parent):
            for tmp in folder.glob("*.tmp"):
                tmp.unlink(missing_ok=True)

    def _infos(self, block: Block) -> list[FieldInfo]:
        names = [*block.species, *(self.sim.derived if block is self.sim.membrane else [])]
        return [FieldInfo(n, self.fields[n]["units"], self.fields[n]["description"]) for n in names]

    def _new_record(self, overrides: Sequence[str]) -> dict[str, Any]:
        sim, cfg = self.sim, self.sim.config
        return {
            "status": "running",
            "source": cfg.source,
            "command": files.command_line(),
            "overrides": list(overrides),
            "config": cfg.document,
            "resolved": sim.resolved(),
            "versions": files.versions(),
            "mpi_ranks": self.comm.size,
            "unknowns": sim.problem.unknowns,
            "mesh": meshing.summary(sim.geometry.tagged),
            "fields": self.fields,
            **({"amounts": self.amounts} if self.amounts else {}),
        }

    def write(self, row: dict[str, float]) -> None:
        """Write the fields at the current time and ``row`` to ``metrics.csv``.

        ``row`` gains the amount in each compartment (``amount_<compartment>``, the sum
        of its species' totals) when the run has such columns (:func:`amount_table`).
        """
        sim = self.sim
        for c, amount in self.amounts.items():
            row[f"amount_{c}"] = float(sum(row[f"total_{n}"] for n in amount["species"]))
        for b in sim.blocks:
            writer = self.writers[b.name]
            layout = sim.layouts[b.name]
            values = b.u.x.array.reshape(-1, len(b.species))
            arrays = {n: values[: layout.owned, k] for k, n in enumerate(b.species)}
            if b is sim.membrane:
                for name, (f, _) in sim.derived.items():
                    arrays[name] = layout.node_values(f, sim.derived_dofs)
            number = max((k for k, _ in writer.state.entries), default=-1) + 1
            writer.write(number, sim.t, arrays)
        self.metrics.write(row)

    def checkpoint(self, meta: dict[str, Any]) -> None:
        """Write ``checkpoint/state.h5``.

        It holds the stepper's states and ``meta`` (the loop's counters), with what the
        restart of the files needs.
        """
        sim = self.sim
        meta = {
            **meta,
            **sim.stepper.meta(),
            "series": {c: w.state.entries for c, w in self.writers.items()},
            "document": sim.config.document,
            # the --set items of the run and of every restart, in order: a later restart
            # reads the run file with them all, so it continues with the values in force
            "overrides": [
                *self.record.get("overrides", []),
                *(o for r in self.record.get("restarts", []) for o in r.get("overrides", [])),
            ],
            "source": sim.config.source,
        }
        checkpoint.write(
            checkpoint.path_in(self.out),
            sim.layouts,
            {b.name: b.species for b in sim.blocks},
            sim.stepper.states(),
            meta,
            self.comm,
        )

    def finish(self, **record: Any) -> None:
        """Complete ``run.json`` with the run's outcome."""
        self.record.update(record)
        files.write_run_json(self.out / "run.json", self.record, self.comm)

    def close(self) -> None:
        """Close ``metrics.csv``."""
        self.metrics.close()


def with_amounts(columns: Sequence[str], amounts: dict[str, Any]) -> list[str]:
    """``columns`` with ``amount_<compartment>`` after the totals and pools."""
    columns = list(columns)
    last = max((k for k, c in enumerate(columns) if c.startswith(("total_", "pool_"))), default=-1)
    added = [f"amount_{c}" for c in amounts]
    return columns[: last + 1] + added + columns[last + 1 :]


def record_failure(out: Path, comm: MPI.Comm, reason: str, **record: Any) -> bool:
    """Set ``run.json`` of ``out`` to status ``failed`` with ``reason`` (collective).

    For a run that failed before its outputs were open: the record it has (or a new
    one) is completed. Returns whether it could be written.
    """
    try:
        files.update_run_json(out / "run.json", comm, **record, status="failed", reason=reason)
    except files.WriteError:
        return False
    return True
