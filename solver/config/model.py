"""The model tables of a run file, read into a :class:`~solver.model.model.Model`.

The tables are ``[parameters]``, ``[stimulus.NAME]`` (through
:mod:`solver.config.stimulus`), ``[species.NAME]``, ``[definitions]`` and
``[reactions.NAME]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from solver.config.stimulus import StimulusTables
from solver.config.values import RESERVED, Values, shown
from solver.errors import InputError
from solver.model.expressions import Expression, ExpressionError
from solver.model.model import Compartment, Model, Reaction, Species, parse_equation
from solver.model.names import NameClash, Names

_SPECIES_KEYS = ("compartment", "D", "initial", "noise")
_REACTION_KEYS = ("equation", "rate", "on")


class ModelTables:
    """Readers of the model's tables, with the value readers ``v``."""

    def __init__(self, v: Values) -> None:
        self.v = v
        self.stimuli = StimulusTables(v)

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

        parameters = {}
        for name, value in self.v.table("parameters", data.get("parameters", {})).items():
            normal = take("parameters", name, f"the parameter parameters.{name}")
            parameters[normal] = self.v.quantity(f"parameters.{name}", value, None)
        self.v.constants = dict(parameters)
        known = set(parameters) | RESERVED
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
        fields = {n for s in stimuli.values() for n in s.symbols}
        species_table = self.v.table("species", data["species"])
        if not species_table:
            raise InputError("species", "no species defined")
        species = {}
        for name, table in species_table.items():
            normal = take("species", name, f"the species species.{name}")
            species[normal] = self.species(
                normal, self.v.table(f"species.{name}", table), known, key=f"species.{name}"
            )
        known |= set(species) | fields
        definitions: dict[str, Expression] = {}
        for name, text in self.v.table("definitions", data.get("definitions", {})).items():
            normal = take("definitions", name, f"the definition definitions.{name}")
            key = f"definitions.{name}"
            expr = self.v.expression(key, text, known)
            definitions[normal] = self.expand(key, expr, definitions)
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
        compartment = table.get("compartment")
        if not isinstance(compartment, str) or compartment not in tuple(Compartment):
            raise InputError(
                f"{key}.compartment",
                f"expected 'cytosol' or 'membrane', got {shown(compartment)}",
            )
        compartment = Compartment(compartment)
        D = self.v.quantity(f"{key}.D", table.get("D", 0.0), "diffusivity")
        if D < 0:
            raise InputError(
                f"{key}.D", f"a diffusion coefficient cannot be negative, got {shown(table['D'])}"
            )
        expect = "concentration" if compartment == Compartment.CYTOSOL else "density"
        initial = table.get("initial", 0.0)
        noise = self.v.quantity(f"{key}.noise", table.get("noise", 0.0), "dimensionless")
        if not 0 <= noise < 1:
            raise InputError(f"{key}.noise", "expected a relative amplitude in [0, 1), e.g. '5 %'")
        return Species(
            name,
            compartment,
            D,
            self.v.value_or_expression(f"{key}.initial", initial, expect, known),
            noise,
        )

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
        rate = self.expand(
            f"{key}.rate",
            self.v.expression(f"{key}.rate", table["rate"], known),
            definitions or {},
        )
        involved = set(reactants) | set(products) | (set(rate.names) & set(species))
        # stimuli are sampled on the membrane: a rate that reads one is a membrane reaction
        on_membrane = bool(rate.names & fields) or any(
            species[s].compartment == Compartment.MEMBRANE for s in involved
        )
        on = table.get("on")
        if on is not None and (not isinstance(on, str) or on not in tuple(Compartment)):
            raise InputError(f"{key}.on", f"expected 'membrane' or 'cytosol', got {shown(on)}")
        if on == Compartment.CYTOSOL and on_membrane:
            raise InputError(
                f"{key}.on",
                "a reaction involving membrane species is integrated "
                "on the membrane; it cannot be declared on the cytosol",
            )
        location = (
            Compartment.MEMBRANE
            if on_membrane or on == Compartment.MEMBRANE
            else Compartment.CYTOSOL
        )
        return Reaction(name, reactants, products, rate, location)
