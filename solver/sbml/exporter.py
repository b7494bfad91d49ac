"""``polarity export``: the reaction network of a run file as SBML Level 3 Version 2 core.

Every number is the run file's, in the solver's units declared as SBML units: the
model's substance is the zeptomole (1 µM·µm³), lengths are micrometres, times seconds,
so a volume species' concentration is in µM and a surface species' in µM·µm (zmol/µm²).
A species of another declared unit keeps its numbers: one in ``"1"`` has a
dimensionless substance, one in ``"uM"`` on a surface the model's (its unit is in the
annotation); libsbml's unit checks warn about the reactions that change them.

* Compartments: volumes (spatialDimensions 3, µm³) and surfaces (2, µm²), sized as the
  mesh's (a 2-D mesh per µm of depth; a mesh file's sizes are not known here: 1).
* Reactions: the kinetic law is the rate times the size of the compartment the
  reaction is integrated over (an amount per time, as SBML wants), and the reaction's
  ``compartment`` names it.
* Definitions: parameters set by assignment rules.
* Stimuli: a parameter holding the stimulus at the cell's centre (its mean), and its
  occupancy as an assignment rule ``c/(c + K_D)``: the well-mixed limit of the model.
* Diffusion coefficients, descriptions, spatial initial values and the run file's other
  tables travel in annotations (:mod:`solver.sbml.annotation`), so that
  ``polarity import`` of the export gives the run file's model back.

The document is checked with libsbml's consistency checks (units included) before it
is written; a rate or definition that uses ``x``, ``y`` or ``z`` has no SBML core form
and is refused.
"""

from __future__ import annotations

import ast
import copy
import math
import os
import re
from pathlib import Path
from typing import Any

from solver.config import units
from solver.config.runfile import RunConfig, load
from solver.errors import InputError
from solver.model.dimensions import AMOUNT, LENGTH, Dim
from solver.model.model import Kind
from solver.sbml import annotation, toml_text
from solver.sbml.document import ANTIMONY_SUFFIXES, EXTRA, error_count, libsbml, one_line
from solver.sbml.mathml import MathError, to_mathml
from solver.sbml.unitdefs import AREA, VOLUME, definition_units, unit_id

_KEPT = ("mesh", "time", "output", "stimulus", "metrics", "solver", "limits")


def export_model(
    config: str | Path,
    out: str | Path,
    overrides: list[str] | None = None,
    overlay: str | Path | None = None,
) -> tuple[int, int]:
    """Write the SBML of the run file ``config`` to ``out``; (errors, warnings) of the check.

    ``out`` ending in ``.ant`` gives Antimony instead (without the annotations: the
    run file's tables that SBML core lacks go to ``overlay``, a file for
    ``polarity import MODEL.ant --overlay``).

    Raises:
        InputError: the run file is invalid, holds what SBML core cannot, or ``out``
            cannot be written.
    """
    cfg = load(config, overrides or [])
    doc = Exporter(cfg, Path(config), Path(out)).document()
    L = libsbml()
    text = L.writeSBMLToString(doc)
    antimony = Path(out).suffix.lower() in ANTIMONY_SUFFIXES
    check = L.readSBMLFromString(text)
    errors, warnings = error_count(check)
    if errors:
        first = next(
            check.getError(i)
            for i in range(check.getNumErrors())
            if check.getError(i).getSeverity() in (L.LIBSBML_SEV_ERROR, L.LIBSBML_SEV_FATAL)
        )
        raise InputError(
            str(config), f"the SBML of this run file is not valid: {one_line(first.getMessage())}"
        )
    if antimony:
        if any(doc.getModel().getParameter(c) is not None for c in ("x", "y", "z")):
            raise InputError(
                str(config), "its rates use x, y or z, which Antimony cannot mark: export SBML"
            )
        text = _antimony(text, Path(config), Path(overlay) if overlay else None)
    files = [(Path(out), text)]
    if overlay is not None:
        files.append((Path(overlay), overlay_text(cfg, Path(config), Path(out))))
    for path, content in files:
        _write(path, content)
    return errors, warnings


def _write(out: Path, text: str) -> None:
    if out.is_dir():
        raise InputError(str(out), "is a folder; -o names the file to write")
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, out)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise InputError(str(out), f"cannot write the file: {err.strerror or err}") from None


def _antimony(sbml: str, config: Path, overlay: Path | None) -> str:
    """The Antimony text of an SBML text, with a header that says how to import it."""
    try:
        import antimony
    except ImportError:
        raise InputError(
            "polarity export", f"Antimony needs the antimony package: {EXTRA}"
        ) from None
    antimony.clearPreviousLoads()
    if antimony.loadSBMLString(sbml) < 0:
        raise InputError(str(config), f"Antimony: {one_line(antimony.getLastError())}")
    text = antimony.getAntimonyString(antimony.getMainModuleName())
    where = f" --overlay {overlay.name}" if overlay is not None else ""
    header = [
        f"// The reaction network of {config.parent.name}/{config.name}, by polarity export.",
        "// Units: um, s, uM (volumes), uM*um (surfaces); rates times compartment sizes.",
        "// Diffusion, stimuli, the mesh and the time are not Antimony's: they are in the",
        f"// overlay. Import: polarity import THIS.ant{where} -o config.toml",
    ]
    lines = [line for line in text.splitlines() if not line.startswith("// Created by")]
    return "\n".join(header + lines).rstrip() + "\n"


def overlay_text(cfg: RunConfig, config: Path, out: Path) -> str:
    """The run file's tables SBML core lacks, as an overlay of ``polarity import``."""
    document = cfg.document
    kept: dict[str, Any] = {k: copy.deepcopy(v) for k, v in document.items() if k in _KEPT}
    if isinstance(kept.get("mesh"), dict) and kept["mesh"].get("file"):
        path = (Path(cfg.base_dir) / str(kept["mesh"]["file"])).resolve()
        kept["mesh"]["file"] = os.path.relpath(path, out.resolve().parent)
    if "compartments" in document:
        kept["compartments"] = copy.deepcopy(document["compartments"])
    species: dict[str, Any] = {}
    for name, table in document.get("species", {}).items():
        extra = {k: table[k] for k in ("description", "unit", "D", "noise") if k in table}
        extra.setdefault("D", 0)
        initial = cfg.model.species[name].initial
        if not isinstance(initial, float | int) and initial.names & {"x", "y", "z", "t"}:
            extra["initial"] = table["initial"]
        if extra:
            species[name] = extra
    ordered: dict[str, Any] = {}
    ordered |= {k: kept[k] for k in ("mesh", "time", "output", "compartments") if k in kept}
    ordered |= {k: kept[k] for k in ("stimulus",) if k in kept}
    ordered["species"] = species
    ordered |= {k: kept[k] for k in ("metrics", "solver", "limits") if k in kept}
    header = [
        f"What SBML core and Antimony cannot hold of {config.parent.name}/{config.name}:",
        "its mesh, times, stimuli, diffusion coefficients and read-outs. Written by polarity",
        f"export; read by polarity import {out.name} --overlay THIS.",
    ]
    return toml_text.dumps(ordered, header=header)


def _sid(name: str, where: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise InputError(where, f"'{name}' is no SBML id (ASCII letters, digits and '_')")
    return name


class Exporter:
    """Builds the SBML document of one validated run file."""

    def __init__(self, cfg: RunConfig, path: Path, out: Path) -> None:
        self.cfg = cfg
        self.path = path
        self.out = out
        self.L = libsbml()
        self.units: set[str] = set()

    def unit(self, dim: Dim) -> str:
        """The id of the unit definition of ``dim`` (made on first use)."""
        uid = unit_id(dim)
        if uid in ("dimensionless", "second") or uid in self.units:
            return uid
        definition = self.model.createUnitDefinition()
        definition.setId(uid)
        for kind, exponent, scale in definition_units(dim):
            u = definition.createUnit()
            u.setKind(self.L.UnitKind_forName(kind))
            u.setExponent(float(exponent))
            u.setScale(scale)
            u.setMultiplier(1.0)
        self.units.add(uid)
        return uid

    def document(self) -> Any:
        """The SBML document of the run file."""
        L, cfg = self.L, self.cfg
        doc = L.SBMLDocument(3, 2)
        m = self.model = doc.createModel()
        model_id = re.sub(r"\W", "_", self.path.resolve().parent.name or "model")
        model_id = model_id if model_id[:1].isalpha() else f"m_{model_id}"
        taken = set(cfg.model.species) | set(cfg.model.reactions) | set(cfg.model.declared)
        taken |= set(cfg.model.parameters) | set(cfg.document.get("definitions", {}))
        m.setId(f"{model_id}_model" if model_id in taken else model_id)
        m.setName(f"{self.path.parent.name}/{self.path.name}")
        m.setSubstanceUnits(self.unit(AMOUNT))
        m.setExtentUnits(self.unit(AMOUNT))
        m.setTimeUnits("second")
        m.setVolumeUnits(self.unit(VOLUME))
        m.setAreaUnits(self.unit(AREA))
        m.setLengthUnits(self.unit(LENGTH))
        kept = {k: v for k, v in cfg.document.items() if k in _KEPT}
        if isinstance(kept.get("mesh"), dict) and kept["mesh"].get("file"):
            mesh = dict(kept["mesh"])  # relative to the SBML file
            path = Path(cfg.base_dir) / str(mesh["file"])
            mesh["file"] = os.path.relpath(path.resolve(), self.out.resolve().parent)
            kept["mesh"] = mesh
        annotation.write(m, "run", {}, toml_text.dumps(kept))
        self.compartments()
        self.coordinates()
        self.parameters()
        self.stimuli()
        self.species()
        self.definitions()
        self.reactions()
        return doc

    def math(self, text: str, where: str) -> Any:
        """The MathML of a run-file expression; InputError at ``where``."""
        try:
            return to_mathml(str(text), coordinates=True)
        except MathError as err:
            raise InputError(f"{self.path}: {where}", err.message) from None

    def compartments(self) -> None:
        """Compartments: volumes and surfaces, sized as the mesh's."""
        sizes = _sizes(self.cfg)
        for c in self.cfg.model.declared.values():
            sbml = self.model.createCompartment()
            sbml.setId(_sid(c.name, f"compartments.{c.name}"))
            sbml.setConstant(True)
            surface = c.kind is Kind.SURFACE
            sbml.setSpatialDimensions(2 if surface else 3)
            sbml.setUnits(self.unit(AREA if surface else VOLUME))
            sbml.setSize(sizes.get(c.name, 1.0))
            if surface:
                annotation.write(sbml, "compartment", {"inside": c.inside, "outside": c.outside})

    def coordinates(self) -> None:
        """``x``, ``y``, ``z`` of rates and definitions: parameters at the centre (0 µm)."""
        texts = [str(t.get("rate", "")) for t in self.cfg.document.get("reactions", {}).values()]
        texts += [str(t) for t in self.cfg.document.get("definitions", {}).values()]
        used = set().union(*(ast_names(t) for t in texts if t)) if texts else set()
        for name in ("x", "y", "z"):
            if name not in used:
                continue
            p = self.model.createParameter()
            p.setId(name)
            p.setConstant(True)
            p.setValue(0.0)
            p.setUnits(self.unit(LENGTH))
            annotation.write(p, "parameter", {"coordinate": name})

    def parameters(self) -> None:
        """Parameters: values in solver units, units where the run file gives one."""
        written = self.cfg.document.get("parameters", {})
        for name, value in self.cfg.model.parameters.items():
            p = self.model.createParameter()
            p.setId(_sid(name, f"parameters.{name}"))
            p.setConstant(True)
            p.setValue(value)
            raw = written.get(name, value)
            dim = units.dimension_of(raw) if isinstance(raw, str) else None
            if dim is not None:
                p.setUnits(self.unit(dim))
            annotation.write(p, "parameter", {"value": str(raw)})

    def stimuli(self) -> None:
        """Stimuli: a parameter at the stimulus' mean, its occupancy a rule."""
        for name, s in self.cfg.model.stimuli.items():
            p = self.model.createParameter()
            p.setId(_sid(name, f"stimulus.{name}"))
            p.setConstant(True)
            if s.expression is None:
                p.setValue(s.mean)
                p.setUnits(self.unit(AMOUNT / VOLUME))
            else:
                p.setValue(_at_origin(s.expression, self.cfg.model.parameters))
            annotation.write(p, "parameter", {"stimulus": name})
            if s.K_D is None:
                continue
            occupancy = self.model.createParameter()
            occupancy.setId(f"{name}_occupancy")
            occupancy.setConstant(False)
            occupancy.setUnits("dimensionless")
            annotation.write(occupancy, "parameter", {"occupancy": name})
            rule = self.model.createAssignmentRule()
            rule.setVariable(f"{name}_occupancy")
            math_ = self.math(f"{name}/({name} + {s.K_D!r})", f"stimulus.{name}.K_D")
            _units_of_numbers(math_, self.unit(AMOUNT / VOLUME))
            rule.setMath(math_)

    def species(self) -> None:
        """Species: compartment, initial value, and what SBML lacks in the annotation."""
        written = self.cfg.document.get("species", {})
        for name, s in self.cfg.model.species.items():
            sp = self.model.createSpecies()
            sp.setId(_sid(name, f"species.{name}"))
            sp.setCompartment(s.compartment)
            sp.setHasOnlySubstanceUnits(False)
            sp.setBoundaryCondition(False)
            sp.setConstant(False)
            if s.unit == "1":  # numbers: a dimensionless substance, its concentration the number
                sp.setSubstanceUnits("dimensionless")
            table = written.get(name, {})
            extra = {k: str(table[k]) for k in ("D", "description", "noise", "unit") if k in table}
            extra.setdefault("D", "0")  # said, so that the import does not ask for it
            initial = s.initial
            if isinstance(initial, float | int):
                sp.setInitialConcentration(float(initial))
                extra["value"] = str(table.get("initial", initial))
            elif initial.names & {"x", "y", "z", "t"}:
                value = _at_origin(initial, self.cfg.model.parameters)
                sp.setInitialConcentration(value)
                extra |= {"initial": initial.text, "at_origin": repr(value)}
            else:
                assignment = self.model.createInitialAssignment()
                assignment.setSymbol(name)
                assignment.setMath(self.math(initial.text, f"species.{name}.initial"))
            annotation.write(sp, "species", extra)

    def definitions(self) -> None:
        """Definitions: parameters set by assignment rules."""
        for name, text in self.cfg.document.get("definitions", {}).items():
            p = self.model.createParameter()
            p.setId(_sid(name, f"definitions.{name}"))
            p.setConstant(False)
            rule = self.model.createAssignmentRule()
            rule.setVariable(name)
            rule.setMath(self.math(str(text), f"definitions.{name}"))

    def reactions(self) -> None:
        """Reactions: stoichiometry, modifiers, and the rate times the compartment's size."""
        written = self.cfg.document.get("reactions", {})
        for name, reaction in self.cfg.model.reactions.items():
            r = self.model.createReaction()
            r.setId(_sid(name, f"reactions.{name}"))
            text = str(written.get(name, {}).get("rate", reaction.rate.text))
            r.setReversible(_net(text))
            r.setCompartment(reaction.location)
            for side, create in (
                (reaction.reactants, r.createReactant),
                (reaction.products, r.createProduct),
            ):
                for species, n in side.items():
                    ref = create()
                    ref.setSpecies(species)
                    ref.setStoichiometry(float(n))
                    ref.setConstant(True)
            for species in sorted(
                reaction.rate.names & set(self.cfg.model.species) - reaction.species
            ):
                r.createModifier().setSpecies(species)
            law = r.createKineticLaw()
            rate = self.math(text, f"reactions.{name}.rate")
            product = self.L.ASTNode(self.L.AST_TIMES)
            product.addChild(rate)
            size = self.L.ASTNode(self.L.AST_NAME)
            size.setName(reaction.location)
            product.addChild(size)
            law.setMath(product)


def _net(text: str) -> bool:
    """Whether a rate is a net flux (a difference of terms): a reversible reaction."""

    def net(node: ast.expr) -> bool:
        if not isinstance(node, ast.BinOp):
            return False
        if isinstance(node.op, ast.Sub):
            return True
        if isinstance(node.op, ast.Add | ast.Mult):
            return net(node.left) or net(node.right)
        return isinstance(node.op, ast.Div) and net(node.left)

    return net(ast.parse(text.strip(), mode="eval").body)


def ast_names(text: str) -> set[str]:
    """The names an expression's text uses."""
    return {n.id for n in ast.walk(ast.parse(text.strip(), mode="eval")) if isinstance(n, ast.Name)}


def _units_of_numbers(node: Any, unit: str) -> None:
    """Give the real numbers of a math tree the units ``unit`` (K_D of an occupancy)."""
    L = libsbml()
    if node.getType() in (L.AST_REAL, L.AST_INTEGER):
        node.setUnits(unit)
    for i in range(node.getNumChildren()):
        _units_of_numbers(node.getChild(i), unit)


def _at_origin(expression: Any, parameters: Any) -> float:
    """An expression's value at x = y = z = t = 0 (0 if it has none there)."""
    try:
        value = expression.evaluate({**parameters, "x": 0.0, "y": 0.0, "z": 0.0, "t": 0.0})
    except (ValueError, KeyError, ArithmeticError):
        return 0.0
    return float(value) if isinstance(value, float) and math.isfinite(value) else 0.0


def _sizes(cfg: RunConfig) -> dict[str, float]:
    """Volumes (µm³) and areas (µm²) of the compartments of a generated mesh."""
    from solver.mesh.catalog import SHAPE_DIM, measures

    spec = cfg.mesh
    if spec.shape not in SHAPE_DIM:
        return {}
    volume, area = measures(spec.shape, {k: v for k, v in spec.table.items() if k != "shape"})
    sizes = {"cytosol": volume, "membrane": area}
    inner = spec.table.get("inner") or {}
    outside = spec.table.get("outside")
    if inner or outside:
        from solver.mesh.bodies import bodies_from_tables

        center = spec.table.get("center") or (0.0, 0.0, 0.0)
        bodies, medium = bodies_from_tables(
            SHAPE_DIM[spec.shape], center, spec.table["size"], inner, outside
        )
        for body in bodies:
            v, a = body.measures()
            sizes[body.name] = v
            sizes[body.surface] = a
            sizes["cytosol"] -= v
        if medium is not None:
            v, a = medium.measures()
            sizes[medium.name] = v - volume
            sizes[medium.surface] = a
    return sizes
