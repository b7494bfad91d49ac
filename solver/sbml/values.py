"""Values of the run file written by the import: numbers, quantities, annotations' texts."""

from __future__ import annotations

import math
from typing import Any

from solver.model.expressions import ExpressionError, parse_expression


def uses(m: Any, sbml_id: str) -> bool:
    """Whether any math of the libsbml model ``m`` uses the id (local parameters aside)."""
    import libsbml

    maths = [m.getRule(i).getMath() for i in range(m.getNumRules())]
    maths += [m.getInitialAssignment(i).getMath() for i in range(m.getNumInitialAssignments())]
    for i in range(m.getNumReactions()):
        law = m.getReaction(i).getKineticLaw()
        if law is not None and law.getLocalParameter(sbml_id) is None:
            maths.append(law.getMath())
    while maths:
        node = maths.pop()
        if node is None:
            continue
        if node.getType() == libsbml.AST_NAME and node.getName() == sbml_id:
            return True
        maths.extend(node.getChild(i) for i in range(node.getNumChildren()))
    return False


def number_of(value: float) -> float | int:
    """An integral value as an int (``2``, not ``2.0``), else the float."""
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def with_unit(value: float, unit: str) -> str | float | int:
    """A value in solver units as the run file writes it: ``"0.5 1/s"``, or a bare number."""
    if not unit or unit == "1":
        return number_of(value)
    return f"{number_of(value)!r} {unit}"


def unquote(text: str) -> Any:
    """An annotation's attribute: a number when it reads as one, else the text."""
    try:
        number_value = float(text)
    except ValueError:
        return text
    return number_of(number_value) if "." not in text and "e" not in text.lower() else number_value


def close_to(text: str, value: float) -> bool:
    """Whether the run-file value ``text`` (a number or a quantity) is ``value``."""
    from solver.config import units

    try:
        written = units.to_solver_units(text)
    except units.UnitError:
        try:
            written = float(parse_expression(text).evaluate({}))
        except (ExpressionError, ValueError, TypeError):
            return False
    return math.isclose(written, value, rel_tol=1e-12, abs_tol=1e-300)
