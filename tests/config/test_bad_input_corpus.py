"""A corpus of bad run files and ``--set`` values, each through ``polarity check``.

Every case must end, fast, with exit code 2 and exactly one line on standard error
(rank 0 only under MPI) that starts with ``error:`` and names the file (or ``--set``)
and the key, with no traceback and nothing written next to the run file. The cases are
grouped by what they would have caused: a traceback, unbounded time or memory, a
silently wrong result, or a PETSc option that reads or writes files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from mpi4py import MPI

import pytest

from solver.cli.app import main
from tests.cases import with_changes

WORLD = MPI.COMM_WORLD
FAST = 2.0  # seconds: every case must be refused within this, before any meshing

BASE: dict[str, Any] = {
    "mesh": {"shape": "sphere", "radius": "2 um", "size": "0.8 um"},
    "time": {"end": "10 s", "dt": "0.5 s", "scheme": "euler"},
    "output": {"every": "1 s"},
    "parameters": {"k_on": "1 um/s", "k_off": "0.5 1/s"},
    "stimulus": {
        "chemokine": {
            "kind": "linear",
            "mean": "25 nM",
            "steepness": "10 %",
            "direction": [1, 0, 0],
            "K_D": "25 nM",
        }
    },
    "species": {
        "c": {"compartment": "cytosol", "D": "10 um^2/s", "initial": "1 uM"},
        "m": {"compartment": "membrane", "D": "0.1 um^2/s", "initial": "0.1 + 0.01*x"},
    },
    "reactions": {"bind": {"equation": "c -> m", "rate": "k_on*c - k_off*m"}},
    "metrics": {"species": ["m"]},
}
DISK = {"shape": "disk", "radius": "2 um", "size": "0.5 um"}
DELETE = object()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        escaped = "".join(c if ord(c) >= 32 else f"\\u{ord(c):04x}" for c in escaped)
        return '"' + escaped + '"'
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _key(key: str) -> str:
    return key if key.replace("_", "").isalnum() and key.isascii() else _toml_value(key)


def to_toml(doc: dict[str, Any], prefix: str = "") -> str:
    """TOML text of a document: scalars and lists inline, tables under headers."""
    lines, tables = [], []
    for k, v in doc.items():
        if isinstance(v, dict):
            tables.append((k, v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            tables.append((k, v))
        else:
            lines.append(f"{_key(k)} = {_toml_value(v)}")
    text = "\n".join(lines) + "\n"
    for k, v in tables:
        name = f"{prefix}.{_key(k)}" if prefix else _key(k)
        if isinstance(v, list):
            for item in v:
                text += f"\n[[{name}]]\n" + to_toml(item, name)
        else:
            text += f"\n[{name}]\n" + to_toml(v, name)
    return text


def changed(**changes: Any) -> dict[str, Any]:
    """BASE with ``a__b__c=value`` set (DELETE: removed)."""
    return with_changes(BASE, changes, delete=DELETE)


def C(key: str, doc: dict[str, Any] | str | bytes, *sets: str) -> Any:
    """One case: the fragment the error line must hold, the document (or text), --set."""
    return pytest.param(key, doc, list(sets), id=key[:60])


def nested(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + "1" + close * depth


def inline_tables(depth: int) -> str:
    return "{a = " * depth + "1" + "}" * depth


def chain(n: int, grow: str = "{0}*{0}*{0}*{0}") -> dict[str, str]:
    """Definitions d0 .. d{n-1}, each using the one before four times."""
    out = {"d0": "m*m"}
    for i in range(1, n):
        out[f"d{i}"] = grow.format(f"d{i - 1}")
    return out


def deep_definitions(n: int) -> dict[str, str]:
    out = {"e0": "m"}
    for i in range(1, n):
        out[f"e{i}"] = f"(e{i - 1} + 1)*2"
    return out


BIG = "1" + "0" * 100_000  # a 100001-digit number
BASE_TEXT = to_toml(BASE)
K_ON = f"line {BASE_TEXT.splitlines().index('k_on = "1 um/s"') + 1}"  # where k_on is

TRACEBACKS = [
    # nesting the TOML reader or the checks would recurse into
    C(K_ON, BASE_TEXT.replace('k_on = "1 um/s"', f"k_on = {nested(5000)}")),
    C(K_ON, BASE_TEXT.replace('k_on = "1 um/s"', f"k_on = {inline_tables(3000)}")),
    C("parameters.k_on", changed(parameters__k_on=eval(nested(20)))),  # noqa: S307
    C("--set parameters.k_on", BASE, f"parameters.k_on={nested(5000)}"),
    C("parameters.k_on", BASE, f"parameters.k_on={nested(40)}"),
    C("a.b.c", BASE, "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u=1"),
    C("parameters", BASE_TEXT + "\n[parameters" + ".p" * 30 + "]\nv = 1\n"),
    # lists and tables where a name belongs
    C("metrics.species", changed(metrics__species=[["m"]])),
    C("metrics.species", changed(metrics__species=[{"a": 1}])),
    C("metrics.species", changed(metrics__species=[1.5])),
    C("metrics.stimulus", changed(metrics__stimulus=["chemokine"])),
    C("metrics.stimulus", changed(metrics__stimulus={"a": 1})),
    C("metrics.correlations", changed(metrics__correlations=[[["m"], "m"]])),
    C("metrics.correlations", changed(metrics__correlations="m")),
    C("metrics.correlations", changed(metrics__correlations=[[{"a": 1}, "m"]])),
    C("species.c.compartment", changed(species__c__compartment=["cytosol"])),
    C("reactions.bind.on", changed(reactions__bind__on=["membrane"])),
    C("stimulus.chemokine.kind", changed(stimulus__chemokine__kind=["linear"])),
    C("time.scheme", changed(time__scheme=["bdf2"])),
    C("solver.linear", changed(solver={"linear": {"a": 1}})),
    C("solver.mass", changed(solver={"mass": ["lumped"]})),
    C("mesh.shape", changed(mesh__shape=["sphere"])),
    C("mesh.file", changed(mesh={"shape": "file", "file": 5})),
    C("mesh.file", changed(mesh={"shape": "file", "file": "cell\x00.msh"})),
    C("mesh.file", changed(mesh={"shape": "file", "file": "x" * 5000 + ".msh"})),
    C("output.dir", changed(output__dir=[])),
    C("output.dir", changed(output__dir="a\x00b")),
    # definitions past the expression limits
    C("definitions.d7", changed(definitions=chain(8))),
    C(
        "reactions.bind.rate",
        changed(definitions=chain(5), reactions__bind__rate="*".join(["d4"] * 25)),
    ),
    C("definitions.e", changed(definitions=deep_definitions(150))),
    C("reactions.bind.rate", changed(reactions__bind__rate="(" * 300 + "c" + ")" * 300)),
    # numbers too long for Python's conversions
    C("--set parameters.k_on", BASE, f"parameters.k_on={BIG}"),
    C("--set parameters.k_on", BASE, f"parameters.k_on={'9' * 5000}"),
    C(K_ON, BASE_TEXT.replace('k_on = "1 um/s"', f"k_on = {BIG}")),
    C(K_ON, BASE_TEXT.replace('k_on = "1 um/s"', f"k_on = {'7' * 4400}")),
    C("parameters.k_on", changed(parameters__k_on=10**100)),
    C("parameters.k_on", BASE, f"parameters.k_on={10**60}"),
    C("parameters.k_on", changed(parameters__k_on=f"{BIG} um/s")),
    C("parameters.k_on", BASE, f"parameters.k_on='{'9' * 60} um/s'"),
    C("species.c.D", changed(limits={"number_digits": 4000}, species__c__D=10**3999)),
    C("reactions.bind.equation", changed(reactions__bind__equation="9" * 5000 + " c -> m")),
    C("species.c.initial", changed(species__c__initial=10**80)),
    # the run file itself
    C("config.toml", "UNREADABLE"),
    C("config.toml", "FOLDER"),
    C("config.toml", "MISSING"),
    C("config.toml", b"\xff\xfe[mesh]\n"),
    # constant subexpressions that cannot be evaluated
    C("species.m.initial", changed(species__m__initial="1/0 + x")),
    C("species.m.initial", changed(species__m__initial="exp(1000)*x")),
    C("species.m.initial", changed(species__m__initial="log(0) + x")),
    C("species.m.initial", changed(species__m__initial="sqrt(-1)*x")),
    C("species.m.initial", changed(species__m__initial="x/0")),
    C("species.m.initial", changed(species__m__initial="(-1)**0.5 + y")),
    C("species.c.initial", changed(species__c__initial="1/0")),
    C("species.c.initial", changed(species__c__initial="log(0)")),
    C("reactions.bind.rate", changed(reactions__bind__rate="k_on*c/0")),
    C("reactions.bind.rate", changed(reactions__bind__rate="log(k_off - k_off)*m")),
    C("reactions.bind.rate", changed(reactions__bind__rate="c/(k_on - k_on)")),
    C("reactions.bind.rate", changed(reactions__bind__rate="exp(1000*k_on)*c")),
    C("reactions.bind.rate", changed(reactions__bind__rate="*".join(["10.0**64"] * 5) + "*c")),
    C("reactions.bind.rate", changed(reactions__bind__rate="c*1e400")),
    C("reactions.bind.rate", changed(reactions__bind__rate="c**100")),
    C("definitions.bad", changed(definitions={"bad": "sqrt(-k_on)*m"})),
    C(
        "stimulus.chemokine.expression",
        changed(stimulus__chemokine={"kind": "expression", "expression": "exp(1000) + x"}),
    ),
    C("parameters.k_on", changed(parameters__k_on="1/0 um/s")),
    # values that are never finite
    C("species.c.D", changed(species__c__D=float("inf"))),
    C("species.c.D", changed(species__c__D=float("nan"))),
    C("species.c.D", changed(species__c__D="inf um^2/s")),
    C("species.c.D", changed(species__c__D="1e999 um^2/s")),
    C("stimulus.chemokine.steepness", changed(stimulus__chemokine__steepness="nan %")),
    C("time.wall_time", changed(time__wall_time="1e400 s")),
    # one line, whatever the value holds
    C("species.c.D", changed(species__c__D="1\n2 um")),
    C("reactions.bind.rate", changed(reactions__bind__rate="c +\n+\n")),
    C("parameters.a", changed(parameters={"a\nb": 1})),
    C("species.c.compartment", changed(species__c__compartment="\u2028cytosol\x85")),
    # --set itself
    C("--set", BASE, "no_equals_sign"),
    C("--set", BASE, "a..b=1"),
    C("--set", BASE, "parameters.k_on.x=1"),
]

RESOURCES = [
    C("species.c.D", changed(species__c__D="10**10**10 um^2/s")),
    C("species.c.D", changed(species__c__D="9**9**9 um^2/s")),
    C("species.c.D", changed(species__c__D="(10**60)**60 um^2/s")),
    C("species.c.D", changed(species__c__D="((2**64)**64)**64 um^2/s")),
    C("species.c.D", changed(species__c__D="10**(10**10) um^2/s")),
    C("species.c.D", changed(species__c__D="1 um^x")),
    C("time.end", changed(time__end="10**10**10 s")),
    C("stimulus.chemokine.steepness", changed(stimulus__chemokine__steepness="10**10**10 %")),
    C("stimulus.chemokine.direction[0]", changed(stimulus__chemokine__direction=["9**9**9", 0, 0])),
    C("species.c.D", changed(species__c__D="1 " + "um*" * 350_000 + "um^-349999/s")),
    C("species.c.D", BASE, "species.c.D='1 " + "m/" * 500_000 + "s'"),
    C("species.c.D", changed(species__c__D="1 " + "(" * 150 + "um" + ")" * 150 + "^2/s")),
    C("parameters.k_on", changed(parameters__k_on="1" + " " * 1000 + "um/s")),
    C("mesh.size", changed(mesh__size="1e-3 um")),
    C("mesh.size", changed(mesh__size=1e-4, mesh__radius=1)),
    C("mesh.size", BASE, "mesh.size=0.001"),
    C("mesh.size", changed(mesh=DISK | {"size": "1e-4 um"})),
    C("mesh.size", changed(mesh={"shape": "ellipsoid", "semi_axes": [6, 4, 4], "size": 0.01})),
    C("mesh.size", changed(mesh={"shape": "spread", "size": 0.02})),
    C("mesh.size", changed(mesh={"shape": "capsule", "size": 0.02})),
    C("mesh.size", changed(mesh={"shape": "ellipse", "semi_axes": [6, 4], "size": 0.002})),
    C("mesh.inner_size", changed(mesh__inner_size="0.01 um", mesh__size="0.005 um")),
    C("mesh.size", changed(mesh__radius="1e6 um", mesh__size="1 um")),
    C("time.dt", changed(time__dt="1e-8 s")),
    C("time.dt", changed(time__dt="1 ns", time__end="1 h")),
    C("time.dt", BASE, "time.dt=1e-9"),
    C("time.dt", BASE, "time.end='1e9 s'"),
    C("output.every", changed(output__every="1e-7 s")),
    C("output.every", BASE, "output.every=1e-6"),
    C("output.every", changed(time__end="1e7 s", time__adaptive=True)),
    C("output.checkpoint_every", changed(output__checkpoint_every="1e-6 s")),
    C("reactions.bind.rate", changed(reactions__bind__rate="+".join(["c"] * 1200))),
    C("reactions.bind.rate", changed(reactions__bind__rate="c+" * 700 + "c")),
    C("species.m.initial", changed(species__m__initial="x*" * 600 + "x")),
    C("definitions.d7", changed(definitions=chain(12), reactions__bind__rate="d11*c")),
]

SILENTLY_WRONG = [
    # names that expressions read as one (Unicode NFKC) or that look alike
    C(
        "species.\u03bc",
        changed(
            **{
                "species__\u00b5": {"compartment": "membrane", "D": 0.1},
                "species__\u03bc": {"compartment": "membrane", "D": 0.1},
            }
        ),
    ),
    C("parameters.\u03bc", changed(**{"parameters__\u00b5": 1, "parameters__\u03bc": 2})),
    C("parameters.\U0001d465", changed(**{"parameters__\U0001d465": 1})),
    C("species.\U0001d461", changed(**{"species__\U0001d461": {"compartment": "cytosol"}})),
    C("parameters.\u0445", changed(**{"parameters__\u0445": 1})),
    C("parameters.\uff50\uff49", changed(**{"parameters__\uff50\uff49": 1})),
    C("species.\uff43", changed(**{"species__\uff43": {"compartment": "cytosol"}})),
    C("species.c", changed(**{"parameters__\u0441": 1})),
    C("definitions.k_\uff4fn", changed(definitions={"k_\uff4fn": "m"})),
    C("stimulus.k_\u03bfff", changed(**{"stimulus__k_\u03bfff": BASE["stimulus"]["chemokine"]})),
    C("stimulus.chemokine.K_D", changed(parameters__chemokine_occupancy=1)),
    C("parameters.\U0001d41e", changed(**{"parameters__\U0001d41e\U0001d431\U0001d429": 1})),
    C("species.sss", changed(**{"species__" + "s" * 150: {"compartment": "cytosol"}})),
    # vectors that do not fit the cell
    C("stimulus.chemokine.direction", changed(stimulus__chemokine__direction=[1, 0])),
    C("stimulus.chemokine.direction", changed(stimulus__chemokine__direction=[1, 0, 0, 0])),
    C(
        "stimulus.chemokine.direction",
        changed(mesh=DISK, stimulus__chemokine__direction=[1, 0, 1]),
    ),
    C("stimulus.chemokine.center", changed(stimulus__chemokine__center=[0, 0])),
    C(
        "stimulus.chemokine.events[0].direction",
        changed(stimulus__chemokine__events=[{"at": "5 s", "direction": [0, 1]}]),
    ),
    C(
        "stimulus.chemokine.events[0].axis",
        changed(
            mesh=DISK, stimulus__chemokine__events=[{"at": 1, "rotation": 0.1, "axis": [1, 0, 0]}]
        ),
    ),
    C(
        "stimulus.chemokine.events[0].axis",
        changed(stimulus__chemokine__events=[{"at": 1, "rotation": 0.1, "axis": [0, 1]}]),
    ),
    C(
        "stimulus.chemokine.position",
        changed(stimulus__chemokine={"kind": "point_source", "mean": 1, "position": [9, 0]}),
    ),
    C("mesh.center", changed(mesh__center=[0, 0])),
    # times before the start
    C(
        "stimulus.chemokine.events[0].at",
        changed(stimulus__chemokine__events=[{"at": "-5 s", "washout": True}]),
    ),
    C(
        "stimulus.chemokine.events[1].at",
        changed(
            stimulus__chemokine__events=[{"at": 1, "remove": True}, {"at": -1e-9, "remove": True}]
        ),
    ),
    # a float or a boolean where an integer belongs, a string for a flag
    C("mesh.order", changed(mesh__order=1.0)),
    C("mesh.order", changed(mesh__order=True)),
    C("mesh.order", changed(mesh__order="2")),
    C("mesh.order", changed(mesh__order=3)),
    C("solver.quadrature_degree", changed(solver={"quadrature_degree": 4.0})),
    C("solver.quadrature_degree", changed(solver={"quadrature_degree": True})),
    C("time.adaptive", changed(time__adaptive="yes")),
    C("time.adaptive", changed(time__adaptive=1)),
    C(
        "stimulus.chemokine.events[0].washout",
        changed(stimulus__chemokine__events=[{"at": 1, "washout": 1}]),
    ),
    C("species.c.noise", changed(species__c__noise=True)),
    C("metrics.cap_angle", changed(metrics__cap_angle=True)),
    # limits that are no limits
    C("limits.depth", changed(limits={"depth": 1000})),
    C("limits.depth", changed(limits={"depth": 0})),
    C("limits.colour", changed(limits={"colour": 1})),
    C("limits.time_steps", changed(limits={"time_steps": 1.5})),
    C("limits.outputs", changed(limits={"outputs": True})),
    C("limits.outputs", changed(limits={"outputs": "many"})),
    C("limits", changed(limits=5)),
    C("limits.number_digits", changed(limits={"number_digits": 10**6})),
]

PETSC = [
    C("solver.petsc.ksp_view", changed(solver={"petsc": {"ksp_view": "ascii:/tmp/x.txt"}})),
    C("solver.petsc.log_view", changed(solver={"petsc": {"log_view": True}})),
    C("solver.petsc.options_file", changed(solver={"petsc": {"options_file": "/etc/passwd"}})),
    C("solver.petsc.ksp_monitor", changed(solver={"petsc": {"ksp_monitor": "ascii:/tmp/m"}})),
    C("solver.petsc.snes_monitor", changed(solver={"petsc": {"snes_monitor": "draw"}})),
    C("solver.petsc.snes_view", changed(solver={"petsc": {"snes_view": "binary:out.bin"}})),
    C("solver.petsc.pc_type", changed(solver={"petsc": {"pc_type": "../../x"}})),
    C("solver.petsc.ksp_type", changed(solver={"petsc": {"ksp_type": "gmres:/tmp/x"}})),
    C("solver.petsc.ksp_type", changed(solver={"petsc": {"ksp_type": "~/x"}})),
    C("solver.petsc.ksp_type", changed(solver={"petsc": {"ksp_type": True}})),
    C("solver.petsc.help", changed(solver={"petsc": {"help": True}})),
    C("solver.petsc.mat_mumps_icntl_1", changed(solver={"petsc": {"mat_mumps_icntl_1": 6}})),
    C("solver.petsc.history", changed(solver={"petsc": {"history": "/tmp/h"}})),
    C("solver.petsc.malloc_dump", changed(solver={"petsc": {"malloc_dump": True}})),
    C(
        "solver.petsc.viewer_binary_filename",
        changed(solver={"petsc": {"viewer_binary_filename": "x"}}),
    ),
    C(
        "solver.petsc.fieldsplit_cytosol_ksp_view",
        changed(solver={"petsc": {"fieldsplit_cytosol_ksp_view": "binary:/tmp/x"}}),
    ),
    C("solver.petsc.-options_file", changed(solver={"petsc": {"-options_file": "x"}})),
    C(
        "solver.petsc.on_error_attach_debugger",
        changed(solver={"petsc": {"on_error_attach_debugger": True}}),
    ),
    C("solver.petsc.KSP_TYPE", changed(solver={"petsc": {"KSP_TYPE": "cg"}})),
    C("solver.petsc.mat_view", changed(solver={"petsc": {"mat_view": "ascii:/tmp/A"}})),
    C("solver.petsc.vec_view", changed(solver={"petsc": {"vec_view": True}})),
    C("solver.petsc.log_trace", changed(solver={"petsc": {"log_trace": "/tmp/t"}})),
    C("solver.petsc.ksp_rtol", changed(solver={"petsc": {"ksp_rtol": float("nan")}})),
    C("solver.petsc.pc_type", changed(solver={"petsc": {"pc_type": "x" * 100}})),
    C("solver.petsc.snes_type", changed(solver={"petsc": {"snes_type": ["newtonls"]}})),
    C(
        "solver.petsc.fieldsplit_nucleus_pc_type",
        changed(solver={"petsc": {"fieldsplit_nucleus_pc_type": "lu"}}),
    ),
    C("solver.petsc.ksp_view", BASE, "solver.petsc.ksp_view=ascii:/tmp/x"),
    C("solver.petsc.log_view", BASE, "solver.petsc.log_view=true"),
    C("solver.petsc.ksp_monitor", BASE, "solver.petsc.ksp_monitor='ascii:out.txt'"),
]


@pytest.fixture(scope="module", autouse=True)
def _imported() -> None:
    """What ``polarity check`` imports before it reads a run file (so cases are timed fairly)."""
    import solver.fem.geometry  # noqa: F401
    import solver.mesh.meshing  # noqa: F401
    import solver.mesh.report  # noqa: F401


def _write(folder: Path, doc: dict[str, Any] | str | bytes) -> None:
    path = folder / "config.toml"
    if doc == "FOLDER":
        path.mkdir()
    elif doc == "UNREADABLE":
        path.write_text(BASE_TEXT)
        path.chmod(0)
    elif isinstance(doc, bytes):
        path.write_bytes(doc)
    elif isinstance(doc, str) and doc != "MISSING":
        path.write_text(doc)
    elif isinstance(doc, dict):
        path.write_text(to_toml(doc))


def _check(folder: Path, key: str, doc: Any, sets: list[str], monkeypatch, capsys) -> None:
    if WORLD.rank == 0:
        _write(folder, doc)
    WORLD.barrier()
    path = folder / "config.toml"
    if doc == "UNREADABLE" and os.geteuid() == 0:  # root reads any file: make it fail
        real = Path.open

        def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
            if self == path:
                raise PermissionError(13, "Permission denied", str(path))
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Path, "open", refuse)
    before = sorted(p.name for p in folder.iterdir())
    capsys.readouterr()
    argv = ["check", str(path)] + [a for s in sets for a in ("--set", s)]
    start = time.perf_counter()
    code = main(argv)
    elapsed = time.perf_counter() - start
    out, err = capsys.readouterr()
    WORLD.barrier()
    assert code == 2, (code, err[:300])
    assert elapsed < FAST, f"{elapsed:.2f} s"
    assert sorted(p.name for p in folder.iterdir()) == before
    if WORLD.rank > 0:
        assert err == ""
        return
    lines = err.splitlines()
    assert len(lines) == 1, err[:2000]
    line = lines[0]
    assert line.startswith("error: "), line
    assert "Traceback" not in err and out == "", (out, err)
    assert len(line) < 1500, line[:200]
    assert str(path) in line or ("--set" in line and sets), line
    assert key in line, line


@pytest.mark.parametrize(("key", "doc", "sets"), TRACEBACKS)
def test_no_traceback(tmp_shared, monkeypatch, capsys, key, doc, sets):
    _check(tmp_shared, key, doc, sets, monkeypatch, capsys)


@pytest.mark.parametrize(("key", "doc", "sets"), RESOURCES)
def test_no_resource_exhaustion(tmp_shared, monkeypatch, capsys, key, doc, sets):
    _check(tmp_shared, key, doc, sets, monkeypatch, capsys)


@pytest.mark.parametrize(("key", "doc", "sets"), SILENTLY_WRONG)
def test_nothing_silently_wrong(tmp_shared, monkeypatch, capsys, key, doc, sets):
    _check(tmp_shared, key, doc, sets, monkeypatch, capsys)


@pytest.mark.parametrize(("key", "doc", "sets"), PETSC)
def test_petsc_options_touch_no_file(tmp_shared, monkeypatch, capsys, key, doc, sets):
    _check(tmp_shared, key, doc, sets, monkeypatch, capsys)


def test_corpus_size():
    assert len(TRACEBACKS) + len(RESOURCES) + len(SILENTLY_WRONG) + len(PETSC) >= 120
