"""Field series (XDMF + HDF5) and checkpoints: node order, crash safety, restarts.

Run serially and under mpiexec: the files must not depend on the number of ranks.
"""

from __future__ import annotations

import re

from mpi4py import MPI

import dolfinx
import h5py
import meshio
import numpy as np
import pytest
from dolfinx import fem

from solver.fem.nodes import NodeLayout
from solver.io import checkpoint
from solver.io.series import FieldInfo, SeriesState, SeriesWriter

WORLD = MPI.COMM_WORLD


def _space(comm: MPI.Comm, n: int = 6, components: int = 2) -> fem.FunctionSpace:
    mesh = dolfinx.mesh.create_unit_square(comm, n, n)
    return fem.functionspace(mesh, ("Lagrange", 1, (components,)))


def _values(layout: NodeLayout, t: float) -> dict[str, np.ndarray]:
    """Fields that are exact functions of the node coordinates (µm) and of t (s)."""
    x, y = layout.coordinates[:, 0], layout.coordinates[:, 1]
    return {"a": x + 2 * y + t, "b": x * y - t}


def _times(xdmf) -> list[float]:
    return [float(v) for v in re.findall(r'Time Value="([^"]+)"', xdmf.read_text())]


def test_layout_order_does_not_depend_on_ranks():
    layout = NodeLayout(_space(WORLD))
    serial = NodeLayout(_space(MPI.COMM_SELF)) if WORLD.rank == 0 else None
    if WORLD.rank == 0:
        assert np.array_equal(layout.global_keys, serial.global_keys)
        assert np.array_equal(layout.global_coordinates, serial.global_coordinates)
        assert layout.cells.shape == (72, 3)  # 2·6² triangles, whoever owned them
        assert np.array_equal(np.unique(layout.cells), np.arange(49))
    assert layout.size == 49


def test_series_values_sit_at_their_nodes_and_open_with_meshio(tmp_shared):
    layout = NodeLayout(_space(WORLD))
    fields = [FieldInfo("a", "uM", "a field"), FieldInfo("b", "uM*um", "another")]
    writer = SeriesWriter(tmp_shared / "cytosol", layout, fields)
    for k, t in enumerate([0.0, 0.5, 1.0]):
        writer.write(k, t, _values(layout, t))
    if WORLD.rank == 0:
        reader = meshio.xdmf.TimeSeriesReader(str(tmp_shared / "cytosol.xdmf"))
        points, cells = reader.read_points_cells()
        assert cells[0].type == "triangle" and len(cells[0].data) == 72
        for k in range(reader.num_steps):
            t, data, _ = reader.read_data(k)
            x, y = points[:, 0], points[:, 1]
            assert np.allclose(data["a"].ravel(), x + 2 * y + t, atol=1e-14)
            assert np.allclose(data["b"].ravel(), x * y - t, atol=1e-14)
        with h5py.File(tmp_shared / "cytosol" / "000001.h5") as f:
            assert f.attrs["t"] == 0.5
            assert f["b"].attrs["units"] == "uM*um"
        assert _times(tmp_shared / "cytosol.xdmf") == [0.0, 0.5, 1.0]


def test_series_continues_after_a_restart_with_each_time_once(tmp_shared):
    layout = NodeLayout(_space(WORLD))
    fields = [FieldInfo("a", "uM"), FieldInfo("b", "uM")]
    writer = SeriesWriter(tmp_shared / "m", layout, fields)
    for k in range(5):
        writer.write(k, 0.25 * k, _values(layout, 0.25 * k))
    # a checkpoint at t = 0.5 (outputs 0, 1, 2 kept), then outputs 3 and 4 again
    again = SeriesWriter(tmp_shared / "m", layout, fields, writer.state.until(0.5))
    if WORLD.rank == 0:
        assert sorted(p.name for p in (tmp_shared / "m").iterdir()) == [
            "000000.h5",
            "000001.h5",
            "000002.h5",
        ]
    for k in (3, 4, 5):
        again.write(k, 0.25 * k, _values(layout, 0.25 * k))
    if WORLD.rank == 0:
        assert _times(tmp_shared / "m.xdmf") == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]
    assert again.state.entries[-1] == (5, 1.25)
    assert SeriesState([(0, 0.0), (1, 1.0)]).until(0.5).entries == [(0, 0.0)]


def _checkpoint(tmp, layout, t):
    states = [np.column_stack([v for v in _values(layout, t + s).values()]) for s in (0, 1)]
    checkpoint.write(
        tmp / "state.h5", {"cytosol": layout}, {"cytosol": ["a", "b"]},
        {"cytosol": states}, {"t": t}, layout.comm,
    )  # fmt: skip


def test_checkpoint_round_trip_on_any_rank_count(tmp_shared):
    layout = NodeLayout(_space(WORLD))
    if WORLD.rank == 0:  # written by one rank ...
        _checkpoint(tmp_shared, NodeLayout(_space(MPI.COMM_SELF)), 2.0)
    WORLD.barrier()
    stored = checkpoint.read(tmp_shared / "state.h5", WORLD)  # ... read by all
    assert stored.meta == {"t": 2.0}
    assert stored.blocks["cytosol"].species == ["a", "b"]
    now, before = checkpoint.restore(stored.blocks["cytosol"], layout, 1e-12)
    owned = now.reshape(-1, 2)[: layout.owned]
    expected = _values(layout, 2.0)
    assert np.array_equal(owned[:, 0], expected["a"])
    assert np.array_equal(owned[:, 1], expected["b"])
    assert np.array_equal(before.reshape(-1, 2)[: layout.owned, 0], _values(layout, 3.0)["a"])


def test_checkpoint_refuses_another_mesh(tmp_shared):
    _checkpoint(tmp_shared, NodeLayout(_space(WORLD, n=6)), 0.0)
    stored = checkpoint.read(tmp_shared / "state.h5", WORLD)
    with pytest.raises(ValueError, match="mesh"):
        checkpoint.restore(stored.blocks["cytosol"], NodeLayout(_space(WORLD, n=5)), 1e-12)


@pytest.mark.serial  # rank 0 writes checkpoints; a crash there would leave the others waiting
def test_interrupted_checkpoint_leaves_the_previous_one(tmp_path, monkeypatch):
    layout = NodeLayout(_space(MPI.COMM_SELF))
    _checkpoint(tmp_path, layout, 1.0)

    class Interrupted(RuntimeError):
        pass

    original = h5py.Group.__setitem__

    def crash_midway(group, name, value):  # after the first arrays are on disk
        if name == "state1":
            raise Interrupted("killed while writing")
        original(group, name, value)

    monkeypatch.setattr(h5py.Group, "__setitem__", crash_midway)
    with pytest.raises(Interrupted):
        _checkpoint(tmp_path, layout, 2.0)
    monkeypatch.undo()
    assert not (tmp_path / "state.h5.tmp").exists()  # nothing half-written is left
    stored = checkpoint.read(tmp_path / "state.h5", MPI.COMM_SELF)
    assert stored.meta["t"] == 1.0
    now, _ = checkpoint.restore(stored.blocks["cytosol"], layout, 1e-12)
    assert np.array_equal(now.reshape(-1, 2)[: layout.owned, 0], _values(layout, 1.0)["a"])
    _checkpoint(tmp_path, layout, 3.0)  # the next checkpoint replaces the debris
    assert checkpoint.read(tmp_path / "state.h5", MPI.COMM_SELF).meta["t"] == 3.0
