"""Tests for solver.model.expressions: whitelist, names, numpy and UFL backends."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from solver.model.expressions import (
    CONSTANTS,
    FUNCTIONS,
    Expression,
    ExpressionError,
    parse_expression,
)


def test_public_sets() -> None:
    assert FUNCTIONS == {"exp", "log", "sqrt", "sin", "cos", "tanh", "atan", "abs", "min", "max"}
    assert CONSTANTS == {"pi"}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("k_pi3k * PI3K * PIP2", {"k_pi3k", "PI3K", "PIP2"}),
        ("1 + 0.5*x", {"x"}),
        ("c/(c + K_D)", {"c", "K_D"}),
        ("max(u, 0)**2 / (K**2 + u**2)", {"u", "K"}),
        ("exp(-t/tau) * sin(pi*x) + min(a, b, c)", {"t", "tau", "x", "a", "b", "c"}),
        ("2*pi", set()),
        ("-3.5e-2", set()),
        ("  a +\n  b", {"a", "b"}),  # leading blanks and TOML multi-line strings
    ],
)
def test_names(text: str, names: set[str]) -> None:
    e = parse_expression(text)
    assert isinstance(e, Expression)
    assert e.text == text and e.names == frozenset(names)
    assert e.is_constant() == (not names)


def test_undefined_reports_first_use_in_text_order() -> None:
    e = parse_expression("a + k_pi3 * b + k_pi3")
    assert e.undefined(["a", "b"]) == [("k_pi3", 5)]
    assert e.undefined([]) == [("a", 1), ("k_pi3", 5), ("b", 13)]
    assert e.undefined(["a", "b", "k_pi3"]) == []


def _reject(text: str, *fragments: str, column: int | None) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    err = info.value
    for fragment in fragments:
        assert fragment in err.message, (fragment, err.message)
    assert err.column == column, str(err)
    assert err.text == text
    if column is not None:
        assert f"column {column} of" in str(err)
    return err


def test_error_format() -> None:
    err = _reject("os.system('x')", "attribute access", "'os.system'", column=1)
    assert str(err) == (
        "attribute access is not allowed: 'os.system' (column 1 of \"os.system('x')\")"
    )
    assert pickle.loads(pickle.dumps(err)).column == 1
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    ("text", "fragments", "column"),
    [
        ("1 + os.system('x')", ("attribute access", "os.system"), 5),
        ("x.real", ("attribute access",), 1),
        ("__import__('os').system('true')", ("attribute access", "system"), 1),
        ("__import__('os')", ("call of '__import__'", "not allowed"), 1),
        ("2 * eval('1')", ("call of 'eval'",), 5),
        ("foo(x)", ("call of 'foo'",), 1),
        ("(lambda: 1)()", ("lambda",), 2),
        ("(1)(2)", ("can be called",), 2),
        ("x[0]", ("subscripts",), 1),
        ("1 + (lambda y: y)", ("lambda",), 6),
        ("[i for i in x]", ("comprehensions",), 1),
        ("sum(i for i in x)", ("call of 'sum'",), 1),
        ("max(i for i in x)", ("comprehensions",), 4),  # the generator owns the parentheses
        ("a if b else c", ("conditional",), 1),
        ("1 + (a < b)", ("comparisons",), 6),
        ("a and b", ("boolean operators",), 1),
        ("not a", ("'not'",), 1),
        ("~a", ("'~'",), 1),
        ("exp(x=1)", ("keyword arguments", "x=1"), 5),
        ("max(a, **k)", ("keyword arguments", "**k"), 8),
        ("max(*xs)", ("starred arguments", "*xs"), 5),
        ('f"{x}"', ("f-strings",), 1),
        ("(y := 2)", ("assignment expressions",), 2),
        ("x ^ 2", ("'^'", "use ** for powers"), 3),
        ("(a) ^ b", ("'^'",), 5),
        ("µ ^ 2", ("'^'",), 3),  # columns count characters, not UTF-8 bytes
        ("x // 2", ("'//'",), 3),
        ("x % 2", ("'%'",), 3),
        ("a @ b", ("'@'",), 3),
        ("a | b", ("'|'",), 3),
        ("__class__", ("names starting with '_'", "__class__"), 1),
        ("1 + _x", ("names starting with '_'",), 5),
        ("2**1000", ("exponent too large", "1000"), 4),
        ("10**10**10", ("exponent too large",), 5),
        ("x ** -(3*30)", ("exponent too large",), 6),
        ("x**(2**10)", ("exponent too large",), 5),
        ("2**log(-1)", ("exponent is not a finite number",), 4),
        ("1e999", ("non-finite number",), 1),
        ("x + 1" + "0" * 400, ("non-finite number",), 5),
        ("True", ("'True'", "only real numbers"), 1),
        ("None", ("'None'",), 1),
        ("x + 1j", ("complex numbers", "1j"), 5),
        ("'abc'", ("strings",), 1),
        ("b'abc'", ("strings",), 1),
        ("...", ("only real numbers",), 1),
        ("1, 2", ("tuples",), 1),
        ("[1]", ("lists",), 1),
        ("exp(1, 2)", ("exp() takes exactly 1 argument, got 2",), 1),
        ("x + sqrt()", ("sqrt() takes exactly 1 argument, got 0",), 5),
        ("max(1)", ("max() takes at least 2 arguments, got 1",), 1),
        ("exp + 1", ("'exp' is a function",), 1),
        ("pi(2)", ("'pi' is a constant",), 1),
        ("1 +* um", ("syntax error",), 4),
        ("  x +", ("syntax error",), None),
        ("x y", ("syntax error",), None),
        ("-" * 300 + "1", ("nested too deeply",), 202),
    ],
)
def test_rejected(text: str, fragments: tuple[str, ...], column: int | None) -> None:
    if column is None:  # syntax errors: only check that a column is reported
        with pytest.raises(ExpressionError) as info:
            parse_expression(text)
        assert info.value.column is not None
        for fragment in fragments:
            assert fragment in info.value.message
    else:
        _reject(text, *fragments, column=column)


def test_rejected_without_column() -> None:
    _reject("", "empty expression", column=None)
    _reject(" \n\t ", "empty expression", column=None)
    _reject("x" * 2001, "too long", column=None)
    _reject("x\x00", "null bytes", column=None)
    assert len(parse_expression("+".join(["x"] * 150)).names) == 1  # long sums are fine


def test_numbers_as_input() -> None:
    assert parse_expression(0.5).evaluate({}) == 0.5
    assert parse_expression(-2).evaluate({}) == -2.0
    assert parse_expression(np.float64(0.25)).text == "0.25"
    with pytest.raises(ExpressionError, match="non-finite"):
        parse_expression(float("inf"))
    with pytest.raises(ExpressionError, match="expected a string"):
        parse_expression(None)  # type: ignore[arg-type]


def test_evaluate_numpy_broadcast() -> None:
    e = parse_expression("max(u, 0)**2 / (K**2 + u**2)")
    u = np.array([-1.0, 0.0, 1.0, 2.0])
    np.testing.assert_allclose(e.evaluate({"u": u, "K": 1.0}), [0.0, 0.0, 0.5, 0.8])
    value = parse_expression("exp(0) + log(1) + sqrt(4) + abs(-1) + min(3, 1, 2) + pi").evaluate({})
    assert isinstance(value, float) and value == pytest.approx(5.0 + math.pi)
    grid = parse_expression("x * y").evaluate({"x": np.arange(3)[:, None], "y": np.arange(2)})
    assert grid.shape == (3, 2)


def test_undefined_name_error() -> None:
    e = parse_expression("a + k_pi3 * b")
    for method in (e.evaluate, e.to_ufl):
        with pytest.raises(ExpressionError) as info:
            method({"a": 1.0, "b": 2.0})
        assert info.value.message == "undefined name 'k_pi3'" and info.value.column == 5


def test_to_ufl_pure_number_is_float() -> None:
    value = parse_expression("2**3 + exp(0) - pi").to_ufl({})
    assert isinstance(value, float) and value == pytest.approx(9 - math.pi)
    assert parse_expression("c/(c + K_D)").to_ufl({"c": 1, "K_D": 3.0}) == 0.25
    for bad in ("log(0)", "1/0", "(-8)**(1/3)", "sqrt(-1)"):
        with pytest.raises(ExpressionError, match="cannot evaluate"):
            parse_expression(bad).to_ufl({})


def test_substitute() -> None:
    e = parse_expression("x**n + n**2 - m")
    s = e.substitute({"n": -2, "m": parse_expression("a + b")})
    assert s.names == {"x", "a", "b"}
    assert s.evaluate({"x": 2.0, "a": 1.0, "b": 1.0}) == pytest.approx(0.25 + 4 - 2)
    assert e.substitute({"unused": 1.0}) is e
    with pytest.raises(ExpressionError, match="exponent too large"):
        parse_expression("x**n").substitute({"n": 100})


def test_library_imports_no_dolfinx() -> None:
    """ufl is imported lazily; dolfinx and petsc4py never."""
    import ast
    from pathlib import Path

    import solver.model.expressions as module

    tree = ast.parse(Path(module.__file__).read_text())
    imported = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    imported |= {
        n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
    }
    assert not imported & {"dolfinx", "petsc4py"}
    top = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    assert "ufl" not in top


# --- UFL backend against dolfinx -------------------------------------------------------------


@pytest.fixture(scope="module")
def mesh():  # noqa: ANN201 - dolfinx types are optional here
    pytest.importorskip("dolfinx_solver")  # orders MPI ahead of the bindings
    from mpi4py import MPI

    import dolfinx

    return dolfinx.mesh.create_unit_square(MPI.COMM_WORLD, 16, 16)


def _integral(mesh, expr) -> float:  # noqa: ANN001
    import dolfinx
    import ufl

    local = dolfinx.fem.assemble_scalar(dolfinx.fem.form(expr * ufl.dx(domain=mesh)))
    return float(mesh.comm.allreduce(local))


@pytest.mark.parametrize(
    ("text", "exact"),
    [
        ("1 + 0.5*x", 1.25),
        ("x*y", 0.25),
        ("max(x - 0.5, 0)**2", 1.0 / 24.0),  # the 16x16 mesh is aligned with the kink
        ("min(x, y, 0.5)", None),
        ("exp(-x) * sin(pi*y)", (1 - math.exp(-1)) * 2 / math.pi),
        ("k * x / (x + K_D)", None),
    ],
)
def test_to_ufl_integrals(mesh, text: str, exact: float | None) -> None:  # noqa: ANN001
    import dolfinx
    import ufl

    x = ufl.SpatialCoordinate(mesh)
    k = dolfinx.fem.Constant(mesh, dolfinx.default_scalar_type(2.0))
    e = parse_expression(text)
    value = _integral(mesh, e.to_ufl({"x": x[0], "y": x[1], "k": k, "K_D": 0.5}))
    if exact is None:  # midpoint rule with the numpy backend on a fine grid
        h = np.linspace(0, 1, 801)
        mid = 0.5 * (h[1:] + h[:-1])
        gx, gy = np.meshgrid(mid, mid, indexing="ij")
        exact = float(np.mean(e.evaluate({"x": gx, "y": gy, "k": 2.0, "K_D": 0.5})))
        assert value == pytest.approx(exact, rel=1e-4)
    else:
        assert value == pytest.approx(exact, rel=1e-6)


def test_to_ufl_matches_numpy_pointwise(mesh) -> None:  # noqa: ANN001
    import dolfinx
    import ufl

    x = ufl.SpatialCoordinate(mesh)
    c = dolfinx.fem.Constant(mesh, dolfinx.default_scalar_type(0.3))
    reference = np.array([[1 / 3, 1 / 3], [0.2, 0.6], [0.6, 0.2]])
    cells = np.arange(mesh.topology.index_map(mesh.topology.dim).size_local, dtype=np.int32)
    coords = dolfinx.fem.Expression(x, reference).eval(mesh, cells)
    pts = {"x": coords[..., 0], "y": coords[..., 1], "c": 0.3}
    texts = [
        "exp(x) + log(1 + y) + sqrt(x + y) + sin(x) * cos(y) + tanh(x - y)",
        "abs(x - 0.5) + min(x, y, c) + max(x, c) - pi * x**2 / (1 + y**3)",
        "+x - -y + 2**-3 * c",
        "max(x - c, 0)**2 / (c**2 + (x - c)**2)",
        "2**x * c**-1 + 1e-3 / (x + 1)",
    ]
    for text in texts:
        e = parse_expression(text)
        ufl_values = dolfinx.fem.Expression(
            e.to_ufl({"x": x[0], "y": x[1], "c": c}), reference
        ).eval(mesh, cells)
        np.testing.assert_allclose(ufl_values, e.evaluate(pts), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("text", "values", "piece"),
    [
        ("1/0 + x", {}, "1/0"),
        ("x*exp(1000)", {}, "exp(1000)"),
        ("log(0)*y", {}, "log(0)"),
        ("sqrt(-1)", {}, "sqrt(-1)"),
        ("x/(k - k)", {"k": 2.0}, "x/(k - k)"),
        ("log(k - 1)*x", {"k": 1.0}, "log(k - 1)"),
    ],
)
def test_constant_subexpressions_are_folded_and_checked(text, values, piece):
    with pytest.raises(ExpressionError) as err:
        parse_expression(text).check_constants(values)
    assert piece in str(err.value) and err.value.column is not None


def test_finite_constants_pass():
    parse_expression("exp(-k*t) + log(k)*x + sqrt(2)/pi").check_constants({"k": 2.0})


def test_substitution_is_bounded_before_it_is_built():
    d = parse_expression("x*x*x*x")
    e = parse_expression("d*d*d*d")
    assert e.substitute({"d": d}, max_nodes=31).size == 31
    with pytest.raises(ExpressionError, match="expands to 31 nodes"):
        e.substitute({"d": d}, max_nodes=30)


def test_size_limits():
    with pytest.raises(ExpressionError, match="too large"):
        parse_expression("+".join("x" * 20), max_nodes=10)
    with pytest.raises(ExpressionError, match="too long"):
        parse_expression("x" * 50, max_length=10)
    assert parse_expression("x" * 5000, max_length=None).names == {"x" * 5000}


def test_atan_is_evaluated_the_same_in_numbers_and_in_ufl() -> None:
    """atan (SMART's step-averaged pulse needs it): float, numpy and folded constants agree."""
    import math

    import numpy as np

    e = parse_expression("atan(2*x) + atan(1)")
    values = e.evaluate({"x": np.array([0.0, 0.5, -3.0])})
    expected = [math.atan(2 * v) + math.pi / 4 for v in (0.0, 0.5, -3.0)]
    assert np.allclose(values, expected, rtol=1e-15)
