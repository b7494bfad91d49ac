"""What every figure of ``polarity plot`` shares: sizes, formats, labels and units.

Figures have a fixed size in pixels (:data:`SIZES`) and are written as PNG, and as
vector graphics (PDF, SVG) on request. Labels name a field, with its description
when the run file gives one, and its unit: the species' declared unit, else µM for
cytosol species and µM·µm for membrane surface densities; none for dimensionless ones
(``"PIP3 (P), µM"``, ``"Rac-GTP (Rac_m), µM·µm"``, ``"local excitor (E)"``, ``"c (µM)"``).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from solver.errors import InputError

DPI = 100
#: width × height in pixels of each kind of figure
SIZES = {
    "readouts": (1200, 900),
    "kymograph": (900, 600),
    "membrane": (1500, 620),  # 3-D: side view with the gradient, front and back
    "membrane_2d": (800, 700),
    "compartment": (520, 460),  # per panel (one per species; at most 3 in a row)
}
#: the formats ``--format`` takes; PNG always works, the others are vector graphics
FORMATS = ("png", "pdf", "svg")
UNITS = {"uM": "µM", "uM*um": "µM·µm", "1": ""}
_SUPERSCRIPTS = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def require(module: str) -> ModuleType:
    """Import ``module`` of the ``plot`` extra, or say how to install it (InputError)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(
            "polarity plot", f"needs {module.split('.')[0]}: pip install 'polarity-solver[plot]'"
        ) from None


def pretty(unit: str) -> str:
    """An ASCII unit of run.json as it is printed: ``uM*um**2/s`` -> ``µM·µm²/s``; "1" -> ""."""
    if unit in UNITS:
        return UNITS[unit]
    text = unit.replace("uM", "µM").replace("um", "µm").replace("*", "·")
    text = re.sub(r"·?·(-?\d+)", lambda m: m.group(1).translate(_SUPERSCRIPTS), text)
    return re.sub(r"\^(-?\d+)", lambda m: m.group(1).translate(_SUPERSCRIPTS), text)


def units_of(record: dict[str, Any], name: str) -> str:
    """Display units of an output field: µM, µM·µm, a declared unit, or "" if dimensionless."""
    fields = record.get("fields", {})
    if name in fields:
        return pretty(str(fields[name].get("units", "?")))
    species = record.get("resolved", {}).get("species", {})
    if name in species:
        return "µM" if species[name].get("compartment") == "cytosol" else "µM·µm"
    return "" if name.endswith("_occupancy") else "µM"


def total_units_of(record: dict[str, Any], name: str) -> str:
    """Display units of ``total_<name>`` (a species) or ``pool_<name>`` (amount·volume)."""
    field = record.get("fields", {}).get(name, {})
    if "total_units" in field:
        return pretty(str(field["total_units"]))
    dim = record.get("mesh", {}).get("dim", 3)
    return f"µM·µm{'³' if dim == 3 else '²'}"


def name_of(record: dict[str, Any], name: str) -> str:
    """``"PIP3 (P)"`` for a species with a description, else ``"P"``."""
    described = _description(record, name)
    return f"{described} ({name})" if described else name


def label_of(record: dict[str, Any], name: str) -> str:
    """``"PIP3 (P), µM"`` with a description, else ``"P (µM)"``; no unit if dimensionless."""
    unit = units_of(record, name)
    described = _description(record, name)
    if described:
        return f"{described} ({name}), {unit}" if unit else f"{described} ({name})"
    return f"{name} ({unit})" if unit else name


def _description(record: dict[str, Any], name: str) -> str:
    """The ``description`` of species ``name`` in the run file of ``record``, or ""."""
    species = record.get("config", {}).get("species", {})
    table = species.get(name) if isinstance(species, dict) else None
    text = table.get("description", "") if isinstance(table, dict) else ""
    return " ".join(text.split()) if isinstance(text, str) else ""


def case_name(record: dict[str, Any]) -> str:
    """A short name of the run: its run file's folder (``chemotaxis_2d``), else its stem."""
    source = Path(str(record.get("source", "run")))
    return source.parent.name if source.stem == "config" and source.parent.name else source.stem


def figure(kind: str, **options: Any) -> Any:
    """A new matplotlib figure of the size of ``kind`` (not attached to any screen)."""
    require("matplotlib")
    from matplotlib.figure import Figure

    w, h = SIZES[kind]
    return Figure(figsize=(w / DPI, h / DPI), dpi=DPI, **options)


def save(fig: Any, path: Path, formats: Sequence[str] = ("png",)) -> list[Path]:
    """Write ``fig`` as ``path`` with each suffix of ``formats``; the files written."""
    written = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        fig.savefig(target, dpi=DPI)  # no tight bounding box: the size stays SIZES[kind]
        written.append(target)
    return written
