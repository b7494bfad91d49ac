"""Checkpoints: the whole state of a run in one HDF5 file, readable on any rank count.

``OUT/checkpoint/state.h5`` holds, per compartment, the node keys (input node
numbers, see :mod:`solver.fem.nodes`), their coordinates (µm) and the integrator's
history (``U^n``, ``U^{n-1}``, ``U^{n-2}`` when present; nodes × species, µM or
µM·µm), plus a JSON record (``/meta``) of the time, step sizes, counters, outputs
written so far and the run file as resolved. It is written to ``state.h5.tmp``,
flushed to disk and renamed: a crash while writing leaves the previous checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpi4py import MPI

import h5py
import numpy as np

from solver.fem.nodes import ROOT, NodeLayout
from solver.io.files import on_root, write_hdf5

FOLDER = "checkpoint"
FILE = "state.h5"
FORMAT = 1


def path_in(out_dir: Path) -> Path:
    """Where the checkpoint of the run writing to ``out_dir`` lives."""
    return Path(out_dir) / FOLDER / FILE


@dataclass
class StoredBlock:
    """One compartment as stored (on rank 0; None elsewhere): keys sorted."""

    species: list[str]
    keys: np.ndarray | None
    coordinates: np.ndarray | None
    states: list[np.ndarray | None]


@dataclass
class Stored:
    """A checkpoint as read: ``meta`` on every rank, arrays on rank 0."""

    path: Path
    meta: dict[str, Any]
    blocks: dict[str, StoredBlock]


def write(
    path: Path,
    layouts: Mapping[str, NodeLayout],
    species: Mapping[str, Sequence[str]],
    states: Mapping[str, Sequence[np.ndarray]],
    meta: Mapping[str, Any],
    comm: MPI.Comm,
) -> None:
    """Write a checkpoint (collective). ``states[c]``: owned nodes × species arrays.

    Raises :class:`~solver.io.files.WriteError` on every rank when it cannot be
    written (a full disk): the previous checkpoint is then intact.
    """
    gathered = {
        c: [
            layouts[c].gather(np.asarray(s).reshape(layouts[c].owned, len(species[c])))
            for s in states[c]
        ]
        for c in layouts
    }

    def dump(f: h5py.File) -> None:
        f.attrs["format"] = FORMAT
        f["meta"] = json.dumps(dict(meta), default=_plain)
        for c, lay in layouts.items():
            g = f.create_group(c)
            g.attrs["species"] = json.dumps(list(species[c]))
            g["keys"] = lay.global_keys
            g["coordinates"] = lay.global_coordinates
            g["coordinates"].attrs["units"] = "um"
            for k, data in enumerate(gathered[c]):
                g[f"state{k}"] = data

    def save() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_hdf5(path, dump)

    on_root(comm, path, save)


def read(path: Path, comm: MPI.Comm) -> Stored:
    """Read a checkpoint written by :func:`write` (collective; arrays stay on rank 0).

    Raises ValueError (on every rank) when the file is missing or unreadable.
    """
    error, meta, blocks = None, None, {}
    if comm.rank == ROOT:
        try:
            with h5py.File(path, "r") as f:
                if int(f.attrs.get("format", -1)) != FORMAT:
                    raise ValueError(f"unknown checkpoint format {f.attrs.get('format')!r}")
                meta = json.loads(f["meta"][()])
                for c in f:
                    if not isinstance(f[c], h5py.Group):
                        continue
                    g = f[c]
                    n = len([k for k in g if k.startswith("state")])
                    blocks[c] = StoredBlock(
                        json.loads(g.attrs["species"]),
                        g["keys"][()],
                        g["coordinates"][()],
                        [g[f"state{k}"][()] for k in range(n)],
                    )
        except (OSError, KeyError, ValueError) as err:
            error = f"cannot read checkpoint {str(path)!r}: {err}"
    error, meta = comm.bcast((error, meta), root=ROOT)
    if error:
        raise ValueError(error)
    shape = comm.bcast(
        {c: (b.species, len(b.states)) for c, b in blocks.items()} if comm.rank == ROOT else None
    )
    if comm.rank != ROOT:
        blocks = {c: StoredBlock(sp, None, None, [None] * n) for c, (sp, n) in shape.items()}
    return Stored(path, meta, blocks)


def restore(stored: StoredBlock, layout: NodeLayout, tolerance: float) -> list[np.ndarray]:
    """The stored states on this rank's nodes (owned and ghost), as flat blocked arrays.

    Raises ValueError (on every rank) when the mesh differs from the stored one: a node
    missing, or a coordinate off by more than ``tolerance`` (µm).
    """
    try:
        coordinates = layout.scatter(stored.keys, stored.coordinates)
    except KeyError:
        raise ValueError("the mesh has nodes that the checkpoint does not") from None
    keys = stored.keys if layout.comm.rank == ROOT else None  # None elsewhere anyway
    size = layout.comm.allreduce(keys.size if keys is not None else 0, op=MPI.SUM)
    offset = np.max(np.abs(coordinates[: layout.owned] - layout.coordinates), initial=0.0)
    offset = layout.comm.allreduce(float(offset), op=MPI.MAX)
    if size != layout.size or offset > tolerance:
        raise ValueError(
            f"the mesh differs from the checkpoint's ({layout.size} nodes vs {size}, "
            f"largest node offset {offset:.3g} um)"
        )
    return [layout.scatter(stored.keys, s).reshape(-1) for s in stored.states]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
