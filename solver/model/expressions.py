"""A small, safe expression language for rate laws and initial conditions.

Run files give formulas as strings, e.g. ``"max(u, 0)**2 / (K**2 + u**2)"``.
They are parsed with :func:`ast.parse` and checked against a whitelist
(numbers, free names, ``+ - * / **``, unary ``+ -``, ``pi`` and calls of
:data:`FUNCTIONS`); nothing is ever passed to ``eval``.  Expressions carry no
units: symbols, literals and results are in solver units (µm, s, µM, µM·µm;
see :mod:`solver.config.units`).  One tree walker, parameterised by a backend, serves
both :meth:`Expression.to_ufl` and :meth:`Expression.evaluate`.
"""

from __future__ import annotations

import ast
import copy
import functools
import math
import numbers
import operator
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CONSTANTS", "FUNCTIONS", "Expression", "ExpressionError", "parse_expression"]

FUNCTIONS: frozenset[str] = frozenset("exp log sqrt sin cos tanh atan abs min max".split())
CONSTANTS: frozenset[str] = frozenset({"pi"})
MAX_LENGTH = 2000  # characters of text (default of parse_expression's max_length)
MAX_EXPONENT = 64  # largest |value| of an exponent without free names
MAX_DEPTH = 200  # deepest nesting of the syntax tree (keeps recursion bounded)

_UNARY_FUNCTIONS = FUNCTIONS - {"min", "max"}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
}
_BINARY |= {ast.Div: operator.truediv, ast.Pow: operator.pow}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_BAD_OPERATORS = {ast.BitXor: "^", ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@"}
_BAD_OPERATORS |= {ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|", ast.BitAnd: "&"}
_LITERAL_KINDS = {complex: "complex numbers ", str: "strings ", bytes: "strings "}
_BAD_NODES = {
    getattr(ast, kind): what
    for what, kinds in [
        ("attribute access is", "Attribute"),
        ("subscripts are", "Subscript Slice"),
        ("lambda expressions are", "Lambda"),
        ("comprehensions are", "ListComp SetComp DictComp GeneratorExp"),
        ("conditional expressions (a if b else c) are", "IfExp"),
        ("comparisons are", "Compare"),
        ("boolean operators (and/or) are", "BoolOp"),
        ("f-strings are", "JoinedStr"),
        ("assignment expressions (:=) are", "NamedExpr"),
        ("starred arguments are", "Starred"),
        ("lists, tuples, dicts and sets are", "List Tuple Dict Set"),
    ]
    for kind in kinds.split()
}


class ExpressionError(ValueError):
    """A rejected or unevaluable expression; ``column`` is 1-based, or ``None`` if unknown."""

    def __init__(self, message: str, text: str, column: int | None = None) -> None:
        super().__init__(message, text, column)
        self.message, self.text, self.column = message, text, column

    def __str__(self) -> str:
        shown = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        where = "in" if self.column is None else f"column {self.column} of"
        return f'{self.message} ({where} "{shown}")'


@dataclass(frozen=True)
class _Source:
    """The text, the single line actually parsed, and how far that line is indented."""

    text: str
    line: str
    lead: int

    def col(self, node: ast.AST, byte_offset: int | None = None) -> int | None:
        off = getattr(node, "col_offset", None) if byte_offset is None else byte_offset
        if off is None:
            return None
        return self.column(off)

    def column(self, byte_offset: int) -> int:
        """The 1-based column of a UTF-8 byte offset into the line, in the whole text."""
        # ast offsets count UTF-8 bytes; columns count characters
        return (
            self.lead + len(self.line.encode("utf-8")[:byte_offset].decode("utf-8", "replace")) + 1
        )

    def piece(self, node: ast.AST) -> str:
        s = ast.get_source_segment(self.line, node) or ast.unparse(node)
        return s if len(s) <= 40 else s[:37] + "..."

    def error(self, message: str, node: ast.AST | None = None) -> ExpressionError:
        return ExpressionError(message, self.text, None if node is None else self.col(node))


@dataclass(frozen=True)
class _Backend:
    """How the walker turns each construct into a value."""

    number: Callable[[Any], Any]
    symbol: Callable[[Any], Any]
    binary: Mapping[type[ast.operator], Callable[[Any, Any], Any]]
    unary: Mapping[type[ast.unaryop], Callable[[Any], Any]]
    functions: Mapping[str, Callable[..., Any]]  # min/max take two arguments; the walker folds
    pi: Any


def _walk(node: ast.AST, b: _Backend, values: Mapping[str, Any], src: _Source) -> Any:
    """Evaluate a validated tree with backend ``b``; ``values`` maps every free name."""
    if isinstance(node, ast.Constant):
        return b.number(node.value)
    if isinstance(node, ast.Name):
        return b.pi if node.id in CONSTANTS else _apply(src, node, b.symbol, values[node.id])
    if isinstance(node, ast.BinOp):
        left, right = _walk(node.left, b, values, src), _walk(node.right, b, values, src)
        return _apply(src, node, b.binary[type(node.op)], left, right)
    if isinstance(node, ast.UnaryOp):
        return _apply(src, node, b.unary[type(node.op)], _walk(node.operand, b, values, src))
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    fn, args = b.functions[node.func.id], [_walk(a, b, values, src) for a in node.args]
    result = _apply(src, node, fn, *args[:2])
    for extra in args[2:]:  # n-ary min/max, folded pairwise
        result = _apply(src, node, fn, result, extra)
    return result


def _apply(src: _Source, node: ast.AST, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except (ArithmeticError, ValueError, TypeError) as exc:
        raise src.error(f"cannot evaluate '{src.piece(node)}': {exc}", node) from exc


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _fold(exact: Callable[..., Any], symbolic: Callable[..., Any]) -> Callable[..., Any]:
    """Use ``exact`` on python floats when every argument is a number, else ``symbolic``."""

    def apply(*args: Any) -> Any:
        if not all(_is_number(a) for a in args):
            return symbolic(*args)
        r = exact(*(float(a) for a in args))
        if isinstance(r, complex) or not math.isfinite(r):
            raise ArithmeticError("the result is not a finite real number")
        return float(r)

    return apply


@functools.lru_cache(maxsize=1)
def _ufl_backend() -> _Backend:
    import ufl  # lazy: only callers that build forms need UFL

    exact = {n: getattr(math, n) for n in _UNARY_FUNCTIONS - {"abs"}}
    exact |= {"abs": abs, "min": min, "max": max}
    symbolic = {n: getattr(ufl, n) for n in _UNARY_FUNCTIONS - {"log", "abs"}}
    symbolic |= {"log": ufl.ln, "abs": abs, "min": ufl.min_value, "max": ufl.max_value}
    return _Backend(
        number=lambda v: v,  # int literals stay int: UFL sees x**2, not x**2.0
        symbol=lambda v: float(v) if _is_number(v) else v,
        binary={k: _fold(op, op) for k, op in _BINARY.items()},
        unary={k: _fold(op, op) for k, op in _UNARY.items()},
        functions={n: _fold(exact[n], symbolic[n]) for n in FUNCTIONS},
        pi=math.pi,
    )


# np.float64 literals and array symbols make the python operators follow numpy semantics.
_NUMPY = _Backend(
    number=np.float64,
    symbol=lambda v: np.asarray(v, dtype=np.float64),
    binary=_BINARY,
    unary=_UNARY,
    functions={n: getattr(np, n) for n in _UNARY_FUNCTIONS}
    | {"min": np.minimum, "max": np.maximum},
    pi=math.pi,
)


def _nfkc(name: str) -> str:  # Python normalises identifiers, e.g. micro sign µ -> Greek mu μ
    return unicodedata.normalize("NFKC", name)


@dataclass(frozen=True)
class Expression:
    """A validated, unit-free expression; build it with :func:`parse_expression`.

    ``names`` holds the free symbols (not function names, not ``pi``).  Values
    given for them must be in solver units (µm, s, µM, µM·µm); so is the result.
    """

    text: str
    names: frozenset[str]
    _tree: ast.Expression = field(repr=False, compare=False)
    _src: _Source = field(repr=False, compare=False)
    _uses: tuple[tuple[str, int], ...] = field(repr=False, compare=False)  # (name, column)
    #: nodes of the syntax tree (numbers, names, operations and calls)
    size: int = field(default=1, compare=False)

    def is_constant(self) -> bool:
        """True when the expression has no free names."""
        return not self.names

    def undefined(self, known: Iterable[str]) -> list[tuple[str, int]]:
        """``(name, column)`` of the first use of each name not in ``known``, in text order."""
        have = {_nfkc(k) for k in known}
        seen: dict[str, int] = {}
        for name, col in self._uses:
            if name not in have:
                seen.setdefault(name, col)
        return list(seen.items())

    def _values(self, symbols: Mapping[str, Any]) -> dict[str, Any]:
        values = {_nfkc(k): v for k, v in symbols.items()}
        for name, col in self.undefined(values)[:1]:
            raise ExpressionError(f"undefined name '{name}'", self.text, col)
        return values

    def to_ufl(self, symbols: Mapping[str, Any]) -> Any:
        """Translate to UFL; ``symbols`` maps every name to a UFL expression, Constant or float.

        Numeric parts are folded with :mod:`math`, so a purely numeric expression gives
        a ``float``; folding errors (``log(0)``, ``1/0``) raise ExpressionError.
        """
        result = _walk(self._tree.body, _ufl_backend(), self._values(symbols), self._src)
        return float(result) if _is_number(result) else result

    def evaluate(self, symbols: Mapping[str, Any]) -> float | np.ndarray:
        """Evaluate with numpy; values are floats or arrays (solver units), broadcast together.

        Returns a float for a scalar result, else an ndarray; ``1/0`` gives ``inf``.
        """
        result = _walk(self._tree.body, _NUMPY, self._values(symbols), self._src)
        return float(result) if np.ndim(result) == 0 else result

    def substitute(
        self, values: Mapping[str, Expression | float], max_nodes: int | None = None
    ) -> Expression:
        """Replace names by expressions or finite numbers; the result is parsed again.

        The new text comes from :func:`ast.unparse`, so it is re-spaced and parenthesised.
        With ``max_nodes``, a result of more nodes is refused (ExpressionError) before it
        is built: definitions that use each other several times grow exponentially.
        """
        values = {_nfkc(k): v for k, v in values.items()}
        if not self.names & values.keys():
            return self
        if max_nodes is not None:
            grown = self.size + sum(
                _size_of(values[name]) - 1 for name, _ in self._uses if name in values
            )
            if grown > max_nodes:
                raise ExpressionError(
                    f"expands to {grown} nodes once definitions are substituted "
                    f"(limit {max_nodes})",
                    self.text,
                )

        def node_for(v: Expression | float) -> ast.expr:
            if isinstance(v, Expression):
                return copy.deepcopy(v._tree.body)
            if not _is_number(v) or not math.isfinite(v):
                raise TypeError(f"cannot substitute {v!r}: need an Expression or a finite number")
            num = int(v) if isinstance(v, numbers.Integral) else float(v)
            return ast.Constant(num) if num >= 0 else ast.UnaryOp(ast.USub(), ast.Constant(-num))

        class _Sub(ast.NodeTransformer):
            def visit_Name(self, node: ast.Name) -> ast.expr:
                return node_for(values[node.id]) if node.id in values else node

        text = ast.unparse(_Sub().visit(copy.deepcopy(self._tree)))
        return parse_expression(text, max_length=None)

    def check_constants(self, values: Mapping[str, float] | None = None) -> None:
        """Fold every constant subexpression; refuse one that is not a finite real number.

        A subexpression is constant when it uses only numbers, ``pi`` and the names of
        ``values`` (parameters, in solver units). ``1/0``, ``exp(1000)``, ``log(0)``,
        ``sqrt(-1)`` and a division by a constant zero (``x/0``) raise ExpressionError
        naming the subexpression and its column.
        """
        known = {_nfkc(k): float(v) for k, v in (values or {}).items()}
        _fold_constants(self._tree.body, known, self._src)


def _size_of(value: Expression | float) -> int:
    return value.size if isinstance(value, Expression) else 2  # -v is two nodes


_EXACT: dict[str, Callable[..., Any]] = {n: getattr(math, n) for n in _UNARY_FUNCTIONS - {"abs"}}
_EXACT |= {"abs": abs, "min": min, "max": max}


def _fold_constants(node: ast.AST, values: Mapping[str, float], src: _Source) -> float | None:
    """The value of ``node`` if it is constant (None if not); raises on a bad constant."""

    def apply(fn: Callable[..., Any], *args: float) -> float:
        named = any(isinstance(n, ast.Name) and n.id in values for n in ast.walk(node))
        try:
            r = fn(*args)
            if isinstance(r, complex) or not math.isfinite(r):
                raise ArithmeticError("the result is not a finite real number")
        except (ArithmeticError, ValueError, TypeError) as exc:
            given = " with the parameters' values" if named else ""
            raise src.error(f"cannot evaluate '{src.piece(node)}'{given}: {exc}", node) from None
        return float(r)

    if isinstance(node, ast.Constant):
        assert _is_number(node.value)  # checked by _validate
        return float(node.value)  # type: ignore[arg-type]
    if isinstance(node, ast.Name):
        return math.pi if node.id in CONSTANTS else values.get(node.id)
    if isinstance(node, ast.BinOp):
        left = _fold_constants(node.left, values, src)
        right = _fold_constants(node.right, values, src)
        if isinstance(node.op, ast.Div) and right == 0:
            named = any(isinstance(n, ast.Name) and n.id in values for n in ast.walk(node.right))
            given = " (a parameter's value is 0)" if named else ""
            raise src.error(f"division by zero: '{src.piece(node)}'{given}", node)
        if left is None or right is None:
            return None
        return apply(_BINARY[type(node.op)], left, right)
    if isinstance(node, ast.UnaryOp):
        operand = _fold_constants(node.operand, values, src)
        return None if operand is None else apply(_UNARY[type(node.op)], operand)
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    args = [_fold_constants(a, values, src) for a in node.args]
    if any(a is None for a in args):
        return None
    fn = _EXACT[node.func.id]
    result = apply(fn, *args[:2])  # type: ignore[arg-type]
    for extra in args[2:]:
        result = apply(fn, result, extra)  # type: ignore[arg-type]
    return result


def _validate(node: ast.AST, src: _Source, uses: list[tuple[str, int]], depth: int = 0) -> bool:
    """Check ``node`` against the whitelist; returns True if it has no free names."""
    if depth > MAX_DEPTH:
        raise src.error(f"expression is nested too deeply (more than {MAX_DEPTH} levels)", node)
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, (bool, complex)) or not isinstance(v, (int, float)):
            kind = _LITERAL_KINDS.get(type(v), "")
            raise src.error(f"{kind}'{src.piece(node)}' not allowed; only real numbers are", node)
        if abs(v) > sys.float_info.max or not math.isfinite(v):  # exact for huge int literals
            raise src.error(f"non-finite number: '{src.piece(node)}'", node)
        return True
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise src.error(f"names starting with '_' are not allowed: '{node.id}'", node)
        if node.id in FUNCTIONS:
            raise src.error(f"'{node.id}' is a function; call it as {node.id}(...)", node)
        if node.id not in CONSTANTS:
            uses.append((node.id, src.column(node.col_offset)))
        return node.id in CONSTANTS
    if isinstance(node, ast.BinOp):
        if type(node.op) in _BAD_OPERATORS:
            symbol = _BAD_OPERATORS[type(node.op)]
            message = f"'{symbol}' is not allowed" + (" (use ** for powers)" * (symbol == "^"))
            left_end = node.left.end_col_offset
            assert left_end is not None  # set on every node of ast.parse
            gap = src.line.encode("utf-8")[left_end : node.right.col_offset]
            at = gap.find(symbol.encode())
            column = src.col(node, left_end + at) if at >= 0 else src.col(node)
            raise ExpressionError(message, src.text, column)
        left = _validate(node.left, src, uses, depth + 1)
        right = _validate(node.right, src, uses, depth + 1)
        if isinstance(node.op, ast.Pow) and right:
            _check_exponent(node.right, src)
        return left and right
    if isinstance(node, ast.UnaryOp):
        if type(node.op) not in _UNARY:
            symbol = "not" if isinstance(node.op, ast.Not) else "~"
            raise src.error(f"'{symbol}' is not allowed: '{src.piece(node)}'", node)
        return _validate(node.operand, src, uses, depth + 1)
    if isinstance(node, ast.Call):
        return _validate_call(node, src, uses, depth)
    what = _BAD_NODES.get(type(node), f"'{type(node).__name__}' expressions are")
    raise src.error(f"{what} not allowed: '{src.piece(node)}'", node)


def _validate_call(node: ast.Call, src: _Source, uses: list[tuple[str, int]], depth: int) -> bool:
    func, allowed = node.func, ", ".join(sorted(FUNCTIONS))
    if isinstance(func, ast.Attribute):
        _validate(func, src, uses, depth + 1)  # raises: attribute access
    if not isinstance(func, ast.Name):
        raise src.error(f"only {allowed} can be called, not '{src.piece(func)}'", func)
    if func.id in CONSTANTS:
        raise src.error(f"'{func.id}' is a constant, not a function", func)
    if func.id not in FUNCTIONS:
        raise src.error(f"call of '{func.id}' is not allowed (allowed functions: {allowed})", func)
    for kw in node.keywords:
        shown = f"**{src.piece(kw.value)}" if kw.arg is None else src.piece(kw)
        raise src.error(f"keyword arguments are not allowed: '{shown}'", kw)
    for arg in node.args:
        if isinstance(arg, ast.Starred):
            raise src.error(f"starred arguments are not allowed: '{src.piece(arg)}'", arg)
    constant = all([_validate(a, src, uses, depth + 1) for a in node.args])
    n, unary = len(node.args), func.id in _UNARY_FUNCTIONS
    if (unary and n != 1) or (not unary and n < 2):
        wanted = "exactly 1 argument" if unary else "at least 2 arguments"
        raise src.error(f"{func.id}() takes {wanted}, got {n}", node)
    return constant


def _check_exponent(node: ast.AST, src: _Source) -> None:
    """An exponent without free names must be finite and at most MAX_EXPONENT in size."""
    with np.errstate(all="ignore"):
        value = _walk(node, _NUMPY, {}, src)
    if not np.isfinite(value):
        raise src.error(f"exponent is not a finite number: '{src.piece(node)}'", node)
    if abs(value) > MAX_EXPONENT:
        raise src.error(f"exponent too large: '{src.piece(node)}' (limit {MAX_EXPONENT})", node)


def parse_expression(
    text: str | float, *, max_length: int | None = MAX_LENGTH, max_nodes: int | None = None
) -> Expression:
    """Parse and validate ``text`` (unit-free, solver units); raises ExpressionError.

    A finite int or float is accepted as its decimal text.  Line breaks and
    tabs count as spaces, so multi-line TOML strings work. ``max_length``
    (characters) and ``max_nodes`` (of the syntax tree) bound the text; None: no bound.
    """
    if _is_number(text):
        if not math.isfinite(float(text)):
            raise ExpressionError("non-finite number", repr(text))
        text = str(int(text)) if isinstance(text, numbers.Integral) else repr(float(text))
    if not isinstance(text, str):
        raise ExpressionError(f"expected a string, got {type(text).__name__}", repr(text))
    if max_length is not None and len(text) > max_length:
        raise ExpressionError(f"expression too long ({len(text)} > {max_length} chars)", text)
    flat = text.translate({ord(c): " " for c in "\r\n\t\f\v"})  # same length: columns match
    line = flat.lstrip(" ")
    if not line.strip():
        raise ExpressionError("empty expression", text)
    src = _Source(text, line, len(flat) - len(line))
    try:
        tree = ast.parse(line, mode="eval")
    except SyntaxError as exc:
        column = None if exc.offset is None else src.lead + exc.offset
        raise ExpressionError(f"syntax error: {exc.msg}", text, column) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"cannot parse: {exc or type(exc).__name__}", text) from None
    size = sum(isinstance(n, ast.expr) for n in ast.walk(tree.body))
    if max_nodes is not None and size > max_nodes:
        raise ExpressionError(f"expression too large ({size} > {max_nodes} nodes)", text)
    uses: list[tuple[str, int]] = []
    _validate(tree.body, src, uses)
    uses.sort(key=lambda use: use[1])
    return Expression(text, frozenset(name for name, _ in uses), tree, src, tuple(uses), size)
