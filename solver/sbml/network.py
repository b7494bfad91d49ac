"""The reactions, rules and initial assignments of an SBML model, as run-file tables.

**Kinetic laws.** An SBML kinetic law is an amount per time: it already holds the size
of the compartment the reaction happens in (``k*A*cytosol``). A run file's rate is per
volume (µM/s) in a volume and per area (µM·µm/s) on a surface, so each law is divided
by the size of the compartment where the reaction is integrated (where its species
meet, :func:`solver.config.compartments.locate`): the compartment's id is taken out of
the law where it is a factor of every term (``k*A*cytosol`` → ``k*A``), and otherwise
the law is divided by the size parameter (``size_cytosol``). A species conversion
factor multiplies the rate; the species of one reaction must share it.

**Rules.** Assignment rules become ``[definitions]`` (in an order in which each uses
only those before it); a rate rule on a species becomes a reaction ``-> S`` of its
compartment; rate rules on parameters or compartments, assignment rules on
compartments and algebraic rules are refused.

**Initial assignments** of species become their ``initial`` expression when they use
parameters only, else the value they give at t = 0; those of parameters and
compartments are evaluated.
"""

from __future__ import annotations

import ast
import math
from typing import Any

from solver.config.compartments import locate
from solver.errors import InputError
from solver.model.expressions import ExpressionError, parse_expression
from solver.model.model import Kind, Species
from solver.sbml.mathml import simplify, strip_factor, text_of
from solver.sbml.reader import SbmlReader, refuse

MAX_STOICHIOMETRY = 999


def _names(tree: ast.expr) -> set[str]:
    """The values a tree uses (not its functions, ``pi`` or ``t``)."""
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}
    return names - {"pi", "t"}


def _divide(tree: ast.expr, by: ast.expr) -> ast.expr:
    return ast.BinOp(tree, ast.Div(), by)


def read_rules(r: SbmlReader) -> None:
    """Assignment rules as definitions, rate rules on species as reactions."""
    m = r.model
    pending: dict[str, ast.expr] = {}
    for i in range(m.getNumRules()):
        rule = m.getRule(i)
        if rule.isAlgebraic():
            raise refuse(
                "algebraic rule",
                rule.getMetaId() or rule.getIdAttribute() or f"#{i + 1}",
                "algebraic rules are not supported",
            )
        var = rule.getVariable()
        if var in r.stimulus_ids:
            continue  # an occupancy: the run file's stimulus gives it
        if m.getCompartment(var) is not None:
            raise refuse(
                "rate rule" if rule.isRate() else "assignment rule",
                var,
                "a compartment whose size changes is not supported",
            )
        species = m.getSpecies(var)
        if rule.isRate() and species is None:
            raise refuse(
                "rate rule",
                var,
                "a parameter that changes in time is not a field of the solver: make it a species",
            )
        tree = r.math(rule.getMath(), "rule", var)
        name = r.run_name[var]
        if species is not None and species.getHasOnlySubstanceUnits():
            tree = _divide(tree, r.size_name(species.getCompartment()))
        if rule.isRate():
            r.parts.reactions[f"{name}_rate_rule"] = {
                "equation": f"-> {name}",
                "rate": text_of(tree),
            }
            r.parts.comments[f"reactions.{name}_rate_rule"] = f"SBML rate rule of {var}"
            continue
        pending[name] = tree
    order: list[str] = []
    while pending:  # each definition uses only those before it
        ready = [n for n, t in pending.items() if not (_names(t) & set(pending) - {n})]
        if not ready:
            raise refuse(
                "assignment rule", next(iter(pending)), "the assignment rules form a cycle"
            )
        for name in ready:
            r.parts.definitions[name] = text_of(pending.pop(name))
            order.append(name)


def _evaluate(r: SbmlReader, tree: ast.expr, kind: str, sbml_id: str) -> float:
    """The value of math at t = 0 (definitions substituted), in solver units."""
    try:
        expr = parse_expression(text_of(tree), max_length=None)
        definitions = {
            n: parse_expression(t, max_length=None) for n, t in r.parts.definitions.items()
        }
        for _ in range(len(definitions) + 1):
            if not expr.names & definitions.keys():
                break
            expr = expr.substitute(definitions)
        value = expr.evaluate({**r.values, "t": 0.0, "x": 0.0, "y": 0.0, "z": 0.0})
    except (ExpressionError, KeyError) as err:
        raise refuse(kind, sbml_id, f"cannot evaluate its initial value: {err}") from None
    if not isinstance(value, float) or not math.isfinite(value):
        raise refuse(kind, sbml_id, "its initial value is not a finite number")
    return value


def read_initial_assignments(r: SbmlReader) -> None:
    """Initial assignments: of compartments and parameters (as their math needs), then species."""
    m = r.model
    todo = [m.getInitialAssignment(i) for i in range(m.getNumInitialAssignments())]
    trees = {a.getSymbol(): r.math(a.getMath(), "initial assignment", a.getSymbol()) for a in todo}
    first = {s: t for s, t in trees.items() if m.getSpecies(s) is None}
    names = {r.run_name.get(s, s): s for s in first}
    while first:
        ready = [s for s, t in first.items() if not _needs(t, names, s) & set(first)]
        if not ready:
            raise refuse(
                "initial assignment", next(iter(first)), "the initial assignments form a cycle"
            )
        for symbol in ready:
            _assign(r, symbol, first.pop(symbol))
    parameters = set(r.parts.parameters)
    for sid, tree in trees.items():
        s = m.getSpecies(sid)
        if s is None:
            continue
        if s.getHasOnlySubstanceUnits():
            tree = _divide(tree, r.size_name(s.getCompartment()))
        name = r.run_name[sid]
        value = _evaluate(r, tree, "initial assignment", sid)
        r.values[name] = value
        target = r.parts.species.get(name)
        if target is None:
            if name in r.parts.parameters:  # a constant species
                unit = str(r.parts.parameters[name]).partition(" ")[2]
                r.parts.parameters[name] = f"{value!r} {unit}".strip()
            continue
        if _names(tree) and _names(tree) <= parameters:
            target["initial"] = text_of(simplify(tree))
        else:
            target["initial"] = value


def _needs(tree: ast.expr, names: dict[str, str], symbol: str) -> set[str]:
    """The symbols of other initial assignments that ``tree`` uses."""
    return {names[n] for n in _names(tree) if n in names} - {symbol}


def _assign(r: SbmlReader, symbol: str, tree: ast.expr) -> None:
    """The initial value of a compartment's size or a parameter, evaluated."""
    m = r.model
    value = _evaluate(r, tree, "initial assignment", symbol)
    place = r.places.get(symbol)
    if place is not None:
        place.size = value
        name = r.run_name[symbol]
        unit = "um^3" if place.kind is Kind.VOLUME else "um^2"
    elif m.getParameter(symbol) is not None:
        name = r.run_name[symbol]
        found = r.units(m.getParameter(symbol), "parameter", symbol)
        unit = found.text if found is not None else ""
    else:
        raise refuse(
            "initial assignment", symbol, "sets neither a species, a compartment nor a parameter"
        )
    r.values[name] = value
    r.parts.parameters[name] = f"{value!r} {unit}" if unit and unit != "1" else value


def _stoichiometry(ref: Any, reaction_id: str) -> int:
    if ref.isSetId() and ref.getModel().getRule(ref.getId()) is not None:
        raise refuse(
            "reaction", reaction_id, "a stoichiometry that changes in time is not supported"
        )
    value = ref.getStoichiometry() if ref.isSetStoichiometry() else 1.0
    if not float(value).is_integer() or not 1 <= value <= MAX_STOICHIOMETRY:
        raise refuse(
            "reaction",
            reaction_id,
            f"stoichiometry {value:g} of {ref.getSpecies()}: the run file takes whole numbers "
            f"from 1 to {MAX_STOICHIOMETRY}",
        )
    return int(value)


def _side(terms: dict[str, int]) -> str:
    return " + ".join(n if k == 1 else f"{k} {n}" for n, k in terms.items())


def read_reactions(r: SbmlReader) -> None:
    """Reactions: equations of the species that change, rates per volume or area."""
    m = r.model
    species = {
        name: Species(
            name,
            r.places[m.getSpecies(sid).getCompartment()].name,
            0.0,
            0.0,
            kind=r.places[m.getSpecies(sid).getCompartment()].kind,
        )
        for sid, name in r.run_name.items()
        if m.getSpecies(sid) is not None and name in r.parts.species
    }
    compartments = r.parts.compartments or _default_compartments()
    for i in range(m.getNumReactions()):
        reaction = m.getReaction(i)
        rid = reaction.getId()
        if reaction.isSetFast() and reaction.getFast():
            raise refuse("reaction", rid, "fast reactions are not supported")
        law = reaction.getKineticLaw()
        if law is None or law.getMath() is None:
            raise refuse("reaction", rid, "has no kinetic law")
        local = {}
        for j in range(law.getNumLocalParameters()):
            p = law.getLocalParameter(j)
            name = r.name_for(f"{rid}_{p.getId()}", f"the local parameter {p.getId()} of {rid}")
            unit = r.units(p, "local parameter", p.getId())
            r.parameter(name, p.getId(), p.getValue(), unit, local=True)
            r.parts.comments[f"parameters.{name}"] = (
                f"local parameter {p.getId()} of reaction {rid}"
            )
            local[p.getId()] = ast.Name(name, ast.Load())
        sides: list[dict[str, int]] = [{}, {}]
        factors = set()
        for j, refs in enumerate((reaction.getListOfReactants(), reaction.getListOfProducts())):
            for ref in refs:
                s = m.getSpecies(ref.getSpecies())
                name = r.run_name[s.getId()]
                if name not in species:
                    continue  # constant or boundary: no reaction changes it
                sides[j][name] = sides[j].get(name, 0) + _stoichiometry(ref, rid)
                factor = s.getConversionFactor() or m.getConversionFactor()
                factors.add(factor)
        tree = r.math(law.getMath(), "reaction", rid, local)
        involved = set(sides[0]) | set(sides[1]) | (_names(tree) & set(species))
        if not involved:
            raise refuse("reaction", rid, "changes no species and its law uses none")
        where, on = _locate(rid, reaction, tree, involved, species, compartments, r)
        sbml_place = next(p for p in r.places.values() if p.name == where or p.sbml_id == where)
        size = r.size_name(sbml_place.sbml_id)
        rate = strip_factor(tree, r.run_name[sbml_place.sbml_id])
        rate = _divide(tree, size) if rate is None else rate
        if len(factors) > 1:
            raise refuse("reaction", rid, "its species have different conversion factors")
        factor = next(iter(factors), "")
        if factor:
            rate = ast.BinOp(r.names[factor], ast.Mult(), rate)
        table: dict[str, Any] = {
            "equation": f"{_side(sides[0])} -> {_side(sides[1])}".strip(),
            "rate": text_of(simplify(rate)),
        }
        if on:
            table["on"] = where
        r.parts.reactions[rid] = table
        if reaction.isSetName() and reaction.getName() != rid:
            r.parts.comments[f"reactions.{rid}"] = reaction.getName()


def _default_compartments() -> dict[str, Any]:
    from solver.model.model import DEFAULT_COMPARTMENTS

    return dict(DEFAULT_COMPARTMENTS)


def _locate(
    rid: str,
    reaction: Any,
    tree: ast.expr,
    involved: set[str],
    species: dict[str, Species],
    compartments: Any,
    r: SbmlReader,
) -> tuple[str, bool]:
    """Where the reaction is integrated, and whether the run file must say so (``on``).

    The species choose; the reaction's own compartment (an SBML attribute) chooses
    among the surfaces that fit, or puts a reaction of volume species on a surface.
    """
    key = f"reactions.{rid}"
    reads = bool(_names(tree) & {r.run_name[s] for s in r.stimulus_ids})
    on = None
    if reaction.isSetCompartment():
        place = r.places.get(reaction.getCompartment())
        if place is not None and place.kind is Kind.SURFACE and place.name in compartments:
            on = place.name
    try:
        found: str | None = locate(key, involved, species, compartments, None, reads)
    except InputError as err:
        found, first = None, err
    if on is None or on == found:
        if found is None:
            raise refuse("reaction", rid, first.message)
        return found, False
    try:
        return locate(key, involved, species, compartments, on, reads), True
    except InputError as err:
        if found is None:
            raise refuse("reaction", rid, err.message) from None
        return found, False
