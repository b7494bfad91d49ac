"""Reading an output folder of ``polarity run``: run.json, metrics.csv, XDMF/HDF5 series.

Serial and MPI-free: the inspection commands (``info``, ``plot``, ``paraview``) run
on one process. Field values come straight from the HDF5 files named by the XDMF
index (one temporal collection per function), with h5py. Lengths are in µm, times
in s, fields in the units of their ``units`` attribute (see :mod:`solver.io.annotate`).
"""

from __future__ import annotations

import copy
import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from solver.errors import InputError
from solver.io.compartments import compartments, primary_volume, readout_surface

#: the compartments of a run without a ``[compartments]`` table (and of every output
#: folder written before runs had others): :func:`solver.io.compartments.compartments`
#: gives those of any run
COMPARTMENTS = ("cytosol", "membrane")


def load_record(out: Path) -> dict[str, Any]:
    """``run.json`` of the output folder ``out``; InputError if it is not one."""
    out = Path(out)
    if not out.is_dir():
        raise InputError(str(out), "output folder does not exist")
    path = out / "run.json"
    if not path.is_file():
        raise InputError(str(out), "not an output folder of polarity run (no run.json)")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(str(path), f"unreadable: {err}") from None
    if not isinstance(record, dict):
        raise InputError(str(path), "expected a JSON object")
    return record


@dataclass
class Series:
    """The time series of one compartment (``<compartment>.xdmf`` and its ``.h5``).

    ``points`` (µm, shape N × gdim) and ``cells`` (M × nodes per cell) are the mesh;
    ``fields`` maps each function name to its (time in s, HDF5 dataset) pairs,
    sorted by time; a time written twice (a restart) keeps its last entry.
    """

    path: Path
    topology: str
    points: np.ndarray
    cells: np.ndarray
    fields: dict[str, list[tuple[float, str]]] = field(default_factory=dict)

    @property
    def gdim(self) -> int:
        """The geometric dimension of the points (2 or 3)."""
        return self.points.shape[1]

    def times(self, name: str) -> np.ndarray:
        """The output times (s) of field ``name``, in file order.

        Raises:
            InputError: The series has no field ``name``.
        """
        return np.array([t for t, _ in self._entries(name)])

    def _entries(self, name: str) -> list[tuple[float, str]]:
        if name not in self.fields:
            known = ", ".join(sorted(self.fields)) or "none"
            raise InputError(str(self.path), f"no field {name!r} (fields: {known})")
        return self.fields[name]

    def values(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Times (s, shape T) and nodal values (shape T × N) of field ``name``."""
        import h5py

        entries = self._entries(name)
        rows = []
        files: dict[str, Any] = {}
        try:
            for _, ref in entries:
                file, dataset = ref.split(":", 1)
                if file not in files:
                    files[file] = h5py.File(self.path.parent / file, "r")
                rows.append(np.asarray(files[file][dataset]).reshape(-1))
        except (OSError, KeyError) as err:
            raise InputError(str(self.path), f"cannot read field {name!r}: {err}") from None
        finally:
            for f in files.values():
                f.close()
        return np.array([t for t, _ in entries]), np.array(rows)

    def range(self, name: str) -> tuple[float, float]:
        """Minimum and maximum of ``name`` over all nodes and times."""
        _, v = self.values(name)
        return float(np.nanmin(v)), float(np.nanmax(v))

    def node_weights(self) -> np.ndarray:
        """Lumped measure of every node (µm^tdim): each cell's measure shared equally."""
        measure = cell_measures(self.points, self.cells)
        w = np.zeros(len(self.points))
        np.add.at(
            w, self.cells.reshape(-1), np.repeat(measure / self.cells.shape[1], self.cells.shape[1])
        )
        return w

    def centroid(self) -> np.ndarray:
        """Measure-weighted centroid of the cells (µm, length 3)."""
        measure = cell_measures(self.points, self.cells)
        mid = self.points[self.cells].mean(axis=1)
        c = np.zeros(3)
        c[: self.gdim] = measure @ mid / measure.sum()
        return c


def cell_measures(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Length, area or volume of simplices (segments, triangles, tetrahedra) in µm^k."""
    x = points[cells]  # M × (k+1) × gdim
    edges = x[:, 1:, :] - x[:, :1, :]  # M × k × gdim
    k = edges.shape[1]
    gram = np.einsum("mig,mjg->mij", edges, edges)
    return np.sqrt(np.maximum(np.linalg.det(gram), 0.0)) / math.factorial(k)


def read_series(path: Path) -> Series:
    """Parse an XDMF file written by the solver (dolfinx ``XDMFFile``)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "file does not exist")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise InputError(str(path), f"not a readable XDMF file: {err}") from None
    domain = root.find("Domain")
    mesh = None
    if domain is not None:  # a mesh grid beside the series (older outputs), or its first step
        mesh = domain.find("Grid[@GridType='Uniform']")
        if mesh is None:
            mesh = domain.find("Grid[@GridType='Collection']/Grid[@GridType='Uniform']")
    if domain is None or mesh is None:
        raise InputError(str(path), "no mesh grid")

    def data(element: ET.Element | None, what: str) -> np.ndarray:
        item = None if element is None else element.find("DataItem")
        if item is None or item.text is None or ":" not in item.text:
            raise InputError(str(path), f"no HDF5 {what} of the mesh")
        file, dataset = item.text.strip().split(":", 1)
        try:
            with h5py.File(path.parent / file, "r") as f:
                return np.asarray(f[dataset])
        except (OSError, KeyError) as err:
            raise InputError(str(path), f"cannot read the mesh {what}: {err}") from None

    topology = mesh.find("Topology")
    series = Series(
        path,
        "" if topology is None else topology.get("TopologyType", ""),
        data(mesh.find("Geometry"), "geometry"),
        data(topology, "topology").astype(np.int64),
    )
    for collection in domain.findall("Grid[@GridType='Collection']"):
        # the function's name is its attribute's (the collection may carry another)
        # (a collection holds one function, or several written together)
        for grid in collection.findall("Grid"):
            time = grid.find("Time")
            if time is None:
                continue
            for attribute in grid.findall("Attribute"):
                item = attribute.find("DataItem")
                if item is not None and item.text:
                    entries = series.fields.setdefault(attribute.get("Name", ""), [])
                    entries.append((float(time.get("Value", "nan")), item.text.strip()))
    for name, entries in series.fields.items():
        series.fields[name] = sorted(dict(entries).items())  # a time written twice: last
    return series


def series_of(out: Path, compartment: str) -> Series | None:
    """The series of ``compartment`` in ``out``, or None if the run has no such file."""
    path = Path(out) / f"{compartment}.xdmf"
    return read_series(path) if path.is_file() else None


def run_config(record: dict[str, Any]):
    """The run's configuration rebuilt from ``run.json`` (None if it cannot be).

    A mesh file is not needed to know the model, so its table is replaced by a
    generated one (the gradient of a mesh-file run is given as a slope, not relative
    to the cell diameter, so nothing depends on it). If the whole run file no longer
    passes the checks, it is rebuilt without its reactions.
    """
    from solver import config

    document = copy.deepcopy(record.get("config"))
    if not isinstance(document, dict):
        return None
    mesh = document.get("mesh", {})
    if isinstance(mesh, dict) and (mesh.get("shape") == "file" or "file" in mesh):
        document["mesh"] = {"shape": "sphere", "radius": 1.0, "size": 1.0}
    source = str(record.get("source", "run.json"))
    # the reactions last: a run written by an older version may not pass today's checks
    # of its rates, and the stimuli and read-outs do not depend on them
    lean = {k: v for k, v in document.items() if k not in ("reactions", "definitions")}
    for attempt in (document, lean):
        try:
            return config.from_dict(attempt, source=source, base_dir=Path(source).parent)
        except (InputError, ValueError, TypeError, KeyError):
            continue
    return None


def membrane_species(record: dict[str, Any]) -> list[str]:
    """Names of the species of the read-out surface (the membrane), in run-file order."""
    surface = readout_surface(record)
    return [] if surface is None else list(compartments(record)[surface].species)


def center_of(out: Path, record: dict[str, Any], compartment: str | None = None) -> np.ndarray:
    """The point (µm, length 3) that angles on a surface are measured about.

    For the read-out surface (``compartment`` None or that surface): the centroid of
    the cell's volume (:func:`~solver.io.compartments.primary_volume`), as the run's
    read-outs use; for another surface, the centroid of the volume inside it. Each
    falls back on the surface's own centroid when that volume holds no species (and
    so has no series); zeros when neither has one.
    """
    found = compartments(record)
    surface = readout_surface(record)
    compartment = compartment or surface
    if compartment is None or compartment == surface:
        volume = primary_volume(record)
    else:
        volume = found[compartment].inside if compartment in found else None
    for name in (volume, compartment):
        series = series_of(out, name) if name else None
        if series is not None:
            return series.centroid()
    return np.zeros(3)


def readout_species(record: dict[str, Any]) -> list[str]:
    """The ``[metrics]`` species of a run, else all its membrane species."""
    table = record.get("config", {}).get("metrics", {})
    names = table.get("species", []) if isinstance(table, dict) else []
    return list(names) or membrane_species(record)


@dataclass(frozen=True)
class Reference:
    """Direction that angles are measured from: a unit vector per time, and what it is."""

    label: str  # "gradient" or "final front of <species>"
    directions: np.ndarray  # T × 3


def reference_direction(
    record: dict[str, Any], times: np.ndarray, center: np.ndarray, metrics: dict[str, np.ndarray]
) -> Reference:
    """The gradient direction of the read-outs' stimulus at each time.

    Without a directed stimulus (none, uniform, an expression): the front direction
    of the first read-out species at the last output time; else the x axis.
    """
    from solver.model.stimulus import state_at

    cfg = run_config(record)
    name = None if cfg is None else cfg.metrics.stimulus
    if name is not None:
        stimulus = cfg.model.stimuli[name]
        rows = []
        for t in times:
            state = state_at(stimulus, float(t))
            if stimulus.kind in ("linear", "exponential"):
                rows.append(state.direction)
            elif stimulus.kind == "point_source" and state.position is not None:
                c = np.asarray(stimulus.center if stimulus.center is not None else center, float)
                d = np.zeros(3)
                d[: state.position.size] = state.position - c[: state.position.size]
                rows.append(d / np.linalg.norm(d))
            else:
                break
        else:
            return Reference("gradient", np.array(rows, dtype=float).reshape(len(times), 3))
    for species in readout_species(record):
        front = [metrics.get(f"front_{a}_{species}") for a in "xyz"]
        if front[0] is not None and len(front[0]):
            d = np.array([0.0 if f is None else f[-1] for f in front])
            if np.all(np.isfinite(d)) and np.linalg.norm(d) > 0:
                d /= np.linalg.norm(d)
                return Reference(f"final front of {species}", np.tile(d, (len(times), 1)))
    return Reference("x axis", np.tile([1.0, 0.0, 0.0], (len(times), 1)))
