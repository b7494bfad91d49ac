"""polarity import: an Antimony cascade runs to its well-mixed ODE, units convert, and
the sides, overlays, Level 2 models and SBML-spatial diffusion coefficients are read."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

libsbml = pytest.importorskip("libsbml")
pytest.importorskip("antimony")

from solver import config  # noqa: E402
from solver.cli.app import main  # noqa: E402

# A -> B (binding to the membrane, per area), B -> C (release), C -> (decay), A + C ->
CASCADE = """
model cascade
  unit um3 = (1e-6 metre)^3
  unit um2 = (1e-6 metre)^2
  unit uM = 1e-6 mole / litre
  unit substance = 1e-21 mole
  unit per_s = 1 / second
  unit um_per_s = 1e-6 metre / second
  unit per_uM_s = litre / (1e-6 mole * second)
  compartment cytosol = 1000 um3
  compartment membrane = 480 um2
  species A in cytosol = 2 uM
  species B in membrane = 0.5
  species C in cytosol = 0 uM
  J1: A -> B; k1*A*membrane
  J2: B -> C; k2*B*membrane
  J3: C -> ; k3*C*cytosol
  J4: A + C -> ; k4*A*C*cytosol
  k1 = 0.3 um_per_s
  k2 = 0.5 per_s
  k3 = 0.2 per_s
  k4 = 0.1 per_uM_s
end
"""
K1, K2, K3, K4 = 0.3, 0.5, 0.2, 0.1  # um/s, 1/s, 1/s, 1/(uM s)
A0, B0, C0 = 2.0, 0.5, 0.0  # uM, uM*um, uM


def well_mixed(volume: float, area: float, times: np.ndarray) -> np.ndarray:
    """The SBML model's ODE in amounts (d(A V)/dt = -k1 A S - k4 A C V, ...), as
    concentrations at ``times``: scipy's solve_ivp if present, else classic RK4."""

    def rhs(_t: float, u: np.ndarray) -> np.ndarray:
        a, b, c = u[0] / volume, u[1] / area, u[2] / volume
        j1, j2, j3, j4 = K1 * a * area, K2 * b * area, K3 * c * volume, K4 * a * c * volume
        return np.array([-j1 - j4, j1 - j2, j2 - j3 - j4])

    u0 = np.array([A0 * volume, B0 * area, C0 * volume])
    try:
        from scipy.integrate import solve_ivp
    except ImportError:
        out, u, t, h = [u0], u0.copy(), 0.0, 1e-3
        for target in times[1:]:
            while t < target - 1e-12:
                step = min(h, target - t)
                k1 = rhs(t, u)
                k2 = rhs(t + step / 2, u + step / 2 * k1)
                k3 = rhs(t + step / 2, u + step / 2 * k2)
                k4 = rhs(t + step, u + step * k3)
                u, t = u + step / 6 * (k1 + 2 * k2 + 2 * k3 + k4), t + step
            out.append(u.copy())
        amounts = np.array(out)
    else:
        solution = solve_ivp(rhs, (0, times[-1]), u0, t_eval=times, rtol=1e-12, atol=1e-14)
        amounts = solution.y.T
    return amounts / np.array([volume, area, volume])


def test_an_antimony_cascade_runs_to_its_well_mixed_ode(tmp_shared):
    from solver import read_results, run_case

    model, overlay, run = (
        tmp_shared / "cascade.ant",
        tmp_shared / "fast.toml",
        tmp_shared / "run.toml",
    )
    model.write_text(CASCADE)
    fast = "1e5 um^2/s"  # the flux through the membrane leaves no gradient (k1 R / D ~ 1e-5)
    overlay.write_text(f'[diffusion]\nA = "{fast}"\nB = "{fast}"\nC = "{fast}"\n')
    sets = ["--set", "time.end=4", "--set", "time.adaptive=false", "--set", "output.every=1"]
    sets += ["--set", "time.dt=0.005"]
    code = main(
        ["import", str(model), "--mesh", "disk", "--overlay", str(overlay), "-o", str(run), *sets]
    )
    assert code == 0
    cfg = config.load(run)
    assert cfg.mesh.shape == "disk" and cfg.mesh["radius"] == pytest.approx(
        2 * 1000 / 480, rel=1e-5
    )
    rates = {n: r.rate.text for n, r in cfg.model.reactions.items()}
    assert rates == {"J1": "k1 * A", "J2": "k2 * B", "J3": "k3 * C", "J4": "k4 * A * C"}
    assert {n: r.location for n, r in cfg.model.reactions.items()} == {
        "J1": "membrane",
        "J2": "membrane",
        "J3": "cytosol",
        "J4": "cytosol",
    }
    result = run_case(run, tmp_shared / "out")
    assert result.status == "completed"
    metrics = read_results(tmp_shared / "out").metrics
    times = np.asarray(metrics["t"], float)
    volume = metrics["total_A"][0] / A0  # the mesh's |cytosol| and |membrane|
    area = metrics["total_B"][0] / B0
    assert volume / area == pytest.approx(1000 / 480, rel=0.01)  # the SBML model's V/S
    expected = well_mixed(volume, area, times)
    measured = np.column_stack(
        [
            np.asarray(metrics[f"total_{s}"], float) / m
            for s, m in (("A", volume), ("B", area), ("C", volume))
        ]
    )
    error = np.abs(measured - expected).max() / np.abs(expected).max()
    print(f"cascade: largest difference from the well-mixed ODE {error:.1e} (of the largest value)")
    assert error <= 1e-5
    assert expected[-1, 2] > 0.05  # C was made and decays: every reaction acted


def sbml_two_ways(tmp_path: Path) -> tuple[Path, Path]:
    """The cascade in mole, litre, m^2, second and in molecules, um^3, um^2, minutes."""
    files = []
    for variant in ("molar", "molecules"):
        doc = libsbml.SBMLDocument(3, 2)
        m = doc.createModel()
        m.setId(variant)

        def unit(uid, *parts, m=m):
            d = m.createUnitDefinition()
            d.setId(uid)
            for kind, exponent, scale, multiplier in parts:
                u = d.createUnit()
                u.setKind(kind)
                u.setExponent(exponent)
                u.setScale(scale)
                u.setMultiplier(multiplier)
            return uid

        L = libsbml
        if variant == "molar":
            substance = unit("substance_", (L.UNIT_KIND_MOLE, 1, 0, 1))
            volume = unit("vol", (L.UNIT_KIND_LITRE, 1, 0, 1))
            area = unit("ar", (L.UNIT_KIND_METRE, 2, 0, 1))
            time = "second"
            sizes = (1e-12, 4.8e-10)  # 1000 um^3 in litres, 480 um^2 in m^2
            a0, b0 = 2e-6, 0.5e-9  # mol/l, mol/m^2
            k1 = ("m_per_s", (L.UNIT_KIND_METRE, 1, 0, 1), (L.UNIT_KIND_SECOND, -1, 0, 1)), 0.3e-6
            k4 = (
                (
                    "l_per_mol_s",
                    (L.UNIT_KIND_LITRE, 1, 0, 1),
                    (L.UNIT_KIND_MOLE, -1, 0, 1),
                    (L.UNIT_KIND_SECOND, -1, 0, 1),
                ),
                0.1e6,
            )
            k2 = ("per_s", (L.UNIT_KIND_SECOND, -1, 0, 1)), 0.5
        else:
            substance = unit("molecules", (L.UNIT_KIND_ITEM, 1, 0, 1))
            volume = unit("um3", (L.UNIT_KIND_METRE, 3, -6, 1))
            area = unit("um2", (L.UNIT_KIND_METRE, 2, -6, 1))
            time = unit("minute", (L.UNIT_KIND_SECOND, 1, 0, 60))
            sizes = (1000.0, 480.0)
            na = 602.214076  # molecules per uM um^3
            a0, b0 = 2 * na, 0.5 * na  # molecules/um^3, molecules/um^2
            k1 = (
                ("um_per_min", (L.UNIT_KIND_METRE, 1, -6, 1), (L.UNIT_KIND_SECOND, -1, 0, 60)),
                0.3 * 60,
            )
            k4 = (
                (
                    "um3_per_molecule_min",
                    (L.UNIT_KIND_METRE, 3, -6, 1),
                    (L.UNIT_KIND_ITEM, -1, 0, 1),
                    (L.UNIT_KIND_SECOND, -1, 0, 60),
                ),
                0.1 * 60 / na,
            )
            k2 = ("per_min", (L.UNIT_KIND_SECOND, -1, 0, 60)), 0.5 * 60
        m.setSubstanceUnits(substance)
        m.setExtentUnits(substance)
        m.setTimeUnits(time)
        m.setVolumeUnits(volume)
        m.setAreaUnits(area)
        for cid, dims, size in (("cell", 3, sizes[0]), ("pm", 2, sizes[1])):
            c = m.createCompartment()
            c.setId(cid)
            c.setSpatialDimensions(dims)
            c.setSize(size)
            c.setConstant(True)
        for sid, cid, value in (("A", "cell", a0), ("B", "pm", b0), ("C", "cell", 0.0)):
            s = m.createSpecies()
            s.setId(sid)
            s.setCompartment(cid)
            s.setInitialConcentration(value)
            s.setHasOnlySubstanceUnits(False)
            s.setBoundaryCondition(False)
            s.setConstant(False)
        for pid, ((uid, *parts), value) in (("k1", k1), ("k2", k2), ("k4", k4)):
            unit(uid, *parts)
            p = m.createParameter()
            p.setId(pid)
            p.setValue(value)
            p.setUnits(uid)
            p.setConstant(True)
        for rid, left, right, law in (
            ("J1", ["A"], ["B"], "k1*A*pm"),
            ("J2", ["B"], ["C"], "k2*B*pm"),
            ("J4", ["A", "C"], [], "k4*A*C*cell"),
        ):
            r = m.createReaction()
            r.setId(rid)
            r.setReversible(False)
            for sid in left:
                ref = r.createReactant()
                ref.setSpecies(sid)
                ref.setStoichiometry(1)
                ref.setConstant(True)
            for sid in right:
                ref = r.createProduct()
                ref.setSpecies(sid)
                ref.setStoichiometry(1)
                ref.setConstant(True)
            r.createKineticLaw().setMath(libsbml.parseL3Formula(law))
        path = tmp_path / f"{variant}.xml"
        libsbml.writeSBMLToFile(doc, str(path))
        files.append(path)
    return files[0], files[1]


@pytest.mark.serial
def test_mole_litre_second_and_molecules_per_um2_give_the_same_run_file_values(tmp_path):
    molar, molecules = sbml_two_ways(tmp_path)
    runs = []
    for path in (molar, molecules):
        assert main(["import", str(path), "-o", str(path.with_suffix(".toml"))]) == 0
        runs.append(config.load(path.with_suffix(".toml")))
    a, b = (r.model for r in runs)
    assert a.parameters.keys() == b.parameters.keys() == {"k1", "k2", "k4"}
    for name in a.parameters:
        assert a.parameters[name] == pytest.approx(b.parameters[name], rel=1e-12), name
    assert a.parameters == pytest.approx({"k1": 0.3, "k2": 0.5, "k4": 0.1}, rel=1e-12)
    for name in ("A", "B", "C"):
        assert a.species[name].initial == pytest.approx(b.species[name].initial, rel=1e-12, abs=0)
    assert a.species["A"].initial == pytest.approx(2.0) and a.species["B"].initial == pytest.approx(
        0.5
    )
    for name in a.reactions:
        assert a.reactions[name].rate.text == b.reactions[name].rate.text
    written = [tomllib.loads(p.with_suffix(".toml").read_text()) for p in (molar, molecules)]
    for one, other in zip(
        written[0]["parameters"].values(), written[1]["parameters"].values(), strict=True
    ):
        assert one.split()[1:] == other.split()[1:]  # the same units
        assert float(one.split()[0]) == pytest.approx(float(other.split()[0]), rel=1e-12)


@pytest.mark.serial
def test_sides_overlay_and_a_level_2_model(tmp_path):
    doc = libsbml.SBMLDocument(2, 4)
    m = doc.createModel()
    m.setId("nested")
    for cid, dims, size, outside in (
        ("ext", 3, 1e-11, ""),
        ("pm", 2, 4.8e-10, "ext"),
        ("cyt", 3, 1e-12, "pm"),
    ):
        c = m.createCompartment()
        c.setId(cid)
        c.setSpatialDimensions(dims)
        c.setSize(size)
        if outside:
            c.setOutside(outside)
    for sid, cid in (("L", "ext"), ("R", "pm"), ("X", "cyt")):
        s = m.createSpecies()
        s.setId(sid)
        s.setCompartment(cid)
        s.setInitialConcentration(1e-6 if cid != "pm" else 1e-9)
    p = m.createParameter()
    p.setId("k")
    p.setValue(1e-6)
    p.setUnits("metre_per_second")
    d = m.createUnitDefinition()
    d.setId("metre_per_second")
    for kind, e in ((libsbml.UNIT_KIND_METRE, 1), (libsbml.UNIT_KIND_SECOND, -1)):
        u = d.createUnit()
        u.setKind(kind)
        u.setExponent(e)
    r = m.createReaction()
    r.setId("uptake")
    r.setReversible(False)
    r.createReactant().setSpecies("L")
    r.createProduct().setSpecies("X")
    r.createModifier().setSpecies("R")
    r.createKineticLaw().setMath(libsbml.parseL3Formula("k*L*pm"))
    path = tmp_path / "nested.xml"
    libsbml.writeSBMLToFile(doc, str(path))
    mesh = tmp_path / "cell.msh"
    mesh.write_text("a mesh file\n")  # the import checks that it exists; it is read by runs
    out = tmp_path / "nested.toml"
    assert main(["import", str(path), "-o", str(out)]) == 2  # three compartments: a mesh file
    assert not out.exists()
    assert main(["import", str(path), "--mesh", str(mesh), "-o", str(out)]) == 0
    data = tomllib.loads(out.read_text())
    assert data["compartments"]["pm"] == {"kind": "surface", "inside": "cyt", "outside": "ext"}
    assert data["reactions"]["uptake"] == {"equation": "L -> X", "rate": "k * L"}
    assert data["parameters"]["k"] == "1 um/s"
    overlay = tmp_path / "overlay.toml"
    overlay.write_text(
        '[diffusion]\nL = "100 um^2/s"\n[species.X]\nD = 5\ndescription = "product"\n'
    )
    assert (
        main(
            [
                "import",
                str(path),
                "--mesh",
                str(mesh),
                "--overlay",
                str(overlay),
                "--sides",
                "pm=cyt/ext",
                "--set",
                "species.R.D=0.1",
                "-o",
                str(out),
                "--overwrite",
            ]
        )
        == 0
    )
    species = tomllib.loads(out.read_text())["species"]
    assert species["L"]["D"] == "100 um^2/s" and species["X"]["D"] == 5 and species["R"]["D"] == 0.1
    assert species["X"]["description"] == "product"
    assert "no diffusion coefficient" not in out.read_text()


@pytest.mark.serial
def test_a_diffusion_coefficient_of_sbml_spatial(tmp_path):
    ns = libsbml.SBMLNamespaces(3, 1, "spatial", 1)
    doc = libsbml.SBMLDocument(ns)
    doc.setPackageRequired("spatial", True)
    m = doc.createModel()
    m.setId("spatial")
    for cid, dims in (("cytosol", 3), ("membrane", 2)):
        c = m.createCompartment()
        c.setId(cid)
        c.setSpatialDimensions(dims)
        c.setSize(1.0)
        c.setConstant(True)
    s = m.createSpecies()
    s.setId("A")
    s.setCompartment("cytosol")
    s.setInitialConcentration(1.0)
    s.setHasOnlySubstanceUnits(False)
    s.setBoundaryCondition(False)
    s.setConstant(False)
    p = m.createParameter()
    p.setId("D_A")
    p.setValue(7.5)
    p.setConstant(True)
    coefficient = p.getPlugin("spatial").createDiffusionCoefficient()
    coefficient.setVariable("A")
    coefficient.setType(libsbml.SPATIAL_DIFFUSIONKIND_ISOTROPIC)
    path = tmp_path / "spatial.xml"
    libsbml.writeSBMLToFile(doc, str(path))
    out = tmp_path / "spatial.toml"
    assert main(["import", str(path), "-o", str(out)]) == 0
    assert config.load(out).model.species["A"].D == pytest.approx(7.5)


@pytest.mark.serial
def test_a_kinetic_law_becomes_a_rate_per_volume_or_area(tmp_path):
    """The law's compartment factor is taken out where it multiplies every term; elsewhere
    the law is divided by the size; an amount (substanceOnly) is its concentration times
    the size; a local parameter gets a name of its own."""
    text = """model m
  unit um3 = (1e-6 metre)^3
  compartment cell = 2 um3
  species A in cell = 3, B in cell = 0
  substanceOnly species N in cell = 4
  J1: A -> B; cell*(k*A - k2*B)
  J2: A -> ; k*A
  J3: N -> ; k*N
  k = 0.5; k2 = 0.25
end
"""
    model, out = tmp_path / "laws.ant", tmp_path / "laws.toml"
    model.write_text(text)
    assert main(["import", str(model), "-o", str(out)]) == 0
    cfg = config.load(out)
    rates = {n: r.rate.text for n, r in cfg.model.reactions.items()}
    assert rates["J1"] == "k * A - k2 * B"
    assert rates["J2"] == "k * A / size_cell"
    assert rates["J3"] == "k * N"  # k*(N*size_cell)/size_cell
    assert cfg.model.parameters["size_cell"] == pytest.approx(2.0)
    assert cfg.model.species["N"].initial == pytest.approx(2.0)  # 4 in a cell of 2 um^3
    doc = libsbml.readSBMLFromString(__import__("antimony").getSBMLString("m"))
    law = doc.getModel().getReaction("J2").getKineticLaw()
    local = law.createLocalParameter()
    local.setId("k")  # shadows the global k
    local.setValue(0.7)
    law.setMath(libsbml.parseL3Formula("k*A*cell"))
    libsbml.writeSBMLToFile(doc, str(tmp_path / "local.xml"))
    assert main(["import", str(tmp_path / "local.xml"), "-o", str(out), "--overwrite"]) == 0
    cfg = config.load(out)
    assert cfg.model.reactions["J2"].rate.text == "J2_k * A"
    assert cfg.model.parameters["J2_k"] == pytest.approx(0.7)
    assert cfg.model.parameters["k"] == pytest.approx(0.5)
