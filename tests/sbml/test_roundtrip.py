"""Round trips: every shipped run file exported to SBML and imported back is the same model.

Compared on the loaded models (``solver.config``): compartments, species (compartment,
unit, D, initial values, descriptions), parameters (values and units), stimuli,
definitions, stoichiometry, where each reaction is integrated, and every rate evaluated
at random states (to 1e-12). The default model imported from its export also runs to
the same read-outs as the original (to 1e-10).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

libsbml = pytest.importorskip("libsbml")
pytest.importorskip("antimony")

from solver import config  # noqa: E402
from solver.cli.app import main  # noqa: E402
from solver.config import units  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CASES = sorted(ROOT.glob("runs/*/config.toml"))
SHIPPED = ("chemotaxis", "wave_pinning")  # with model.xml, model.ant and spatial.toml


def roundtrip(case: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    assert main(["export", str(case), "-o", str(folder / "model.xml")]) == 0
    assert main(["import", str(folder / "model.xml"), "-o", str(folder / "config.toml")]) == 0
    return folder / "config.toml"


def values_at(model, rng: np.random.Generator) -> dict[str, float]:
    """A random state: species, stimuli and occupancies, x, y, z, t; the parameters."""
    state = {n: float(rng.uniform(0.1, 2.0)) for n in (*model.species, *model.fields)}
    state |= {c: float(rng.uniform(-1, 1)) for c in ("x", "y", "z")}
    state["t"] = float(rng.uniform(0, 30))
    return {**model.parameters, **state}


def same_number(a: float, b: float, rel: float = 1e-12) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-300)


def assert_same_model(path_a: Path, path_b: Path, renamed: dict[str, str] | None = None):
    renamed = renamed or {}
    a, b = config.load(path_a), config.load(path_b)
    ma, mb = a.model, b.model
    back = {v: k for k, v in renamed.items()}
    assert dict(ma.declared) == dict(mb.declared)
    assert list(ma.species) == list(mb.species)
    for name, s in ma.species.items():
        t = mb.species[name]
        assert (s.compartment, s.units, s.kind, s.description) == (
            t.compartment,
            t.units,
            t.kind,
            t.description,
        ), name
        assert same_number(s.D, t.D) and same_number(s.noise, t.noise), name
        if isinstance(s.initial, float):
            assert isinstance(t.initial, float) and same_number(s.initial, t.initial), name
        else:
            rng = np.random.default_rng(1)
            for _ in range(5):
                at = values_at(ma, rng)
                at_b = {renamed.get(k, k): v for k, v in at.items()}
                assert same_number(s.initial.evaluate(at), t.initial.evaluate(at_b)), name
    pa = {renamed.get(k, k): v for k, v in ma.parameters.items()}
    assert pa.keys() == mb.parameters.keys()
    for name, value in pa.items():
        assert same_number(value, mb.parameters[name], 1e-14), name
        written_a = a.document["parameters"][back.get(name, name)]
        written_b = b.document["parameters"][name]
        assert units.dimension_of(written_a) == units.dimension_of(written_b), name
    assert ma.stimuli.keys() == mb.stimuli.keys()
    for name, s in ma.stimuli.items():
        t = mb.stimuli[name]
        assert (s.kind, s.mean, s.gradient, s.direction, s.K_D, s.events) == (
            t.kind,
            t.mean,
            t.gradient,
            t.direction,
            t.K_D,
            t.events,
        )
    assert ma.reactions.keys() == mb.reactions.keys()
    rng = np.random.default_rng(7)
    for name, r in ma.reactions.items():
        t = mb.reactions[name]
        assert (dict(r.reactants), dict(r.products), r.location) == (
            dict(t.reactants),
            dict(t.products),
            t.location,
        ), name
        for _ in range(20):
            at = values_at(ma, rng)
            at_b = {renamed.get(k, k): v for k, v in at.items()}
            assert same_number(r.rate.evaluate(at), t.rate.evaluate(at_b)), name
    assert [p.weights for p in ma.conserved_pools()] == [p.weights for p in mb.conserved_pools()]
    for table in ("mesh", "time", "output", "metrics", "solver"):
        assert a.document.get(table) == b.document.get(table) or table == "mesh"
    assert a.mesh.shape == b.mesh.shape


@pytest.mark.serial
@pytest.mark.parametrize("case", CASES, ids=[c.parent.name for c in CASES])
def test_export_then_import_is_the_same_model(case, tmp_path):
    imported = roundtrip(case, tmp_path / case.parent.name)
    assert_same_model(case, imported)
    doc = libsbml.readSBMLFromFile(str(tmp_path / case.parent.name / "model.xml"))
    assert doc.getLevel() == 3 and doc.getVersion() == 2
    doc.checkConsistency()
    severities = [doc.getError(i).getSeverity() for i in range(doc.getNumErrors())]
    assert libsbml.LIBSBML_SEV_ERROR not in severities
    assert libsbml.LIBSBML_SEV_FATAL not in severities
    assert doc.getModel().getUnitDefinition("uM_um3") is not None  # the solver's units


@pytest.mark.serial
@pytest.mark.parametrize("case", SHIPPED)
def test_the_shipped_sbml_and_antimony_files_are_the_run_files_model(case, tmp_path):
    folder = ROOT / "runs" / case
    out = tmp_path / "from_xml.toml"
    assert main(["import", str(folder / "model.xml"), "-o", str(out)]) == 0
    assert_same_model(folder / "config.toml", out)
    out = tmp_path / "from_ant.toml"
    overlay = str(folder / "spatial.toml")
    assert main(["import", str(folder / "model.ant"), "--overlay", overlay, "-o", str(out)]) == 0
    # Antimony reserves 'gamma' (a function): its parameter is gamma_ there
    assert_same_model(
        folder / "config.toml", out, {"gamma": "gamma_"} if case == "wave_pinning" else None
    )


@pytest.mark.serial
@pytest.mark.parametrize("case", SHIPPED)
def test_the_shipped_files_are_what_export_writes_today(case, tmp_path):
    folder = ROOT / "runs" / case
    xml, ant, overlay = tmp_path / "model.xml", tmp_path / "model.ant", tmp_path / "spatial.toml"
    assert main(["export", str(folder / "config.toml"), "-o", str(xml)]) == 0
    assert (
        main(["export", str(folder / "config.toml"), "-o", str(ant), "--overlay", str(overlay)])
        == 0
    )
    for made in (xml, ant, overlay):
        shipped = (folder / made.name).read_text()
        assert made.read_text() == shipped, f"runs/{case}/{made.name} is stale: polarity export"


def test_the_imported_default_model_runs_to_the_same_read_outs(tmp_shared):
    from solver import read_results, run_case

    case = ROOT / "runs" / "chemotaxis" / "config.toml"
    imported = tmp_shared / "imported.toml"
    assert main(["export", str(case), "-o", str(tmp_shared / "model.xml")]) == 0
    assert main(["import", str(tmp_shared / "model.xml"), "-o", str(imported)]) == 0
    short = ["time.end=2", "time.dt=0.5", "time.adaptive=false", "output.every=1", "mesh.size=1.6"]
    a = run_case(case, tmp_shared / "original", short)
    b = run_case(imported, tmp_shared / "imported", short)
    assert a.status == b.status == "completed"
    ma, mb = (
        read_results(tmp_shared / "original").metrics,
        read_results(tmp_shared / "imported").metrics,
    )
    assert ma.keys() == mb.keys()
    worst, checked = 0.0, 0
    for column, values in ma.items():
        x, y = np.asarray(values, float), np.asarray(mb[column], float)
        assert np.array_equal(np.isnan(x), np.isnan(y)), column
        finite = np.isfinite(x) & (x != 0)
        if not finite.any():
            continue
        relative = np.abs(x[finite] - y[finite]) / np.abs(x[finite])
        worst = max(worst, float(relative.max()))
        assert relative.max() <= 1e-10, (column, relative.max())
        checked += 1
    assert checked > 20
    print(f"read-outs: {checked} columns, largest relative difference {worst:.2e}")
