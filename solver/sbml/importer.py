"""``polarity import``: an SBML or Antimony model into a run file a person can read.

The run file holds the model's compartments, parameters (in solver units, with their
units), species (initial values in µM, or µM·µm on surfaces), definitions (assignment
rules) and reactions (rates per volume or per area: :mod:`solver.sbml.network`), a
mesh that fits the model (:mod:`solver.sbml.places`) and a time table to edit.

**Diffusion coefficients** are not part of SBML core. They come from, in order: an
overlay (``--overlay FILE``: run-file tables merged over the import, or a
``[diffusion]`` table of species -> D), ``--set species.NAME.D=...``, SBML-spatial
(``diffusionCoefficient`` of a parameter), and this project's annotation of an exported
model. A species without one has D = 0 (it does not move): the run file says which,
in a comment at its top, and so does the command.

Nothing is written unless the whole run file reads as one (``solver.config``): an
unsupported construct, a unit that cannot be converted, or a rate whose units do not
fit what it changes is one line naming the SBML element or the key, and exit code 2.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solver.config.runfile import SECTIONS, apply_override, from_dict
from solver.errors import InputError
from solver.model.model import DEFAULT_COMPARTMENTS, Kind
from solver.sbml import network, places, toml_text
from solver.sbml.document import read_document
from solver.sbml.reader import Parts, SbmlReader, refuse
from solver.sbml.unitdefs import UnitError, scaled

DEFAULT_TIME = {"end": "100 s", "dt": "0.01 s", "scheme": "bdf2", "adaptive": True}
DEFAULT_OUTPUT = {"every": "1 s"}
_NUMBER_UNIT = re.compile(r"^\s*[-+]?[0-9.]+(?:[eE][-+]?\d+)?\s+uM(?:\*um)?\s*$")
_SPECIES_ORDER = ("compartment", "description", "unit", "D", "initial", "noise")
_KEPT = ("mesh", "time", "output", "stimulus", "metrics", "solver", "limits")
_ORDER = SECTIONS


@dataclass
class Imported:
    """A run file made from a model: its document, its text, and what it lacks."""

    document: dict[str, Any]
    text: str
    without_diffusion: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def import_model(
    source: str | Path,
    out: str | Path | None = None,
    *,
    overlay: str | Path | None = None,
    mesh: str | None = None,
    overrides: Sequence[str] = (),
    surfaces: Sequence[str] = (),
    sides: Mapping[str, tuple[str, str]] | None = None,
) -> Imported:
    """Read ``source`` (SBML or Antimony) into a validated run file (not written).

    ``out`` is where the run file will be written (relative mesh paths and the
    validation are taken from its folder).
    """
    source = Path(source)
    out = Path(out) if out is not None else source.with_suffix(".toml")
    r = SbmlReader(read_document(source), tuple(surfaces), sides)
    r.source = source
    r.prepare()
    if not r.model.getNumSpecies():
        raise InputError(str(source), "the model holds no species")
    kept = _kept_tables(r.parts.tables, str(source))
    places.settle_sides(r)
    generated = "mesh" not in kept and (mesh is None or mesh in places.SHAPES)
    if generated and not places.simple_cell(r):
        held = ", ".join(p.sbml_id for p in r.places.values() if places._holds(r, p))
        raise InputError(
            str(source),
            f"the model's compartments ({held}) are more than one cell and its membrane: "
            "give --mesh FILE, a mesh whose regions carry these names",
        )
    r.parts.compartments = places.name_compartments(r, generated)
    network.read_rules(r)
    network.read_initial_assignments(r)
    network.read_reactions(r)
    diffusion = _spatial_diffusion(r)
    document = _document(r, kept, mesh, out.parent, diffusion)
    if overlay is not None:
        extra = _overlay(Path(overlay))
        for name, whole in (("mesh", "shape"), ("time", "dt")):
            if whole in extra.get(name, {}):  # a table of its own, not a change
                document[name] = extra.pop(name)
        _merge(document, extra)
        _stimuli_replace(document)
        _species_units(document, extra)
    for item in overrides:
        apply_override(document, item, "--set")
    document["species"] = {
        n: {k: t[k] for k in (*_SPECIES_ORDER, *t) if k in t}
        for n, t in document.get("species", {}).items()
    }
    missing = [n for n, s in document.get("species", {}).items() if "D" not in s]
    r.parts.notes.extend(_notes(missing))
    try:
        from_dict(document, source=str(out), base_dir=out.parent)
    except InputError as err:
        raise InputError(str(source), f"the imported run file would not read: {err}") from None
    header = _header(source, r.parts)
    text = toml_text.dumps(_ordered(document), _comments(r.parts, document), header)
    return Imported(document, text, missing, list(r.parts.notes))


def write(imported: Imported, out: str | Path, overwrite: bool = False) -> None:
    """Write the run file (atomically); refuse an existing file without ``overwrite``."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise InputError(str(out), "exists; choose another -o or give --overwrite")
    if out.is_dir():
        raise InputError(str(out), "is a folder; -o names the run file to write")
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(imported.text)
        os.replace(tmp, out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise InputError(str(out), f"cannot write the run file: {err.strerror or err}") from None


def _kept_tables(text: str, where: str) -> dict[str, Any]:
    """The tables an exported model keeps in its annotation."""
    if not text.strip():
        return {}
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(where, f"the model's polarity annotation is not TOML: {err}") from None
    return {k: v for k, v in tables.items() if k in _KEPT}


def _spatial_diffusion(r: SbmlReader) -> dict[str, str]:
    """Diffusion coefficients of SBML-spatial (isotropic ones), by SBML species id."""
    found: dict[str, str] = {}
    m = r.model
    for i in range(m.getNumParameters()):
        p = m.getParameter(i)
        plugin = p.getPlugin("spatial")
        if plugin is None or not plugin.isSetDiffusionCoefficient():
            continue
        coefficient = plugin.getDiffusionCoefficient()
        target = coefficient.getVariable()
        if coefficient.getType() != r.L.SPATIAL_DIFFUSIONKIND_ISOTROPIC:
            raise refuse("parameter", p.getId(), "an anisotropic diffusion coefficient")
        try:
            unit = scaled(p.getDerivedUnitDefinition(), "it")
        except UnitError as err:
            raise refuse("parameter", p.getId(), err.message) from None
        value = p.getValue() * (unit.factor if unit is not None else 1.0)
        found[target] = f"{value!r} um^2/s"
    return found


def _document(
    r: SbmlReader, kept: dict[str, Any], mesh: str | None, base: Path, diffusion: dict[str, str]
) -> dict[str, Any]:
    parts = r.parts
    document: dict[str, Any] = {}
    if isinstance(kept.get("mesh"), dict) and kept["mesh"].get("file"):  # beside the SBML
        path = (r.source.parent / str(kept["mesh"]["file"])).resolve()
        kept["mesh"] = {**kept["mesh"], "file": os.path.relpath(path, base.resolve())}
    document["mesh"] = kept.get("mesh") or places.mesh_table(r, mesh, base)
    if mesh is not None and "mesh" in kept:
        document["mesh"] = places.mesh_table(r, mesh, base)
    document["time"] = kept.get("time", dict(DEFAULT_TIME))
    document["output"] = kept.get("output", dict(DEFAULT_OUTPUT))
    if parts.compartments and dict(parts.compartments) != dict(DEFAULT_COMPARTMENTS):
        document["compartments"] = {
            c.name: {"kind": str(c.kind)}
            | ({"inside": c.inside} if c.kind is Kind.SURFACE else {})
            | ({"outside": c.outside} if c.outside else {})
            for c in parts.compartments.values()
        }
    used = _used_names(parts)
    document["parameters"] = {
        n: v
        for n, v in parts.parameters.items()
        if n in used or not parts.comments.get(f"parameters.{n}", "").startswith("size of")
    }
    if "stimulus" in kept:
        document["stimulus"] = kept["stimulus"]
    names = {p.sbml_id: p.name for p in r.places.values()}
    by_name = {v: k for k, v in r.run_name.items()}
    species = {}
    for name, table in parts.species.items():
        table = {k: table[k] for k in _SPECIES_ORDER if k in table}
        table["compartment"] = names.get(table["compartment"], table["compartment"])
        sbml_id = by_name.get(name, name)
        if sbml_id in diffusion and "D" not in table:
            table["D"] = diffusion[sbml_id]
        species[name] = table
    document["species"] = species
    if parts.definitions:
        document["definitions"] = dict(parts.definitions)
    if parts.reactions:
        document["reactions"] = dict(parts.reactions)
    for k in ("metrics", "solver", "limits"):
        if k in kept:
            document[k] = kept[k]
    return {k: v for k, v in document.items() if v != {} or k == "parameters" and v}


def _used_names(parts: Parts) -> set[str]:
    from solver.model.expressions import parse_expression

    texts = [t["rate"] for t in parts.reactions.values()] + list(parts.definitions.values())
    texts += [
        str(s["initial"]) for s in parts.species.values() if isinstance(s.get("initial"), str)
    ]
    used: set[str] = set()
    for text in texts:
        try:
            used |= parse_expression(text, max_length=None).names
        except ValueError:
            continue
    return used


def _overlay(path: Path) -> dict[str, Any]:
    """An overlay: run-file tables, and ``[diffusion]`` (species -> D) as a shorthand."""
    where = str(path)
    if not path.is_file():
        raise InputError(where, "overlay file does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(where, f"cannot read the overlay: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise InputError(where, f"malformed TOML: {err}") from None
    diffusion = data.pop("diffusion", {})
    if not isinstance(diffusion, dict):
        raise InputError(f"{where}: diffusion", "expected a table of species = D")
    for name, value in diffusion.items():
        data.setdefault("species", {}).setdefault(name, {})["D"] = value
    return data


def _stimuli_replace(document: dict[str, Any]) -> None:
    """A stimulus of the overlay replaces the SBML parameter of its name and its occupancy.

    SBML (and Antimony) hold a stimulus as a parameter at its mean and its occupancy as
    an assignment rule: the well-mixed view of a field the run file prescribes in space.
    """
    for name in document.get("stimulus", {}):
        document.get("parameters", {}).pop(name, None)
        for table in ("parameters", "definitions"):
            document.get(table, {}).pop(f"{name}_occupancy", None)


def _species_units(document: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """A unit the overlay declares keeps a species' numbers: a number without the unit."""
    for name, table in extra.get("species", {}).items():
        target = document.get("species", {}).get(name, {})
        initial = target.get("initial")
        if "unit" in table and isinstance(initial, str) and _NUMBER_UNIT.match(initial):
            target["initial"] = float(initial.split()[0])


def _merge(target: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(target.get(k), dict):
            _merge(target[k], v)
        else:
            target[k] = copy.deepcopy(v)


def _notes(missing: list[str]) -> list[str]:
    if not missing:
        return []
    return [
        f"no diffusion coefficient for {', '.join(missing)}: D = 0 (they do not move); "
        "give species.NAME.D here, in --overlay or with --set"
    ]


def _header(source: Path, parts: Parts) -> list[str]:
    lines = [f"Imported from {source.name} by polarity import. Units: um, s, uM (volumes),"]
    lines.append("uM*um (surfaces). Rates are per volume (uM/s) or per area (uM*um/s): each SBML")
    lines.append("kinetic law divided by the size of the compartment where its species meet.")
    lines += [f"Note: {n}" for n in parts.notes]
    renamed = [
        f"{new} (SBML '{old}')"
        for k, old in parts.comments.items()
        if k.startswith("renamed.")
        for new in [k.split(".", 1)[1]]
    ]
    if renamed:
        lines.append("Renamed: " + ", ".join(renamed))
    for k, old in parts.comments.items():
        if k.startswith("compartment."):
            lines.append(f"The SBML compartment '{old}' is the {k.split('.', 1)[1]} here.")
    return lines


def _comments(parts: Parts, document: Mapping[str, Any]) -> dict[str, str]:
    comments = {k: v for k, v in parts.comments.items() if k.split(".")[0] in document}
    if document.get("time") == DEFAULT_TIME:
        comments.setdefault("time.end", "SBML holds no simulation time: choose it")
    return comments


def _ordered(document: Mapping[str, Any]) -> dict[str, Any]:
    return {k: document[k] for k in _ORDER if k in document}
