"""Field time series in XDMF/HDF5 that survive a crash and continue after a restart.

Layout for a compartment ``c`` (``cytosol`` or ``membrane``) in the output folder:

- ``c.h5``: the mesh, written once: ``/Mesh/geometry`` (nodes × gdim, µm) and
  ``/Mesh/topology`` (cells × vertices), nodes in the order of their input numbers
  (see :mod:`solver.fem.nodes`), so it does not depend on the number of ranks;
- ``c/NNNNNN.h5``: the fields of output number ``NNNNNN``, one dataset per field
  (species and derived fields), each with ``units``, ``description`` and
  ``compartment`` attributes, and the time in the file's attribute ``t`` (s);
- ``c.xdmf``: the index read by ParaView (Xdmf3 or XDMF reader), VisIt, pyvista and
  meshio: the mesh grid, then one temporal collection with every field at every time.

Each HDF5 file is written to a temporary name and renamed, and ``c.xdmf`` is rewritten
the same way after every output: a run killed at any instant leaves every earlier
output readable. A restarted run rewrites outputs after its checkpoint under the same
numbers, so each output time appears exactly once. Only rank 0 touches files; the
writer is collective (it gathers the values); an error writing a file (a full disk)
is a :class:`~solver.io.files.WriteError` on every rank, with no temporary file left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import h5py
import numpy as np

from solver.fem.nodes import ROOT, NodeLayout
from solver.io.files import atomic_write, on_root, write_hdf5

XINCLUDE = "http://www.w3.org/2001/XInclude"
_TOPOLOGY = {
    "interval": "Polyline",
    "triangle": "Triangle",
    "quadrilateral": "Quadrilateral",
    "tetrahedron": "Tetrahedron",
    "hexahedron": "Hexahedron",
}
_GEOMETRY = {1: "X", 2: "XY", 3: "XYZ"}


@dataclass(frozen=True)
class FieldInfo:
    """A field of a series: its name, units and one-line description."""

    name: str
    units: str
    description: str = ""


@dataclass
class SeriesState:
    """The outputs written so far: (number, t in s), in order. Stored in checkpoints."""

    entries: list[tuple[int, float]] = field(default_factory=list)

    def until(self, t: float) -> SeriesState:
        """The outputs at times ≤ ``t`` (those a restart from ``t`` keeps)."""
        return SeriesState([(k, s) for k, s in self.entries if s <= t])


class SeriesWriter:
    """The time series of one compartment: ``stem.xdmf``, ``stem.h5`` and ``stem/``.

    ``state`` continues a series after a restart (its later outputs are dropped);
    None starts a new one and writes the mesh.
    """

    def __init__(
        self,
        stem: Path,
        layout: NodeLayout,
        fields: Sequence[FieldInfo],
        state: SeriesState | None = None,
    ) -> None:
        self.stem = Path(stem)
        self.layout = layout
        self.fields = list(fields)
        self.state = SeriesState() if state is None else SeriesState(list(state.entries))
        self.folder = self.stem.parent / self.stem.name
        self.mesh_file = self.stem.with_suffix(".h5")
        self.xdmf = self.stem.with_suffix(".xdmf")
        on_root(layout.comm, self.xdmf, lambda: self._start(state is None))

    def _start(self, new: bool) -> None:
        """Write the mesh (a new series) or drop the outputs after the state (rank 0)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if new:
            write_hdf5(self.mesh_file, self._write_mesh)
        else:
            keep = {self._data_name(k) for k, _ in self.state.entries}
            for stale in self.folder.glob("*.h5*"):
                if stale.name not in keep:
                    stale.unlink()
            self._write_index()

    @staticmethod
    def _data_name(number: int) -> str:
        return f"{number:06d}.h5"

    def _write_mesh(self, f: h5py.File) -> None:
        lay = self.layout
        f.attrs["compartment"] = self.stem.name
        f.attrs["length_units"] = "um"
        f.create_dataset("Mesh/geometry", data=lay.global_coordinates)
        f.create_dataset("Mesh/topology", data=lay.cells)
        f.create_dataset("Mesh/input_index", data=lay.global_keys)
        f["Mesh"].attrs["length_units"] = "um"
        f["Mesh/geometry"].attrs["length_units"] = "um"
        f["Mesh/topology"].attrs["description"] = "cell vertices (rows of Mesh/geometry)"
        f["Mesh/input_index"].attrs["description"] = "node numbers in the input mesh"

    def write(self, number: int, t: float, values: Mapping[str, np.ndarray]) -> None:
        """Write output ``number`` at time ``t`` (s): owned-node ``values`` per field."""
        gathered = {f.name: self.layout.gather(values[f.name]) for f in self.fields}

        def write_all() -> None:
            def fill(h5: h5py.File) -> None:
                h5.attrs["t"] = t
                h5.attrs["time_units"] = "s"
                h5.attrs["length_units"] = "um"
                h5.attrs["compartment"] = self.stem.name
                for f in self.fields:
                    data = h5.create_dataset(f.name, data=gathered[f.name])
                    data.attrs["units"] = f.units
                    data.attrs["description"] = f.description
                    data.attrs["compartment"] = self.stem.name

            write_hdf5(self.folder / self._data_name(number), fill)
            before = self.state.entries
            self.state.entries = [(k, s) for k, s in before if k < number]
            self.state.entries.append((number, float(t)))
            try:
                self._write_index()
            except OSError:
                self.state.entries = before  # the index on disk still lists these
                raise

        on_root(self.layout.comm, self.folder / self._data_name(number), write_all)
        self.state = self.layout.comm.bcast(self.state, root=ROOT)

    def _write_index(self) -> None:
        lay = self.layout
        assert lay.cells is not None  # the index is written on the root, which has the cells
        nodes, (cells, per_cell) = lay.size, lay.cells.shape
        mesh_h5 = self.mesh_file.name
        mesh = [
            f'        <Topology TopologyType="{_TOPOLOGY[lay.cell_name]}" '
            f'NumberOfElements="{cells}" NodesPerElement="{per_cell}">',
            f'          <DataItem Dimensions="{cells} {per_cell}" NumberType="Int" Precision="8" '
            f'Format="HDF">{mesh_h5}:/Mesh/topology</DataItem>',
            "        </Topology>",
            f'        <Geometry GeometryType="{_GEOMETRY[lay.gdim]}">',
            f'          <DataItem Dimensions="{nodes} {lay.gdim}" NumberType="Float" Precision="8" '
            f'Format="HDF">{mesh_h5}:/Mesh/geometry</DataItem>',
            "        </Geometry>",
        ]
        # every time step carries its mesh (the same HDF5 datasets): no mesh-only grid
        # beside the series, which ParaView's legacy reader would show as an extra block
        lines = [
            '<?xml version="1.0"?>',
            f'<Xdmf Version="3.0" xmlns:xi="{XINCLUDE}">',
            "  <Domain>",
            f'    <Grid Name="{self.stem.name}" GridType="Collection" CollectionType="Temporal">',
        ]
        for number, t in self.state.entries:
            data = f"{self.folder.name}/{self._data_name(number)}"
            lines += [
                f'      <Grid Name="{self.stem.name}" GridType="Uniform">',
                *mesh,
                f'        <Time Value="{t!r}" />',
            ]
            for f in self.fields:
                lines += [
                    f'        <Attribute Name={quoteattr(f.name)} AttributeType="Scalar" '
                    'Center="Node">',
                    f'          <DataItem Dimensions="{nodes}" NumberType="Float" Precision="8" '
                    f'Format="HDF">{data}:/{f.name}</DataItem>',
                    "        </Attribute>",
                ]
            lines.append("      </Grid>")
        lines += ["    </Grid>", "  </Domain>", "</Xdmf>", ""]
        text = "\n".join(lines)
        atomic_write(self.xdmf, lambda path: path.write_text(text))
