"""Units and descriptions of the output fields, in run.json and as HDF5 attributes.

:func:`field_table` describes every function written to the series of each
compartment; the series writer (:mod:`solver.io.series`) stores each description as
attributes of its field (``units``, ``description``, ``compartment``) when it writes
the file, and the run writes the table to ``run.json`` under ``fields``. A species'
units are those its run file declares (``[species.X] unit``), else its compartment's:
µM (cytosol), µM·µm (membrane surface densities; 1 µM·µm = 602.214 molecules/µm²);
``"1"`` is dimensionless. Unit strings are ASCII, as in run.json (``uM*um``). A
species' ``description`` (``"PIP3"``) starts its description (figures label the field
``"PIP3 (P)"``, :func:`label`); ``total_units`` are those of its ``total_X`` column of
``metrics.csv``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from solver.model.model import DEFAULT_COMPARTMENTS, MEMBRANE, Kind, Model, Species
from solver.model.model import SPECIES_UNITS as _DEFAULT_UNITS

__all__ = ["amount_table", "field_table", "label", "total_units"]

SPECIES_UNITS = {c.value: u for c, u in _DEFAULT_UNITS.items()}
LENGTH_UNITS = "um"
TIME_UNITS = "s"


def _what(s: Species) -> str:
    """What the numbers of ``s`` are, from its compartment and unit."""
    where = s.compartment
    surface = s.kind is Kind.SURFACE
    if s.units == "1":
        return f"dimensionless {where} species {s.name}"
    if s.units == "uM" and surface:
        return f"{where} species {s.name} as a concentration (volume-equivalent), not a density"
    if s.units == "uM":
        return f"concentration of {where} species {s.name}"
    if surface:
        return f"surface density of {where} species {s.name} (1 uM*um = 602.214 molecules/um^2)"
    return f"{where} species {s.name} in {s.units}"


def label(s: Species) -> str:
    """The species in a few words: ``"PIP3 (P)"``, or its name without a description."""
    return f"{s.description} ({s.name})" if s.description else s.name


def total_units(s: Species, dim: int = 3) -> str:
    """Units of ``total_X`` (the integral of ``s`` over its compartment) in ``dim``-D."""
    measure = dim - (s.kind is Kind.SURFACE)
    area = "um" if measure == 1 else f"um^{measure}"
    if s.units == "1":
        return area
    if s.units == "uM*um":
        return f"uM*um^{measure + 1}"
    return f"{s.units}*{area}"


def field_table(
    model: Model, derived_names: Iterable[str], dim: int = 3
) -> dict[str, dict[str, str]]:
    """``{name: {"compartment", "units", "description", ...}}`` of every output field.

    Species also have ``total_units`` (of ``total_X`` in a ``dim``-D cell).
    ``derived_names`` are the extra membrane fields (stimuli sampled on the membrane:
    ``<stimulus>`` in µM and ``<stimulus>_occupancy``, dimensionless).
    """
    table: dict[str, dict[str, str]] = {}
    surface = model.membrane or MEMBRANE  # where the stimuli are sampled
    for s in model.species.values():
        what = _what(s)
        if s.description:
            what = f"{s.description}: {what}"
        table[s.name] = {
            "compartment": s.compartment,
            "units": s.units,
            "description": what + (f"; D = {s.D:g} um^2/s" if s.D else "; no diffusion"),
            "total_units": total_units(s, dim),
        }
    for name in derived_names:
        base = name.removesuffix("_occupancy")
        stimulus = model.stimuli.get(base)
        kind = f"{stimulus.kind} " if stimulus is not None else ""
        if name.endswith("_occupancy") and stimulus is not None:
            table[name] = {
                "compartment": surface,
                "units": "1",
                "description": f"receptor occupancy {base}/({base} + K_D) at the membrane, "
                f"K_D = {stimulus.K_D:g} uM",
            }
        else:
            table[name] = {
                "compartment": surface,
                "units": "uM",
                "description": f"prescribed {kind}stimulus {name!r} outside the cell, "
                "sampled at the membrane",
            }
    return table


def amount_table(
    model: Model, fields: Mapping[str, Mapping[str, str]]
) -> dict[str, dict[str, Any]]:
    """``{compartment: {"species", "units"}}``: the ``amount_<compartment>`` columns.

    A run of more compartments than the cytosol and its membrane has, in
    ``metrics.csv``, the amount in each compartment that holds species: the sum of
    their totals, in the units of those totals (``fields[X]["total_units"]``, see
    :func:`field_table`); a compartment whose species' totals have different units
    (a dimensionless species among concentrations) has none.
    """
    if dict(model.declared) == dict(DEFAULT_COMPARTMENTS):
        return {}
    table: dict[str, dict[str, Any]] = {}
    for c in model.compartments:
        names = [s.name for s in model.in_compartment(c.name)]
        units = {fields[n]["total_units"] for n in names}
        if len(units) == 1:
            table[c.name] = {"species": names, "units": units.pop()}
    return table
