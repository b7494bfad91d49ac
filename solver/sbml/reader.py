"""An SBML model read into the model tables of a run file.

The SBML model's compartments, species, parameters, function definitions, rules and
initial assignments are read here (:class:`SbmlReader`); its reactions and rules in
:mod:`solver.sbml.network`. Values are converted to solver units once (µm, s, µM for
volume species, µM·µm for surface species), so the expressions, which use the SBML
ids, hold in solver units when the SBML model's units are consistent. Whatever the
run file cannot hold is refused with an :class:`~solver.errors.InputError` that names
the SBML element (:func:`refuse`).
"""

from __future__ import annotations

import ast
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from solver.errors import InputError
from solver.model.dimensions import AMOUNT, DIMENSIONLESS, TIME
from solver.model.model import Compartment, Kind
from solver.model.names import NameClash, Names
from solver.sbml import annotation
from solver.sbml.document import libsbml, one_line
from solver.sbml.mathml import MathError, Reader, number
from solver.sbml.unitdefs import (
    AREA,
    AVOGADRO,
    SOLVER_AMOUNT,
    VOLUME,
    Scaled,
    UnitError,
    describe,
    scaled,
)
from solver.sbml.values import close_to as _close_to
from solver.sbml.values import unquote as _unquote
from solver.sbml.values import uses
from solver.sbml.values import with_unit as _with_unit

#: the concentration of a species by the kind of its compartment, and the unit the run
#: file writes for any other
DEFAULT_DIM = {Kind.VOLUME: AMOUNT / VOLUME, Kind.SURFACE: AMOUNT / AREA}
OTHER_UNITS = {AMOUNT / VOLUME: "uM", AMOUNT / AREA: "uM*um", DIMENSIONLESS: "1"}


def refuse(kind: str, sbml_id: str, message: str) -> InputError:
    """The one-line error for an SBML element: ``SBML reaction 'J1': message``."""
    what = f"SBML {kind} '{sbml_id}'" if sbml_id else f"SBML {kind}"
    return InputError(what, one_line(message, 300))


@dataclass
class Place:
    """An SBML compartment: its run-file name, kind, size (µm³ or µm²) and sides."""

    sbml_id: str
    name: str
    kind: Kind
    size: float
    inside: str = ""  # SBML ids of the volumes on the two sides of a surface
    outside: str = ""


@dataclass
class Parts:
    """The model tables of the run file, as TOML values, with their comments."""

    compartments: dict[str, Compartment] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    species: dict[str, dict[str, Any]] = field(default_factory=dict)
    definitions: dict[str, str] = field(default_factory=dict)
    reactions: dict[str, dict[str, Any]] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: tables of the run file kept in the model's annotation (an export of this project)
    tables: str = ""


class SbmlReader:
    """Reads one libsbml Model; :meth:`read` fills :attr:`parts`.

    Args:
        doc: A checked SBMLDocument (:func:`solver.sbml.document.read_document`).
        surfaces: SBML compartments to read as surfaces whatever their dimensions.
        sides: SBML surface id -> (inside, outside) SBML volume ids ("" for none).
    """

    def __init__(
        self,
        doc: Any,
        surfaces: tuple[str, ...] = (),
        sides: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        self.L = libsbml()
        self.doc = doc
        self.surfaces = surfaces
        self.sides = dict(sides or {})
        self.outside: dict[str, str] = {}  # Level 2's compartment outside attributes
        self.parts = Parts()
        self.taken = Names({n: "reserved" for n in _reserved()})
        self.names: dict[str, ast.expr] = {}  # SBML id -> its tree in the run file
        self.run_name: dict[str, str] = {}  # SBML id -> run-file name
        self.values: dict[str, float] = {}  # run-file name -> value in solver units
        self.places: dict[str, Place] = {}
        self.functions: dict[str, tuple[list[str], Any]] = {}
        self.solver_units = True
        self.source = Path(".")  # the model file
        self.stimuli: set[str] = set()  # the stimuli an exported model's annotation keeps
        self.stimulus_ids: set[str] = set()  # the SBML parameters that stand for them
        self.time = Scaled(TIME)

    # -- names ------------------------------------------------------------------
    def name_for(self, sbml_id: str, what: str) -> str:
        """A run-file name for an SBML id: the id itself when the run file can use it."""
        base = sbml_id.lstrip("_") or "v"
        if not base[0].isalpha():
            base = f"v_{base}"
        candidate, n = base, 1
        while True:
            try:
                self.taken.add(candidate, what)
                break
            except NameClash:
                n += 1
                candidate = f"{base}_{n}"
        if candidate != sbml_id:
            self.parts.comments.setdefault(f"renamed.{candidate}", sbml_id)
        self.run_name[sbml_id] = candidate
        return candidate

    def reader(self, extra: Mapping[str, ast.expr] | None = None) -> Reader:
        """A math reader for this model's names (``extra``: a reaction's local ones)."""
        names = {**self.names, **(extra or {})}
        t: ast.expr = ast.Name("t", ast.Load())
        if not self.time.is_solver:
            t = ast.BinOp(t, ast.Div(), number(self.time.factor))
        return Reader(names, self.functions, t, AVOGADRO * SOLVER_AMOUNT, self.number_units)

    def number_units(self, unit: str) -> float:
        """Factor of a number's ``sbml:units`` to solver units."""
        found = self.unit_of_id(unit, f"a number in units '{unit}'")
        return 1.0 if found is None else found.factor

    def math(
        self, node: Any, kind: str, sbml_id: str, extra: Mapping[str, ast.expr] | None = None
    ) -> ast.expr:
        """The syntax tree of an element's math; a refusal naming the element."""
        try:
            return self.reader(extra).read(node)
        except MathError as err:
            raise refuse(kind, sbml_id, err.message) from None

    # -- units --------------------------------------------------------------------
    def units(self, element: Any, kind: str, sbml_id: str) -> Scaled | None:
        """The derived units of an element (None: not declared)."""
        try:
            return scaled(element.getDerivedUnitDefinition(), "it")
        except UnitError as err:
            raise refuse(kind, sbml_id, err.message) from None

    def unit_of_id(self, unit: str, what: str) -> Scaled | None:
        """A unit named by id: a unit definition of the model or a base unit kind."""
        L = self.L
        definition = self.model.getUnitDefinition(unit)
        if definition is None:
            kind = L.UnitKind_forName(unit)
            if kind == L.UNIT_KIND_INVALID:
                return None
            definition = L.UnitDefinition(self.model.getLevel(), self.model.getVersion())
            u = definition.createUnit()
            u.setKind(kind)
            u.setExponent(1)
            u.setScale(0)
            u.setMultiplier(1)
        try:
            return scaled(definition, what)
        except UnitError as err:
            raise InputError("SBML", err.message) from None

    def model_units(self) -> None:
        """The model's default units: are they all the solver's (or undeclared)?"""
        m = self.model
        shown = []
        for attribute in ("Substance", "Time", "Volume", "Area", "Length", "Extent"):
            unit = getattr(m, f"get{attribute}Units")()
            if not unit:
                continue
            found = self.unit_of_id(unit, f"the model's {attribute.lower()} units")
            if found is not None and not found.is_solver:
                self.solver_units = False
                definition = m.getUnitDefinition(unit)
                shown.append(f"{attribute.lower()} {describe(definition) if definition else unit}")
            if attribute == "Time" and found is not None:
                self.time = found
        if shown:
            self.parts.notes.append(
                "SBML units converted to the solver's (um, s, uM, uM*um): " + "; ".join(shown)
            )

    # -- the whole model ------------------------------------------------------------
    def prepare(self) -> None:
        """Read what the reactions need: units, functions, compartments, parameters, species.

        Level 2 models are read as Level 3 (their compartments' ``outside`` kept first).
        """
        doc = self.doc
        self.refuse_packages()
        if doc.getLevel() < 3:
            model = doc.getModel()
            for i in range(model.getNumCompartments()):
                c = model.getCompartment(i)
                if c.isSetOutside():
                    self.outside[c.getId()] = c.getOutside()
            if not doc.setLevelAndVersion(3, 2, False):
                raise InputError("SBML", "cannot read this SBML Level 2 model as Level 3")
        self.model = doc.getModel()
        found = annotation.read(self.model, "run")
        if found is not None:
            self.parts.tables = found[1]
            try:
                self.stimuli = set(tomllib.loads(found[1]).get("stimulus", {}))
            except tomllib.TOMLDecodeError:
                pass  # refused with the tables (solver.sbml.importer)
        for i in range(self.model.getNumEvents()):
            e = self.model.getEvent(i)
            raise refuse(
                "event",
                e.getId() or f"#{i + 1}",
                "events are not supported (a run file's only events are those of its stimuli)",
            )
        for i in range(self.model.getNumConstraints()):
            c = self.model.getConstraint(i)
            raise refuse(
                "constraint",
                c.getMetaId() or f"#{i + 1}",
                "constraints are not checked by the solver",
            )
        self.model_units()
        self.read_functions()
        self.read_compartments()
        self.read_parameters()
        for cid in self.places:
            self.names[cid] = self.size_name(cid)
        self.read_species()

    def refuse_packages(self) -> None:
        """Refuse a model that needs an SBML package other than spatial."""
        doc = self.doc
        if doc.getLevel() < 3:
            return
        declared = doc.getNamespaces()
        for uri in (declared.getURI(i) for i in range(declared.getNumNamespaces())):
            if "comp/version" in uri:
                raise refuse("package", "comp", "hierarchical models are not supported")
        for i in range(doc.getNumPlugins()):
            package = doc.getPlugin(i).getPackageName()
            if package in ("spatial", "l3v2extendedmath") or not doc.isPackageEnabled(package):
                continue
            if doc.getPackageRequired(package):
                raise refuse("package", package, "this SBML package is not supported")

    def read_functions(self) -> None:
        """Function definitions, expanded where they are called."""
        for i in range(self.model.getNumFunctionDefinitions()):
            f = self.model.getFunctionDefinition(i)
            lam = f.getMath()
            if lam is None or not lam.isLambda():
                raise refuse("function definition", f.getId(), "has no lambda")
            n = lam.getNumBvars()
            args = [lam.getChild(j).getName() for j in range(n)]
            self.functions[f.getId()] = (args, f.getBody())

    # -- compartments -------------------------------------------------------------------
    def read_compartments(self) -> None:
        """Compartments: kinds from their units (else spatialDimensions), sizes, sides."""
        m = self.model
        for i in range(m.getNumCompartments()):
            c = m.getCompartment(i)
            cid = c.getId()
            unit = self.units(c, "compartment", cid)
            kind = self.compartment_kind(c, unit)
            size = c.getSize() if c.isSetSize() else 1.0
            if not math.isfinite(size) or size <= 0:
                if m.getInitialAssignment(cid) is None:
                    raise refuse("compartment", cid, f"a size of {size}: expected a positive size")
                size = 1.0
            if unit is not None:
                size *= unit.factor
            self.places[cid] = Place(cid, cid, kind, size)
            found = annotation.read(c, "compartment")
            if found is not None and kind is Kind.SURFACE:
                self.places[cid].inside = found[0].get("inside", "")
                self.places[cid].outside = found[0].get("outside", "")
        for sid, (inside, outside) in self.sides.items():
            if sid not in self.places or self.places[sid].kind is not Kind.SURFACE:
                raise InputError("--sides", f"'{sid}' is no surface compartment of the model")
            for v in (inside, outside):
                if v and (v not in self.places or self.places[v].kind is not Kind.VOLUME):
                    raise InputError("--sides", f"'{v}' is no volume compartment of the model")
            self.places[sid].inside, self.places[sid].outside = inside, outside

    def compartment_kind(self, c: Any, unit: Scaled | None) -> Kind:
        """Volume or surface: by the units, else by spatialDimensions (``--surface`` first)."""
        cid = c.getId()
        if cid in self.surfaces:
            return Kind.SURFACE
        if unit is not None and unit.dim == VOLUME:
            return Kind.VOLUME
        if unit is not None and unit.dim == AREA:
            return Kind.SURFACE
        dims = c.getSpatialDimensionsAsDouble() if c.isSetSpatialDimensions() else float("nan")
        if unit is None and dims in (2.0, 3.0):
            return Kind.SURFACE if dims == 2.0 else Kind.VOLUME
        shown = f"units of {unit.text}" if unit is not None else f"spatialDimensions {dims:g}"
        raise refuse(
            "compartment",
            cid,
            f"{shown}: the solver has volumes (3-D, units of volume) and surfaces (2-D, "
            "units of area); give it units of volume or area (or --surface)",
        )

    # -- species ------------------------------------------------------------------
    def read_species(self) -> None:
        """Species: their compartment, unit and initial value; constant ones are parameters."""
        m = self.model
        for i in range(m.getNumSpecies()):
            s = m.getSpecies(i)
            sid = s.getId()
            place = self.places[s.getCompartment()]
            conc = self.concentration_units(s, place)
            dim = conc.dim
            if dim not in OTHER_UNITS:
                raise refuse(
                    "species",
                    sid,
                    f"its concentration is in {conc.text}: the solver's species are "
                    "concentrations (uM), surface densities (uM*um) or numbers (1)",
                )
            value = self.initial_concentration(s, place, conc)
            fixed = s.getConstant() or (s.getBoundaryCondition() and m.getRule(sid) is None)
            name = self.name_for(sid, f"the species {sid}")
            self.values[name] = value
            tree: ast.expr = ast.Name(name, ast.Load())
            if s.getHasOnlySubstanceUnits():  # the id stands for the amount
                tree = ast.BinOp(tree, ast.Mult(), self.size_name(place.sbml_id))
            self.names[sid] = tree
            if fixed or m.getAssignmentRule(sid) is not None:
                if fixed:
                    self.parts.parameters[name] = _with_unit(value, conc.text)
                    self.parts.comments[f"parameters.{name}"] = f"SBML species {sid}, held constant"
                continue
            table: dict[str, Any] = {"compartment": place.sbml_id}
            unit = OTHER_UNITS[dim]
            if dim != DEFAULT_DIM[place.kind]:
                table["unit"] = unit
            if s.isSetName() and s.getName() != sid:
                table["description"] = one_line(s.getName(), 80)
            table["initial"] = _with_unit(value, OTHER_UNITS[dim]) if value else 0
            extra = annotation.read(s, "species")
            if extra is not None:
                self.species_annotation(table, extra[0], value)
            self.parts.species[name] = table

    def species_annotation(
        self, table: dict[str, Any], extra: Mapping[str, str], value: float
    ) -> None:
        """What an exported model's annotation adds to a species' table."""
        for k in ("D", "description", "noise", "unit"):
            if k in extra:
                table[k] = _unquote(extra[k]) if k in ("D", "noise") else extra[k]
        if "initial" in extra:
            written = float(extra.get("at_origin", "nan"))
            if math.isclose(written, value, rel_tol=1e-12, abs_tol=1e-300):
                table["initial"] = _unquote(extra["initial"])
        elif "value" in extra and _close_to(extra["value"], value):
            table["initial"] = _unquote(extra["value"])
        if table.get("unit") == "":
            table.pop("unit")

    def concentration_units(self, s: Any, place: Place) -> Scaled:
        """Units of the species' concentration (amount per size of its compartment)."""
        sid = s.getId()
        substance = s.getSubstanceUnits() or self.model.getSubstanceUnits()
        amount = self.unit_of_id(substance, f"SBML species '{sid}'") if substance else None
        if amount is not None and amount.dim == DIMENSIONLESS:  # numbers, not amounts
            return Scaled(DIMENSIONLESS, amount.factor)
        derived = self.units(s, "species", sid)
        if derived is None:
            return Scaled(DEFAULT_DIM[place.kind])
        if not s.getHasOnlySubstanceUnits():
            return derived
        c = self.model.getCompartment(s.getCompartment())
        size = self.units(c, "compartment", c.getId()) or Scaled(
            VOLUME if place.kind is Kind.VOLUME else AREA
        )
        return derived / size

    def initial_concentration(self, s: Any, place: Place, conc: Scaled) -> float:
        """The initial concentration in solver units (0 when SBML sets none)."""
        if s.isSetInitialConcentration():
            return s.getInitialConcentration() * conc.factor
        if s.isSetInitialAmount():
            return s.getInitialAmount() * conc.factor * self.size_factor(place) / place.size
        return 0.0

    def size_factor(self, place: Place) -> float:
        """The factor of a compartment's size units to µm³ (µm²)."""
        c = self.model.getCompartment(place.sbml_id)
        unit = self.units(c, "compartment", place.sbml_id)
        return 1.0 if unit is None else unit.factor

    def size_name(self, sbml_id: str) -> ast.expr:
        """The parameter that holds an SBML compartment's size (made on first use)."""
        if sbml_id not in self.run_name:
            name = self.name_for(f"size_{sbml_id}", f"the size of compartment {sbml_id}")
            self.run_name[sbml_id] = name
            place = self.places[sbml_id]
            unit = "um^3" if place.kind is Kind.VOLUME else "um^2"
            self.parts.parameters[name] = f"{place.size!r} {unit}"
            self.parts.comments[f"parameters.{name}"] = f"size of the SBML compartment {sbml_id}"
            self.values[name] = place.size
        return ast.Name(self.run_name[sbml_id], ast.Load())

    # -- parameters ---------------------------------------------------------------
    def read_parameters(self) -> None:
        """Global parameters, in solver units; those set by rules come later."""
        m = self.model
        for i in range(m.getNumParameters()):
            p = m.getParameter(i)
            pid = p.getId()
            extra = annotation.read(p, "parameter")
            if extra is not None and pid in ("x", "y", "z") and extra[0].get("coordinate") == pid:
                self.names[pid] = ast.Name(pid, ast.Load())
                continue  # a position: the run file's own x, y, z
            name = self.name_for(pid, f"the parameter {pid}")
            self.names[pid] = ast.Name(name, ast.Load())
            if extra is not None and (
                extra[0].get("stimulus", extra[0].get("occupancy")) in self.stimuli
            ):
                self.stimulus_ids.add(pid)  # the stimulus of the run file's [stimulus]
                continue
            if m.getRule(pid) is not None:
                continue  # an assignment rule: a definition (rate rules are refused)
            unit = self.units(p, "parameter", pid)
            value = p.getValue() if p.isSetValue() else float("nan")
            self.parameter(name, pid, value, unit, extra[0] if extra else None)

    def parameter(
        self,
        name: str,
        pid: str,
        value: float,
        unit: Scaled | None,
        extra: Mapping[str, str] | None = None,
        local: bool = False,
    ) -> None:
        """A parameter's value (SBML units) into the run file's ``[parameters]``."""
        if not math.isfinite(value) and self.model.getInitialAssignment(pid) is None:
            raise refuse("parameter", pid, "has no value")
        if unit is None and not self.solver_units and (local or self.used(pid)):
            raise refuse(
                "parameter",
                pid,
                "has no units in a model whose units are not the solver's, so its value "
                "cannot be converted: declare its units",
            )
        if not math.isfinite(value):
            value = 0.0  # set by its initial assignment
        solver = value * (unit.factor if unit is not None else 1.0)
        self.values[name] = solver
        text = _with_unit(solver, unit.text if unit is not None else "")
        if extra and "value" in extra and _close_to(extra["value"], solver):
            text = _unquote(extra["value"])
        self.parts.parameters[name] = text

    def used(self, sbml_id: str) -> bool:
        """Whether any math of the model uses the id."""
        return uses(self.model, sbml_id)


def _reserved() -> frozenset[str]:
    from solver.config.values import RESERVED

    return RESERVED
