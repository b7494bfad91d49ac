"""``polarity info OUT``: the summary of a finished, stopped or failed run.

:func:`summarize` collects status, model, mesh, ranks, wall time, steps and the final
read-outs from ``run.json`` and ``metrics.csv`` into one JSON-ready dictionary;
:func:`format_summary` turns it into the lines ``polarity info`` prints. Units:
times in s, totals in µM·µm^d (d the mesh dimension), angles in degrees.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from solver.io.compartments import DEFAULT, Compartment, compartments, is_default
from solver.io.metrics import load_metrics
from solver.io.results import load_record

READOUTS = ("PI", "angle", "FB", "loggain", "cap_fraction")
#: one line per read-out column of the table (definitions: docs/models.md, Polarity read-outs)
LEGEND = (
    "PI: polarisation index |∫u ν|/∫u (0 uniform; higher: more at one pole)",
    "angle: between the front direction and the gradient, in degrees (180: a back species)",
    "FB: mean over the front cap / mean over the back cap (caps of {cap}° about ±gradient)",
    "loggain: ln FB / ln FB of the receptor occupancy (> 1: the signal is amplified)",
    "cap_fraction: share of the membrane where u is above its mid-range",
)


def _finite(value: Any) -> float | None:
    """JSON has no NaN: undefined read-outs become None."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _drift(values: Any) -> float | None:
    """Largest relative change of a pool from its first value (None if it starts at 0)."""
    first = float(values[0])
    if first == 0 or not math.isfinite(first):
        return None
    return _finite(float(max(abs(float(v) - first) for v in values)) / abs(first))


def _total_units(s: dict[str, Any], name: str) -> str:
    """Units of a total (of species ``name``) or of a pool (``name`` empty)."""
    units = s.get("total_units", {})
    return str(units.get(name) or s["units"]["totals"])


def _cap_angle(config: Any) -> float:
    table = config.get("metrics", {}) if isinstance(config, dict) else {}
    angle = table.get("cap_angle", 15.0) if isinstance(table, dict) else 15.0
    return float(angle) if isinstance(angle, int | float) else 15.0


def summarize(out: Path) -> dict[str, Any]:
    """Everything ``polarity info`` reports about the output folder ``out``."""
    out = Path(out)
    record = load_record(out)
    metrics = load_metrics(out)
    resolved = record.get("resolved", {})
    config = record.get("config", {})
    stimuli = config.get("stimulus", {}) if isinstance(config, dict) else {}
    places = compartments(record)
    mesh = dict(record.get("mesh") or {})
    dim = mesh.get("dim")
    summary: dict[str, Any] = {
        "out": str(out),
        "status": record.get("status", "unknown"),
        "reason": record.get("reason") or None,
        "source": record.get("source"),
        "model": {
            "species": {c.name: list(c.species) for c in places.values()},
            "reactions": len(resolved.get("reactions", {})),
            "conserved_pools": list(resolved.get("conserved_pools", [])),
            "stimuli": {
                n: s.get("kind", "?") if isinstance(s, dict) else "?" for n, s in stimuli.items()
            },
        },
        "mesh": mesh,
        "mpi_ranks": record.get("mpi_ranks"),
        "unknowns": record.get("unknowns"),
        "t": record.get("t"),
        "end": resolved.get("time", {}).get("end"),
        "steps": record.get("steps"),
        "rejected_steps": record.get("rejected_steps", {}),
        "dt": record.get("dt", {}),
        "restarts": record.get("restarts", []),
        "wall_time": record.get("wall_time", {}),
        "versions": record.get("versions", {}),
        "units": {
            "time": "s",
            "totals": f"uM*um^{dim}" if dim else "uM*um^d",
            "angle": "degree",
        },
        "final": None,
        "milestones": record.get("milestones", {}),
        "cap_angle": _cap_angle(config),
        "total_units": {
            n: str(f["total_units"])
            for n, f in record.get("fields", {}).items()
            if isinstance(f, dict) and "total_units" in f
        },
    }
    if not is_default(record):
        summary["compartments"] = {c.name: _compartment(c) for c in places.values()}
    amounts = record.get("amounts")
    if isinstance(amounts, dict) and amounts:
        summary["amount_units"] = {
            str(c): str(a.get("units", "")) for c, a in amounts.items() if isinstance(a, dict)
        }
    final = {k: v[-1] for k, v in metrics.items() if len(v)} or dict(record.get("final") or {})
    if final:
        names = sorted({k.split("_", 1)[1] for k in final if k.startswith("PI_")})
        summary["final"] = {
            "t": _finite(final.get("t")),
            "readouts": {
                n: {r: _finite(final.get(f"{r}_{n}")) for r in READOUTS if f"{r}_{n}" in final}
                for n in names
            },
            "totals": {
                k.removeprefix("total_"): _finite(v)
                for k, v in final.items()
                if k.startswith("total_")
            },
            "pools": {
                k.removeprefix("pool_"): _finite(v)
                for k, v in final.items()
                if k.startswith("pool_")
            },
            "pool_drift": {
                k.removeprefix("pool_"): _drift(v)
                for k, v in metrics.items()
                if k.startswith("pool_") and len(v)
            },
            "correlations": {
                k.removeprefix("corr_"): _finite(v)
                for k, v in final.items()
                if k.startswith("corr_")
            },
        }
        held = {
            k.removeprefix("amount_"): _finite(v)
            for k, v in final.items()
            if k.startswith("amount_")
        }
        if held:  # runs of more compartments than the cytosol and its membrane
            summary["final"]["amounts"] = held
    return summary


def _compartment(c: Compartment) -> dict[str, Any]:
    """A compartment in the JSON summary: kind, sides (surfaces) and species."""
    sides = {k: v for k, v in (("inside", c.inside), ("outside", c.outside)) if v}
    return {"kind": c.kind, **sides, "species": list(c.species)}


def format_summary(s: dict[str, Any]) -> list[str]:
    """The lines ``polarity info`` prints for the summary ``s`` of :func:`summarize`."""
    lines = [f"{s['out']}: {s['status']}" + (f" ({s['reason']})" if s["reason"] else "")]
    model = s["model"]
    parts = [f"{c}: {', '.join(names)}" for c, names in model["species"].items() if names]
    lines.append(f"  case {s['source']}")
    lines.append(
        f"  model: {'; '.join(parts) or 'no species'}; {model['reactions']} reactions"
        + (
            "; stimuli " + ", ".join(f"{n} ({k})" for n, k in model["stimuli"].items())
            if model["stimuli"]
            else ""
        )
    )
    places = s.get("compartments")
    if places:
        lines.append("  compartments: " + _compartments_text(places))
    mesh = s["mesh"]
    if mesh:
        lines.append("  mesh: " + _mesh_text(mesh))
        counts = mesh.get("compartments")
        if isinstance(counts, dict) and counts:
            kinds = {n: str(c.get("kind")) for n, c in (places or DEFAULT).items()}
            lines.append("  mesh per compartment: " + _counts_text(counts, kinds))
    lines.append(f"  {s['mpi_ranks']} rank(s), {s['unknowns']} unknowns")
    if s["t"] is not None:
        wall = s["wall_time"] or {}
        run, setup = wall.get("run"), wall.get("setup")
        end = f" of {s['end']:g} s" if isinstance(s["end"], int | float) else ""
        rejected = sum((s["rejected_steps"] or {}).values())
        lines.append(
            f"  t = {s['t']:g} s{end} after {s['steps']} steps"
            + (f" (+{rejected} rejected)" if rejected else "")
            + "; wall time "
            + (f"{run:.1f} s" if isinstance(run, int | float) else "?")
            + (f" (+ {setup:.1f} s set-up)" if isinstance(setup, int | float) else "")
        )
        dt = s["dt"] or {}
        if isinstance(dt.get("min"), int | float) and dt.get("max", 0) >= dt["min"]:
            lines.append(f"  steps from {dt['min']:.3g} s to {dt['max']:.3g} s")
        for r in s["restarts"]:
            lines.append(
                f"  continued from t = {r.get('t', 0):g} s on {r.get('mpi_ranks')} rank(s)"
            )
        if s["status"] == "stopped":
            lines.append(
                "  stopped with a checkpoint: continue with polarity run CONFIG -o OUT --restart"
            )
    final = s["final"]
    if not final:
        return lines
    lines.append(f"final values at t = {final['t']:g} s (angles in degrees):")
    if final["readouts"]:
        lines.append("  " + f"{'species':<10}" + "".join(f"{r:>14}" for r in READOUTS))
        for name, values in final["readouts"].items():
            cells = [values.get(r) for r in READOUTS]
            lines.append(
                "  "
                + f"{name:<10}"
                + "".join(f"{v:>14.4g}" if v is not None else f"{'-':>14}" for v in cells)
            )
    if final["readouts"]:
        cap = f"{s.get('cap_angle', 15.0):g}"
        lines += ["  " + line.format(cap=cap) for line in LEGEND]
    drift = final.get("pool_drift", {})
    groups = (("totals", "total_"), ("pools", "pool_"), ("amounts", "amount_"))
    for group, prefix in (*groups, ("correlations", "corr_")):
        for key, value in final.get(group, {}).items():
            shown = f"{value:.6g}" if value is not None else "-"
            unit = ""
            if group == "amounts":
                unit = s.get("amount_units", {}).get(key, "")
            elif group != "correlations":
                unit = _total_units(s, key if group == "totals" else "")
            line = f"  {prefix + key:<32} {shown:>12} {unit}".rstrip()
            if group == "pools" and drift.get(key) is not None:
                line += f"   (largest relative change since t = 0: {drift[key]:.1e})"
            lines.append(line)
    for name, marks in (s["milestones"] or {}).items():
        lines.append(
            f"  PI of {name}: "
            + ", ".join(
                f"{k} = {v:g} s" if v is not None else f"{k} not reached" for k, v in marks.items()
            )
        )
    return lines


def _compartments_text(places: dict[str, Any]) -> str:
    """``volumes a, b; surfaces m (between a and c), o (around b)``."""
    volumes = [n for n, c in places.items() if c.get("kind") != "surface"]
    surfaces = []
    for n, c in places.items():
        if c.get("kind") == "surface":
            inside, outside = c.get("inside", "?"), c.get("outside")
            surfaces.append(
                f"{n} (between {inside} and {outside})" if outside else f"{n} (around {inside})"
            )
    parts = [f"volumes {', '.join(volumes)}"] if volumes else []
    return "; ".join(parts + ([f"surfaces {', '.join(surfaces)}"] if surfaces else []))


def _counts_text(counts: dict[str, Any], kinds: dict[str, str]) -> str:
    """``a 183, b 41 cells; m 32 facets``: the cells of each volume, facets of each surface."""
    parts = []
    for kind, what in (("volume", "cells"), ("surface", "facets")):
        named = [f"{n} {v}" for n, v in counts.items() if kinds.get(n) == kind]
        if named:
            parts.append(f"{', '.join(named)} {what}")
    other = [f"{n} {v}" for n, v in counts.items() if kinds.get(n) not in ("volume", "surface")]
    return "; ".join(parts + ([", ".join(other)] if other else []))


def _mesh_text(mesh: dict[str, Any]) -> str:
    known = {"dim", "cells", "vertices", "membrane_facets", "h_min", "h_max", "h_mean"}
    known.add("compartments")  # a line of its own
    parts = []
    if "dim" in mesh:
        parts.append(f"{mesh['dim']}-D")
    for key, label in (
        ("cells", "cells"),
        ("vertices", "vertices"),
        ("membrane_facets", "membrane facets"),
    ):
        if key in mesh:
            parts.append(f"{mesh[key]} {label}")
    if {"h_min", "h_max"} <= mesh.keys():
        h = f"h {mesh['h_min']:.3g}-{mesh['h_max']:.3g} um"
        parts.append(h + (f" (mean {mesh['h_mean']:.3g})" if "h_mean" in mesh else ""))
    parts += [f"{k} {v}" for k, v in mesh.items() if k not in known]
    return ", ".join(parts)
