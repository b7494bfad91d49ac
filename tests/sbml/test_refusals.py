"""What polarity import cannot read is refused: one line naming the SBML element (or the
file), exit code 2, nothing written. Also export's refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

libsbml = pytest.importorskip("libsbml")
pytest.importorskip("antimony")

from solver.cli.app import main  # noqa: E402

pytestmark = pytest.mark.serial

BASE = """
  compartment cell = 1
  species A in cell = 1, B in cell = 0
  k = 0.1
"""


def antimony(body: str) -> str:
    return f"model m\n{BASE}{body}\nend\n"


def l3(build) -> str:
    """An SBML L3V2 text: a cell, species A and B, J1: A -> B, changed by ``build(model)``."""
    doc = libsbml.SBMLDocument(3, 2)
    m = doc.createModel()
    m.setId("m")
    c = m.createCompartment()
    c.setId("cell")
    c.setSize(1)
    c.setSpatialDimensions(3)
    c.setConstant(True)
    for sid in ("A", "B"):
        s = m.createSpecies()
        s.setId(sid)
        s.setCompartment("cell")
        s.setInitialConcentration(1)
        s.setHasOnlySubstanceUnits(False)
        s.setBoundaryCondition(False)
        s.setConstant(False)
    p = m.createParameter()
    p.setId("k")
    p.setValue(0.1)
    p.setConstant(True)
    r = m.createReaction()
    r.setId("J1")
    r.setReversible(False)
    ref = r.createReactant()
    ref.setSpecies("A")
    ref.setStoichiometry(1)
    ref.setConstant(True)
    r.createKineticLaw().setMath(libsbml.parseL3Formula("k*A*cell"))
    build(doc, m)
    return libsbml.writeSBMLToString(doc)


def _algebraic(doc, m):
    rule = m.createAlgebraicRule()
    rule.setMetaId("conservation")
    rule.setMath(libsbml.parseL3Formula("A + B - 2"))
    m.getSpecies("B").setConstant(False)


def _gram(doc, m):
    d = m.createUnitDefinition()
    d.setId("mass")
    u = d.createUnit()
    u.setKind(libsbml.UNIT_KIND_GRAM)
    u.setExponent(1)
    u.setScale(0)
    u.setMultiplier(1)
    m.getParameter("k").setUnits("mass")


def _unitless_in_molar(doc, m):
    m.setSubstanceUnits("mole")
    m.setVolumeUnits("litre")
    m.setTimeUnits("second")
    m.setExtentUnits("mole")


def _one_dimensional(doc, m):
    m.getCompartment("cell").setSpatialDimensions(1)


def _constraint(doc, m):
    c = m.createConstraint()
    c.setMetaId("positive")
    c.setMath(libsbml.parseL3Formula("A > 0"))


def _no_law(doc, m):
    m.getReaction("J1").unsetKineticLaw()


def _rate_rule_compartment(doc, m):
    m.getCompartment("cell").setConstant(False)
    rule = m.createRateRule()
    rule.setVariable("cell")
    rule.setMath(libsbml.parseL3Formula("0.01"))


CASES = {
    # name: (file text, suffix, the words the line must hold)
    "event": (antimony("J1: A -> B; k*A\n  E1: at time > 3: k = 0.2"), ".ant", "SBML event 'E1'"),
    "delay": (antimony("J1: A -> B; k*delay(A, 1)"), ".ant", "SBML reaction 'J1'"),
    "piecewise": (antimony("J1: A -> B; piecewise(k*A, A > 0.5, 0)"), ".ant", "SBML reaction 'J1'"),
    "stoichiometry": (antimony("J1: 1.5 A -> B; k*A"), ".ant", "SBML reaction 'J1'"),
    "rate rule on a parameter": (
        antimony("J1: A -> B; k*A\n  k' = 0.01"),
        ".ant",
        "SBML rate rule 'k'",
    ),
    "rate rule on a compartment": (l3(_rate_rule_compartment), ".xml", "SBML rate rule 'cell'"),
    "assignment rule on a compartment": (
        antimony("J1: A -> B; k*A\n  cell := 1 + k"),
        ".ant",
        "SBML assignment rule 'cell'",
    ),
    "algebraic rule": (l3(_algebraic), ".xml", "SBML algebraic rule 'conservation'"),
    "unit of mass": (l3(_gram), ".xml", "SBML parameter 'k'"),
    "unitless parameter in mole and litre": (l3(_unitless_in_molar), ".xml", "SBML parameter 'k'"),
    "a 1-D compartment": (l3(_one_dimensional), ".xml", "SBML compartment 'cell'"),
    "constraint": (l3(_constraint), ".xml", "SBML constraint 'positive'"),
    "no kinetic law": (l3(_no_law), ".xml", "SBML reaction 'J1'"),
    "malformed XML": ("<?xml version='1.0'?><sbml><model></sbml", ".xml", "not well-formed XML"),
    "inconsistent SBML": (
        l3(lambda doc, m: m.getSpecies("B").setCompartment("nowhere")),
        ".xml",
        "inconsistent SBML",
    ),
    "Antimony syntax": ("model m\n  J1: A -> B; k*A +\nend\n", ".ant", "Antimony: "),
    "empty Antimony": ("// nothing\n", ".ant", "holds no"),
}


def _fast(tmp_path: Path) -> Path:
    doc = libsbml.SBMLDocument(3, 1)
    m = doc.createModel()
    c = m.createCompartment()
    c.setId("cell")
    c.setSize(1)
    c.setSpatialDimensions(3)
    c.setConstant(True)
    s = m.createSpecies()
    s.setId("A")
    s.setCompartment("cell")
    s.setInitialConcentration(1)
    s.setHasOnlySubstanceUnits(False)
    s.setBoundaryCondition(False)
    s.setConstant(False)
    r = m.createReaction()
    r.setId("quick")
    r.setReversible(False)
    r.setFast(True)
    ref = r.createReactant()
    ref.setSpecies("A")
    ref.setStoichiometry(1)
    ref.setConstant(True)
    r.createKineticLaw().setMath(libsbml.parseL3Formula("A*cell"))
    path = tmp_path / "fast.xml"
    libsbml.writeSBMLToFile(doc, str(path))
    return path


def _comp(tmp_path: Path) -> Path:
    doc = libsbml.SBMLDocument(libsbml.SBMLNamespaces(3, 1, "comp", 1))
    doc.setPackageRequired("comp", True)
    doc.createModel().setId("outer")
    path = tmp_path / "comp.xml"
    libsbml.writeSBMLToFile(doc, str(path))
    return path


def refused(capsys, argv: list[str], out: Path, words: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert words in err, err
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*"))  # no temporary file either
    return err


@pytest.mark.parametrize("case", list(CASES))
def test_refused_in_one_line_and_nothing_written(case, tmp_path, capsys):
    text, suffix, words = CASES[case]
    model = tmp_path / f"model{suffix}"
    model.write_text(text)
    out = tmp_path / "run.toml"
    refused(capsys, ["import", str(model), "-o", str(out)], out, words)


def test_fast_reactions_and_hierarchical_models_are_refused(tmp_path, capsys):
    out = tmp_path / "run.toml"
    refused(capsys, ["import", str(_fast(tmp_path)), "-o", str(out)], out, "SBML reaction 'quick'")
    refused(capsys, ["import", str(_comp(tmp_path)), "-o", str(out)], out, "'comp'")


def test_a_missing_file_a_folder_and_an_existing_run_file(tmp_path, capsys):
    out = tmp_path / "run.toml"
    refused(capsys, ["import", str(tmp_path / "absent.xml"), "-o", str(out)], out, "does not exist")
    refused(capsys, ["import", str(tmp_path), "-o", str(out)], out, "is a folder")
    model = tmp_path / "ok.ant"
    model.write_text(antimony("J1: A -> B; k*A"))
    out.write_text("kept\n")
    assert main(["import", str(model), "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err and out.read_text() == "kept\n"
    assert main(["import", str(model), "-o", str(out), "--overwrite"]) == 0
    assert "[reactions.J1]" in out.read_text()


def test_bad_options(tmp_path, capsys):
    model = tmp_path / "ok.ant"
    model.write_text(antimony("J1: A -> B; k*A"))
    out = tmp_path / "run.toml"
    refused(capsys, ["import", str(model), "--sides", "cell", "-o", str(out)], out, "--sides")
    refused(
        capsys, ["import", str(model), "--sides", "cell=cell", "-o", str(out)], out, "no surface"
    )
    refused(capsys, ["import", str(model), "--mesh", "cube", "-o", str(out)], out, "--mesh")
    refused(
        capsys,
        ["import", str(model), "--overlay", str(tmp_path / "no.toml"), "-o", str(out)],
        out,
        "overlay file does not exist",
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("[species.A\n")
    refused(
        capsys, ["import", str(model), "--overlay", str(bad), "-o", str(out)], out, "malformed TOML"
    )
    refused(
        capsys,
        ["import", str(model), "--set", "species.A.D=-1", "-o", str(out)],
        out,
        "species.A.D",
    )


def test_a_surface_between_two_volumes_needs_its_sides(tmp_path, capsys):
    text = """model m
  unit um3 = (1e-6 metre)^3
  unit um2 = (1e-6 metre)^2
  compartment a = 1 um3, b = 1 um3, s = 1 um2
  species X in a = 1, Y in b = 0, Z in s = 0
  J1: X + Y -> Z; k*X*Y*s
  k = 1
end
"""
    model = tmp_path / "sides.ant"
    model.write_text(text)
    out = tmp_path / "run.toml"
    err = refused(capsys, ["import", str(model), "-o", str(out)], out, "SBML compartment 's'")
    assert "--sides s=INSIDE[/OUTSIDE]" in err


def test_export_refuses_what_sbml_core_cannot_hold(tmp_path, capsys):
    run = tmp_path / "run.toml"
    run.write_text(
        '[mesh]\nshape = "disk"\nradius = 2\nsize = 0.5\n[time]\nend = 1\ndt = 0.1\n'
        '[species.c]\ncompartment = "cytosol"\n'
        '[reactions.source]\nequation = "-> c"\nrate = "exp(-x**2)"\n'
    )
    out = tmp_path / "m.ant"
    assert main(["export", str(run), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "x, y or z" in err and "\n" not in err and not out.exists()
    assert main(["export", str(run), "-o", str(tmp_path / "m.xml")]) == 0  # x: a parameter
    assert main(["export", str(tmp_path / "absent.toml"), "-o", str(tmp_path / "n.xml")]) == 2
    assert "does not exist" in capsys.readouterr().err
