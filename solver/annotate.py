"""Units and descriptions of the output fields, in run.json and as HDF5 attributes.

:func:`field_table` describes every function written to the series of
each compartment; :func:`annotate_h5` stores that description as attributes of each
field (``units``, ``description``, ``compartment``) in every HDF5 file of the series
(``<compartment>.h5`` and ``<compartment>/*.h5``), the length unit on the mesh and
the time unit on each file. Units are in the solver's system: µm, s, µM (cytosol species), µM·µm
(membrane surface densities; 1 µM·µm = 602.214 molecules/µm²); ``"1"`` is
dimensionless. Unit strings are ASCII, as in run.json (``uM*um``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from mpi4py import MPI

from solver.model import Compartment, Model

__all__ = ["annotate_h5", "field_table"]

SPECIES_UNITS = {"cytosol": "uM", "membrane": "uM*um"}
LENGTH_UNITS = "um"
TIME_UNITS = "s"


def field_table(model: Model, derived_names: Iterable[str]) -> dict[str, dict[str, str]]:
    """``{name: {"compartment", "units", "description"}}`` of every output field.

    ``derived_names`` are the extra membrane fields (stimuli sampled on the
    membrane: ``<stimulus>`` in µM and ``<stimulus>_occupancy``, dimensionless).
    """
    table: dict[str, dict[str, str]] = {}
    for s in model.species.values():
        where = s.compartment.value
        if s.compartment == Compartment.CYTOSOL:
            what = f"concentration of cytosol species {s.name}"
        else:
            what = (
                f"surface density of membrane species {s.name} (1 uM*um = 602.214 molecules/um^2)"
            )
        table[s.name] = {
            "compartment": where,
            "units": SPECIES_UNITS[where],
            "description": what + (f"; D = {s.D:g} um^2/s" if s.D else "; no diffusion"),
        }
    for name in derived_names:
        base = name.removesuffix("_occupancy")
        stimulus = model.stimuli.get(base)
        kind = f"{stimulus.kind} " if stimulus is not None else ""
        if name.endswith("_occupancy") and stimulus is not None:
            table[name] = {
                "compartment": "membrane",
                "units": "1",
                "description": f"receptor occupancy {base}/({base} + K_D) at the membrane, "
                f"K_D = {stimulus.K_D:g} uM",
            }
        else:
            table[name] = {
                "compartment": "membrane",
                "units": "uM",
                "description": f"prescribed {kind}stimulus {name!r} outside the cell, "
                "sampled at the membrane",
            }
    return table


def annotate_h5(
    out_dir: Path, table: Mapping[str, Mapping[str, str]], comm: MPI.Comm = MPI.COMM_WORLD
) -> None:
    """Write ``table`` as attributes into the HDF5 files of ``out_dir``'s series.

    Collective; rank 0 opens the files with h5py, so the series writers must be
    closed. Idempotent: attributes are overwritten, so a restarted run that appended
    to the same files can call it again. An error is raised on every rank.
    """
    error = None
    if comm.rank == 0:
        try:
            _annotate(Path(out_dir), table)
        except (OSError, KeyError, ValueError) as err:
            error = f"{type(err).__name__}: {err}"
    error = comm.bcast(error, root=0)
    if error is not None:
        raise RuntimeError(f"{out_dir}: could not annotate the HDF5 outputs: {error}")


def _annotate(out_dir: Path, table: Mapping[str, Mapping[str, str]]) -> None:
    for compartment in (c.value for c in Compartment):
        mesh_file = out_dir / f"{compartment}.h5"
        if mesh_file.is_file():
            _annotate_file(mesh_file, compartment, table)
        folder = out_dir / compartment  # one file per output time
        if folder.is_dir():
            for path in sorted(folder.glob("*.h5")):
                _annotate_file(path, compartment, table)


def _annotate_file(path: Path, compartment: str, table: Mapping[str, Mapping[str, str]]) -> None:
    """Attributes of one HDF5 file of a series.

    Fields are datasets at the root (one file per output time) or groups under
    ``/Function`` (one file for all times, as dolfinx's XDMFFile writes them).
    """
    import h5py

    with h5py.File(path, "r+") as f:
        f.attrs["time_units"] = TIME_UNITS
        f.attrs["length_units"] = LENGTH_UNITS
        f.attrs["compartment"] = compartment
        mesh = f.get("Mesh")
        if mesh is not None:
            mesh.attrs["length_units"] = LENGTH_UNITS
            for name, item in mesh.items():
                if name == "geometry" or isinstance(item, h5py.Group):
                    item.attrs["length_units"] = LENGTH_UNITS
        functions = f.get("Function")
        fields = functions if isinstance(functions, h5py.Group) else f
        if fields is functions:
            functions.attrs["time_units"] = TIME_UNITS
        for name, info in table.items():
            item = fields.get(name)
            if item is None or info.get("compartment", compartment) != compartment:
                continue
            for key in ("units", "description", "compartment"):
                item.attrs[key] = str(info[key])
