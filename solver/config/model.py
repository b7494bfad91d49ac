"""The model tables of a run file, read into a :class:`~solver.model.model.Model`.

The tables are ``[parameters]``, ``[stimulus.NAME]`` (through
:mod:`solver.config.stimulus`), ``[species.NAME]``, ``[definitions]`` and
``[reactions.NAME]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from solver.config import units
from solver.config.compartments import locate, read_compartments, species_compartment
from solver.config.field import FieldTables
from solver.config.stimulus import StimulusTables
from solver.config.values import RESERVED, Values, shown
from solver.errors import InputError
from solver.model.dimensions import (
    DIMENSIONLESS,
    FREE,
    LENGTH,
    TIME,
    Dim,
    DimensionError,
    Kind,
    Value,
    check,
    dimension,
    unit_text,
)
from solver.model.expressions import Expression, ExpressionError
from solver.model.model import (
    COORDINATES,
    Compartment,
    Model,
    Reaction,
    Species,
    parse_equation,
)
from solver.model.model import (
    TIME as TIME_NAME,
)
from solver.model.names import NameClash, Names, normalise

_SPECIES_KEYS = ("compartment", "D", "initial", "noise", "unit", "description")
_REACTION_KEYS = ("equation", "rate", "on")
#: the units a species may declare (the solver's, so its numbers are never rescaled),
#: by what a value of them is
SPECIES_DIMENSIONS = {"uM": "concentration", "uM*um": "density", "1": "dimensionless"}
MAX_DESCRIPTION = 80  # characters of a species' description
CONCENTRATION = units.read_unit("uM")[0]


class ModelTables:
    """Readers of the model's tables, with the value readers ``v``."""

    def __init__(self, v: Values) -> None:
        self.v = v
        self.stimuli = StimulusTables(v)
        #: dimensions of the names of expressions (see :mod:`solver.model.dimensions`)
        self.dims: dict[str, Value] = {}
        #: the parameters given with a unit, as written
        self.given: dict[str, str] = {}
        #: the names with a declared unit each name depends on (parameters given with a
        #: unit, species with a ``unit`` key, definitions that use either)
        self.declared: dict[str, frozenset[str]] = {}

    def model(self, data: Mapping[str, Any], mesh: Mapping[str, Any]) -> Model:
        """The model of a run-file document ``data`` whose mesh table is ``mesh``.

        Names are read as expressions read them (NFKC, :mod:`solver.model.names`): a
        name that is, so read, a reserved name or a name taken before is refused.
        """
        names = Names({n: "reserved for expressions" for n in RESERVED})

        def take(section: str, name: str, what: str) -> str:
            normal = self.v.name(section, name)
            try:
                names.add(name, what)
            except NameClash as err:
                raise InputError(f"{section}.{name}", str(err)) from None
            return normal

        self.compartments = read_compartments(self.v, data.get("compartments"))
        parameters = {}
        self.dims = {c: Value.fixed(LENGTH) for c in COORDINATES}
        self.dims[TIME_NAME] = Value.fixed(TIME)
        self.given = {}
        for name, value in self.v.table("parameters", data.get("parameters", {})).items():
            normal = take("parameters", name, f"the parameter parameters.{name}")
            parameters[normal] = self.v.quantity(f"parameters.{name}", value, None)
            dim = units.dimension_of(value)
            self.dims[normal] = FREE if dim is None else Value.fixed(dim)
            if dim is not None:
                self.given[normal] = str(value).strip()
                self.declared[normal] = frozenset({normal})
        self.v.constants = dict(parameters)
        known = set(parameters) | RESERVED
        # solved stimuli become species and reactions of the model (solver.config.field)
        data, solved = FieldTables(self.v).expand(data, self.compartments, known)
        for name in solved:
            take("stimulus", name, f"the stimulus stimulus.{name}")
        stimuli = {}
        for name, table in self.v.table("stimulus", data.get("stimulus", {})).items():
            normal = take("stimulus", name, f"the stimulus stimulus.{name}")
            stimulus = self.stimuli.stimulus(
                normal, self.v.table(f"stimulus.{name}", table), known, mesh
            )
            for symbol in stimulus.symbols[1:]:  # the occupancy
                try:
                    names.add(symbol, f"the occupancy of stimulus.{name}")
                except NameClash as err:
                    raise InputError(f"stimulus.{name}.K_D", str(err)) from None
            stimuli[normal] = stimulus
            self.dims[normal] = self.stimulus_dimension(f"stimulus.{name}", stimulus)
            for symbol in stimulus.symbols[1:]:
                self.dims[symbol] = Value.fixed(DIMENSIONLESS)
        fields = {n for s in stimuli.values() for n in s.symbols}
        species_table = self.v.table("species", data["species"])
        if not species_table:
            raise InputError("species", "no species defined")
        species = {}
        for name, table in species_table.items():
            if name in solved:  # its name is taken by the stimulus it comes from
                normal = name
            else:
                normal = take("species", name, f"the species species.{name}")
            species[normal] = self.species(
                normal, self.v.table(f"species.{name}", table), known, key=f"species.{name}"
            )
            self.dims[normal] = Value.fixed(units.read_unit(species[normal].units)[0])
            if species[normal].unit:
                self.declared[normal] = frozenset({normal})
        known |= set(species) | fields
        definitions: dict[str, Expression] = {}
        for name, text in self.v.table("definitions", data.get("definitions", {})).items():
            normal = take("definitions", name, f"the definition definitions.{name}")
            key = f"definitions.{name}"
            expr = self.v.expression(key, text, known)
            definitions[normal] = self.expand(key, expr, definitions)
            self.declared[normal] = self.uses_declared(expr)
            if self.declared[normal]:
                try:
                    self.dims[normal] = dimension(expr, self.dims, self.v.constants)
                except DimensionError as err:
                    raise InputError(key, err.message) from None
            known.add(normal)
        reactions = {}
        for name, table in self.v.table("reactions", data.get("reactions", {})).items():
            reactions[name] = self.reaction(
                name,
                self.v.table(f"reactions.{name}", table),
                species,
                known,
                definitions,
                frozenset(fields),
            )
        return Model(
            species=species,
            reactions=reactions,
            parameters=parameters,
            fields=frozenset(fields),
            stimuli=stimuli,
            declared=self.compartments,
            solved={n: f.position for n, f in solved.items()},
        )

    def expand(
        self, key: str, expr: Expression, definitions: Mapping[str, Expression]
    ) -> Expression:
        """``expr`` with ``definitions`` substituted, within ``[limits] expanded_nodes``."""
        limits = self.v.limits
        try:
            expanded = expr.substitute(definitions, max_nodes=limits.expanded_nodes)
        except ExpressionError as err:
            message = err.message
            if "nodes once definitions" in message:
                message += "; raise [limits] expanded_nodes to allow more"
            raise InputError(key, f"{message} (in {shown(expr.text)})") from None
        self.v.fold(key, expanded)
        return expanded

    def species(
        self, name: str, table: Mapping[str, Any], known: set[str], key: str | None = None
    ) -> Species:
        """``[species.NAME]``: compartment, diffusivity, initial value and noise.

        ``name`` is the normalised name; ``key`` the table's key as written.
        """
        key = key or f"species.{name}"
        self.v.keys(key, table, _SPECIES_KEYS)
        where = species_compartment(
            f"{key}.compartment", table.get("compartment"), self.compartments
        )
        D = self.v.quantity(f"{key}.D", table.get("D", 0.0), "diffusivity")
        if D < 0:
            raise InputError(
                f"{key}.D", f"a diffusion coefficient cannot be negative, got {shown(table['D'])}"
            )
        unit = self.species_unit(key, table.get("unit"), where)
        description = self.description(f"{key}.description", table.get("description", ""))
        expect = SPECIES_DIMENSIONS[unit or Species(name, where.name, 0, 0, kind=where.kind).units]
        initial = table.get("initial", 0.0)
        noise = self.v.quantity(f"{key}.noise", table.get("noise", 0.0), "dimensionless")
        if not 0 <= noise < 1:
            raise InputError(f"{key}.noise", "expected a relative amplitude in [0, 1), e.g. '5 %'")
        return Species(
            name,
            where.name,
            D,
            self.v.value_or_expression(f"{key}.initial", initial, expect, known),
            noise,
            unit,
            description,
            where.kind,
        )

    def species_unit(self, key: str, value: Any, compartment: Compartment) -> str:
        """``[species.NAME] unit``: "" for the compartment's, else its solver spelling.

        The numbers of a species are never rescaled: its unit must be one of the
        solver's, a concentration (µM), a surface density (µM·µm) or a pure number.
        """
        if value is None:
            return ""
        key = f"{key}.unit"
        if not isinstance(value, str):
            raise InputError(
                key, f"expected a unit such as 'uM', 'uM*um' or '1', got {shown(value)}"
            )
        try:
            dim, text, size = units.read_unit(value)
        except units.UnitError as err:
            raise InputError(key, err.message) from None
        if text not in SPECIES_DIMENSIONS:
            raise InputError(
                key,
                f"'{value.strip()}' is in {text}; a species is a concentration (uM), "
                "a surface density (uM*um) or a dimensionless number (1)",
            )
        if not math.isclose(size, 1.0, rel_tol=1e-9):
            raise InputError(
                key,
                f"1 {value.strip()} = {size:.6g} {text}: a species' numbers are those the "
                f"solver computes with, never rescaled, so declare '{text}' and give values "
                f'in {value.strip()} where you enter them (initial = "... {value.strip()}")',
            )
        default = Species("", compartment.name, 0, 0, kind=compartment.kind).units
        return "" if text == default else text

    def description(self, key: str, value: Any) -> str:
        """``[species.NAME] description``: a few words on one line, e.g. "PIP3"."""
        if not isinstance(value, str):
            raise InputError(key, f"expected a few words such as 'PIP3', got {shown(value)}")
        text = " ".join(value.split())
        if len(text) > MAX_DESCRIPTION or not text.isprintable():
            raise InputError(
                key, f"expected a few words on one line (at most {MAX_DESCRIPTION} characters)"
            )
        return text

    def stimulus_dimension(self, key: str, stimulus: Any) -> Value:
        """A stimulus is a concentration (µM), an ``expression`` stimulus that of its expression."""
        if stimulus.expression is None:
            return Value.fixed(CONCENTRATION)
        if not self.uses_declared(stimulus.expression):
            return FREE
        try:
            value = dimension(stimulus.expression, self.dims, self.v.constants)
        except DimensionError as err:
            raise InputError(f"{key}.expression", err.message) from None
        return FREE if value.kind is not Kind.FIXED else value

    def reaction(
        self,
        name: str,
        table: Mapping[str, Any],
        species: Mapping[str, Species],
        known: set[str],
        definitions: Mapping[str, Expression] | None = None,
        fields: frozenset[str] = frozenset(),
    ) -> Reaction:
        """``[reactions.NAME]``: equation, rate, and where it is integrated."""
        key = f"reactions.{name}"
        self.v.keys(key, table, _REACTION_KEYS)
        for required in ("equation", "rate"):
            if required not in table:
                raise InputError(f"{key}.{required}", "missing")
        if not isinstance(table["equation"], str):
            raise InputError(f"{key}.equation", "expected a string such as 'A + B -> C'")
        reactants, products = parse_equation(table["equation"], f"{key}.equation")
        for s in (*reactants, *products):
            if s not in species:
                raise InputError(
                    f"{key}.equation", f"unknown species '{s}'; species are: {', '.join(species)}"
                )
        written = self.v.expression(f"{key}.rate", table["rate"], known)
        rate = self.expand(f"{key}.rate", written, definitions or {})
        involved = set(reactants) | set(products) | (set(rate.names) & set(species))
        on = table.get("on")
        if on is not None:
            on = normalise(on) if isinstance(on, str) else None
            if on not in self.compartments:
                names = ", ".join(f"'{c}'" for c in self.compartments)
                raise InputError(
                    f"{key}.on", f"expected a compartment ({names}), got {shown(table['on'])}"
                )
        location = locate(key, involved, species, self.compartments, on, bool(rate.names & fields))
        reaction = Reaction(name, reactants, products, rate, location)
        self.check_rate(key, reaction, written, species)
        return reaction

    def uses_declared(self, expr: Expression) -> frozenset[str]:
        """The names with a declared unit that ``expr`` uses, itself or through definitions."""
        return frozenset().union(*(self.declared.get(n, frozenset()) for n in expr.names))

    def check_rate(
        self, key: str, reaction: Reaction, written: Expression, species: Mapping[str, Species]
    ) -> None:
        """Refuse a rate whose dimension is not that of the change of its species.

        A reaction changes each of its species by its rate: a species of the compartment
        it is integrated over by (unit of the species)/s, a cytosol species that a
        membrane reaction changes through the membrane by (unit of the species)·µm/s.
        The species of one reaction must agree on that unit. The rate is checked when it
        uses a name with a declared unit (a parameter given with a unit, a species with a
        ``unit``, or a definition that uses one); a rate written in bare numbers and
        species of the compartments' units is in solver units and taken as written.
        """
        dims = self.dims
        names = reaction.stoichiometry or dict.fromkeys(reaction.species, 1)
        need: dict[str, Dim] = {}
        for n in names:
            s = species[n]
            dim = dims[n].dim if n in dims else units.read_unit(s.units)[0]
            flux = s.compartment != reaction.location
            need[n] = dim * LENGTH / TIME if flux else dim / TIME
        where = reaction.location
        expected = next(iter(need.values()))
        if any(d != expected for d in need.values()):
            shown_species = ", ".join(
                f"{n} ({species[n].units}, {species[n].compartment})" for n in need
            )
            wanted = " and ".join(sorted({unit_text(d) for d in need.values()}))
            raise InputError(
                f"{key}.equation",
                f"one rate cannot change {shown_species}: on the {where} they would need "
                f"rates in {wanted}; declare species units that agree",
            )
        changed = " and ".join(f"{n} ({species[n].units})" for n in need)
        if not self.uses_declared(written):
            return
        try:
            wrong = check(written, expected, dims, self.v.constants)
        except DimensionError as err:
            raise InputError(f"{key}.rate", err.message) from None
        if wrong is None:
            return
        term, term_units, used = wrong
        given = [f"{p} = '{self.given[p]}'" for p in sorted(used) if p in self.given]
        raise InputError(
            f"{key}.rate",
            f"{term} is in {term_units}, but a {where} reaction that changes {changed} has a "
            f"rate in {unit_text(expected)}" + (f" ({', '.join(given)})" if given else ""),
        )
