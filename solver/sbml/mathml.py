"""MathML (libsbml's abstract syntax trees) and the run file's expression language.

:class:`Reader` reads an SBML math tree into a Python syntax tree of the expression
language (:mod:`solver.model.expressions`): ``+ - * / **``, ``exp log sqrt sin cos
tanh atan abs min max``, ``pi`` and ``t``. Functions the language lacks but can write
exactly are rewritten (``tan``, ``sinh``, ``cosh``, ``sec``, ``csc``, ``cot``,
``arcsin``, ``arccos``, logarithms of any base, roots of any degree); SBML function
definitions are expanded in place. What it cannot write — conditions (``piecewise``,
comparisons, logic), ``delay``, ``rateOf``, ``floor``, ``ceiling``, ``factorial`` and
the rest — raises :class:`MathError`, which the importer reports with the SBML id.

:func:`to_mathml` goes the other way, from the text of an expression of a run file.
"""

from __future__ import annotations

import ast
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["MathError", "Reader", "number", "simplify", "strip_factor", "text_of", "to_mathml"]


class MathError(ValueError):
    """Math that the expression language cannot hold; ``message`` is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def number(value: float) -> ast.expr:
    """A number as a syntax tree (a negative one as a unary minus)."""
    if not math.isfinite(value):
        raise MathError(f"the number {value} is not finite")
    if float(value).is_integer() and abs(value) < 2**53:
        value = int(value)
    node: ast.expr = ast.Constant(abs(value))
    return ast.UnaryOp(ast.USub(), node) if value < 0 else node


def _call(name: str, *args: ast.expr) -> ast.expr:
    return ast.Call(ast.Name(name, ast.Load()), list(args), [])


def _fold(op: ast.operator, items: list[ast.expr]) -> ast.expr:
    result = items[0]
    for item in items[1:]:
        result = ast.BinOp(result, op, item)
    return result


def _bin(a: ast.expr, op: ast.operator, b: ast.expr) -> ast.expr:
    return ast.BinOp(a, op, b)


@functools.lru_cache(maxsize=1)
def _tables() -> tuple[dict[int, str], dict[int, Callable[[ast.expr], ast.expr]], dict[int, str]]:
    import libsbml as L

    same = {
        L.AST_FUNCTION_EXP: "exp",
        L.AST_FUNCTION_LN: "log",
        L.AST_FUNCTION_SIN: "sin",
        L.AST_FUNCTION_COS: "cos",
        L.AST_FUNCTION_TANH: "tanh",
        L.AST_FUNCTION_ARCTAN: "atan",
        L.AST_FUNCTION_ABS: "abs",
    }
    one, two, half = ast.Constant(1), ast.Constant(2), ast.Constant(0.5)

    def ex(x: ast.expr, sign: int = 1) -> ast.expr:
        return _call("exp", x if sign > 0 else ast.UnaryOp(ast.USub(), x))

    rewritten: dict[int, Callable[[ast.expr], ast.expr]] = {
        L.AST_FUNCTION_TAN: lambda x: _bin(_call("sin", x), ast.Div(), _call("cos", x)),
        L.AST_FUNCTION_SEC: lambda x: _bin(one, ast.Div(), _call("cos", x)),
        L.AST_FUNCTION_CSC: lambda x: _bin(one, ast.Div(), _call("sin", x)),
        L.AST_FUNCTION_COT: lambda x: _bin(_call("cos", x), ast.Div(), _call("sin", x)),
        L.AST_FUNCTION_SINH: lambda x: _bin(_bin(ex(x), ast.Sub(), ex(x, -1)), ast.Div(), two),
        L.AST_FUNCTION_COSH: lambda x: _bin(_bin(ex(x), ast.Add(), ex(x, -1)), ast.Div(), two),
        L.AST_FUNCTION_ARCSIN: lambda x: _call(
            "atan", _bin(x, ast.Div(), _call("sqrt", _bin(one, ast.Sub(), _bin(x, ast.Pow(), two))))
        ),
        L.AST_FUNCTION_ARCCOS: lambda x: _bin(
            _bin(ast.Name("pi", ast.Load()), ast.Mult(), half),
            ast.Sub(),
            _call(
                "atan",
                _bin(x, ast.Div(), _call("sqrt", _bin(one, ast.Sub(), _bin(x, ast.Pow(), two)))),
            ),
        ),
    }
    refused = {
        L.AST_FUNCTION_PIECEWISE: "piecewise (a condition)",
        L.AST_FUNCTION_DELAY: "delay",
        L.AST_FUNCTION_RATE_OF: "rateOf",
        L.AST_FUNCTION_FLOOR: "floor",
        L.AST_FUNCTION_CEILING: "ceiling",
        L.AST_FUNCTION_FACTORIAL: "factorial",
        L.AST_FUNCTION_QUOTIENT: "quotient",
        L.AST_FUNCTION_REM: "rem",
        L.AST_CONSTANT_TRUE: "true",
        L.AST_CONSTANT_FALSE: "false",
    }
    return same, rewritten, refused


class Reader:
    """Reads math trees with the names of one model.

    Args:
        names: Each SBML id a tree may use -> its syntax tree in the run file (a name,
            or an expression such as ``S*size_c`` for an amount).
        functions: SBML function definitions by id: (argument names, body tree).
        time: The syntax tree of SBML's time (``t``, or ``t/60`` for minutes).
        avogadro: The value of Avogadro's constant in solver units.
        number_units: Factor of a number's ``sbml:units`` to solver units, by unit id.
    """

    def __init__(
        self,
        names: Mapping[str, ast.expr],
        functions: Mapping[str, tuple[list[str], Any]],
        time: ast.expr,
        avogadro: float,
        number_units: Callable[[str], float],
    ) -> None:
        self.names = dict(names)
        self.functions = functions
        self.time = time
        self.avogadro = avogadro
        self.number_units = number_units

    def read(
        self, node: Any, bound: Mapping[str, ast.expr] | None = None, depth: int = 0
    ) -> ast.expr:
        """The syntax tree of ``node``; ``bound`` maps a function's arguments."""
        import libsbml as L

        if node is None:
            raise MathError("no math")
        if depth > 200:
            raise MathError("math nested more than 200 levels deep")
        same, rewritten, refused = _tables()
        kind = node.getType()
        kids = [node.getChild(i) for i in range(node.getNumChildren())]

        def sub(child: Any) -> ast.expr:
            return self.read(child, bound, depth + 1)

        if kind in (L.AST_INTEGER, L.AST_REAL, L.AST_REAL_E, L.AST_RATIONAL):
            value = float(node.getValue()) if kind != L.AST_INTEGER else float(node.getInteger())
            if kind == L.AST_RATIONAL:
                value = node.getNumerator() / node.getDenominator()
            if node.isSetUnits():
                value *= self.number_units(node.getUnits())
            return number(value)
        if kind == L.AST_NAME:
            name = node.getName()
            if bound and name in bound:
                return bound[name]
            if name not in self.names:
                raise MathError(f"'{name}' is not a value the run file can hold")
            return self.names[name]
        if kind == L.AST_NAME_TIME:
            return self.time
        if kind == L.AST_NAME_AVOGADRO:
            return number(self.avogadro)
        if kind == L.AST_CONSTANT_PI:
            return ast.Name("pi", ast.Load())
        if kind == L.AST_CONSTANT_E:
            return _call("exp", ast.Constant(1))
        if kind == L.AST_PLUS:
            return _fold(ast.Add(), [sub(k) for k in kids]) if kids else ast.Constant(0)
        if kind == L.AST_TIMES:
            return _fold(ast.Mult(), [sub(k) for k in kids]) if kids else ast.Constant(1)
        if kind == L.AST_MINUS:
            if len(kids) == 1:
                return ast.UnaryOp(ast.USub(), sub(kids[0]))
            return _bin(sub(kids[0]), ast.Sub(), sub(kids[1]))
        if kind == L.AST_DIVIDE:
            return _bin(sub(kids[0]), ast.Div(), sub(kids[1]))
        if kind in (L.AST_POWER, L.AST_FUNCTION_POWER):
            return _bin(sub(kids[0]), ast.Pow(), sub(kids[1]))
        if kind == L.AST_FUNCTION_ROOT:
            if len(kids) == 1:
                return _call("sqrt", sub(kids[0]))
            degree, x = sub(kids[0]), sub(kids[1])
            if isinstance(degree, ast.Constant) and degree.value == 2:
                return _call("sqrt", x)
            return _bin(x, ast.Pow(), _bin(ast.Constant(1), ast.Div(), degree))
        if kind == L.AST_FUNCTION_LOG:
            base, x = (ast.Constant(10), sub(kids[0])) if len(kids) == 1 else map(sub, kids[:2])
            return _bin(_call("log", x), ast.Div(), _call("log", base))
        if kind in (L.AST_FUNCTION_MIN, L.AST_FUNCTION_MAX):
            name = "min" if kind == L.AST_FUNCTION_MIN else "max"
            if not kids:
                raise MathError(f"{name}() of nothing")
            return sub(kids[0]) if len(kids) == 1 else _call(name, *map(sub, kids))
        if kind in same:
            return _call(same[kind], sub(kids[0]))
        if kind in rewritten:
            return rewritten[kind](sub(kids[0]))
        if kind == L.AST_FUNCTION:
            return self._function(node.getName(), [sub(k) for k in kids], depth)
        if kind in refused:
            what = refused[kind]
        else:
            what = node.getName() or L.formulaToL3String(node) or f"math of type {kind}"
        raise MathError(f"'{what}' has no counterpart in the run file's expressions")

    def _function(self, name: str, args: list[ast.expr], depth: int) -> ast.expr:
        if name not in self.functions:
            raise MathError(f"call of an unknown function '{name}'")
        params, body = self.functions[name]
        if len(params) != len(args):
            raise MathError(f"function '{name}' takes {len(params)} arguments, got {len(args)}")
        # a function's body sees only its arguments (and time, constants)
        inner = Reader({}, self.functions, self.time, self.avogadro, self.number_units)
        return inner.read(body, dict(zip(params, args, strict=True)), depth + 1)


def text_of(tree: ast.expr) -> str:
    """The text of a syntax tree, as the run file writes it."""
    return ast.unparse(tree)


def _is_one(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value == 1


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def strip_factor(node: ast.expr, name: str) -> ast.expr | None:
    """``node`` divided by the name ``name``, if ``name`` is a factor of every term.

    ``c*k*A`` gives ``k*A``, ``c*(k1*A - k2*B)`` gives ``k1*A - k2*B``, ``(k*A*c)/(K + A)``
    gives ``k*A/(K + A)``; None when ``name`` is not a factor.
    """
    if _is_name(node, name):
        return ast.Constant(1)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = strip_factor(node.operand, name)
        return None if inner is None else ast.UnaryOp(ast.USub(), inner)
    if not isinstance(node, ast.BinOp):
        return None
    if isinstance(node.op, ast.Add | ast.Sub):
        left, right = strip_factor(node.left, name), strip_factor(node.right, name)
        return None if left is None or right is None else ast.BinOp(left, node.op, right)
    if isinstance(node.op, ast.Div):
        top = strip_factor(node.left, name)
        return None if top is None else ast.BinOp(top, ast.Div(), node.right)
    if isinstance(node.op, ast.Mult):
        left, right = node.left, node.right
        if _is_name(left, name):
            return right
        if _is_name(right, name):
            return left
        stripped = strip_factor(left, name)
        if stripped is not None:
            return right if _is_one(stripped) else ast.BinOp(stripped, ast.Mult(), right)
        stripped = strip_factor(right, name)
        if stripped is not None:
            return left if _is_one(stripped) else ast.BinOp(left, ast.Mult(), stripped)
    return None


def simplify(node: ast.expr) -> ast.expr:
    """``node`` without factors of 1 (``1*x``, ``x*1``, ``x/1``)."""
    if isinstance(node, ast.BinOp):
        left, right = simplify(node.left), simplify(node.right)

        def one(n: ast.expr) -> bool:
            return isinstance(n, ast.Constant) and n.value == 1

        if isinstance(node.op, ast.Mult) and one(left):
            return right
        if isinstance(node.op, ast.Mult | ast.Div) and one(right):
            return left
        return ast.BinOp(left, node.op, right)
    if isinstance(node, ast.UnaryOp):
        return ast.UnaryOp(node.op, simplify(node.operand))
    if isinstance(node, ast.Call):
        return ast.Call(node.func, [simplify(a) for a in node.args], [])
    return node


# -- export ---------------------------------------------------------------------------
def to_mathml(text: str, coordinates: bool = False) -> Any:
    """A libsbml math tree of the run-file expression ``text``.

    ``t`` is SBML's time. ``x, y, z`` have no counterpart in SBML core: with
    ``coordinates`` they are names (of parameters the caller declares), else they raise
    :class:`MathError`.
    """
    tree = ast.parse(text.strip(), mode="eval").body
    return _node(tree, coordinates)


def _node(tree: ast.expr, coordinates: bool) -> Any:
    import libsbml as L

    def make(kind: int, *children: Any) -> Any:
        node = L.ASTNode(kind)
        for child in children:
            node.addChild(child)
        return node

    if isinstance(tree, ast.Constant):
        value = tree.value
        if isinstance(value, int) and not isinstance(value, bool):
            node = L.ASTNode(L.AST_INTEGER)
            node.setValue(int(value))
            return node
        node = L.ASTNode(L.AST_REAL)
        node.setValue(float(value))  # type: ignore[arg-type]
        return node
    if isinstance(tree, ast.Name):
        if tree.id == "pi":
            return make(L.AST_CONSTANT_PI)
        if tree.id == "t":
            node = make(L.AST_NAME_TIME)
            node.setName("time")
            return node
        if tree.id in ("x", "y", "z") and not coordinates:
            raise MathError(f"'{tree.id}' (a position) has no counterpart in SBML core")
        node = make(L.AST_NAME)
        node.setName(tree.id)
        return node
    if isinstance(tree, ast.UnaryOp):
        operand = _node(tree.operand, coordinates)
        return operand if isinstance(tree.op, ast.UAdd) else make(L.AST_MINUS, operand)
    if isinstance(tree, ast.BinOp):
        kinds = {
            ast.Add: L.AST_PLUS,
            ast.Sub: L.AST_MINUS,
            ast.Mult: L.AST_TIMES,
            ast.Div: L.AST_DIVIDE,
            ast.Pow: L.AST_POWER,
        }
        return make(
            kinds[type(tree.op)], _node(tree.left, coordinates), _node(tree.right, coordinates)
        )
    assert isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name)
    args = [_node(a, coordinates) for a in tree.args]
    if tree.func.id == "sqrt":
        degree = L.ASTNode(L.AST_INTEGER)
        degree.setValue(2)
        return make(L.AST_FUNCTION_ROOT, degree, *args)
    functions = {
        "exp": L.AST_FUNCTION_EXP,
        "log": L.AST_FUNCTION_LN,
        "sin": L.AST_FUNCTION_SIN,
        "cos": L.AST_FUNCTION_COS,
        "tanh": L.AST_FUNCTION_TANH,
        "atan": L.AST_FUNCTION_ARCTAN,
        "abs": L.AST_FUNCTION_ABS,
        "min": L.AST_FUNCTION_MIN,
        "max": L.AST_FUNCTION_MAX,
    }
    return make(functions[tree.func.id], *args)
