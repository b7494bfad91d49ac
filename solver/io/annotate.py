"""Units and descriptions of the output fields, in run.json and as HDF5 attributes.

:func:`field_table` describes every function written to the series of each
compartment; the series writer (:mod:`solver.io.series`) stores each description as
attributes of its field (``units``, ``description``, ``compartment``) when it writes
the file, and the run writes the table to ``run.json`` under ``fields``. Units are
in the solver's system: µm, s, µM (cytosol species), µM·µm
(membrane surface densities; 1 µM·µm = 602.214 molecules/µm²); ``"1"`` is
dimensionless. Unit strings are ASCII, as in run.json (``uM*um``).
"""

from __future__ import annotations

from collections.abc import Iterable

from solver.model.model import Compartment, Model

__all__ = ["field_table"]

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
