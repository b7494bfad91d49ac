"""``polarity plot OUT``: the standard figures of a polarity run, as PNG files.

- ``readouts.png``: polarisation index, angle to the gradient, front/back ratio and
  totals against time (from metrics.csv);
- ``kymograph_<species>.png``: a membrane species against the angle from the gradient
  direction and time (2-D: the signed angle around the membrane curve; 3-D: the polar
  angle from the gradient, area-weighted mean over each band of the surface);
- ``membrane_<species>.png``: the membrane coloured by the species at one time
  (3-D: pyvista off-screen, seen from the front and from the back; 2-D: the membrane
  curve in its plane).

Every figure has a fixed size in pixels (``SIZES``), units on every axis and colour
bars with a fixed range over time. Needs the ``plot`` extra (matplotlib, pyvista).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from solver.errors import InputError
from solver.io.metrics import load_metrics
from solver.io.results import (
    Series,
    load_record,
    readout_species,
    reference_direction,
    series_of,
)

__all__ = ["SIZES", "Kymograph", "kymograph", "plot_all"]

DPI = 100
#: width × height in pixels of each kind of figure
SIZES = {
    "readouts": (1200, 900),
    "kymograph": (900, 600),
    "membrane": (1200, 600),  # 3-D: front and back side by side
    "membrane_2d": (800, 700),
}
UNITS = {"uM": "µM", "uM*um": "µM·µm", "1": "1"}


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(
            "polarity plot", f"needs {module.split('.')[0]}: pip install 'polarity-solver[plot]'"
        ) from None


def units_of(record: dict[str, Any], name: str) -> str:
    """Display units of an output field (µM, µM·µm or 1)."""
    fields = record.get("fields", {})
    if name in fields:
        return UNITS.get(fields[name].get("units"), fields[name].get("units", "?"))
    species = record.get("resolved", {}).get("species", {})
    if name in species:
        return "µM" if species[name].get("compartment") == "cytosol" else "µM·µm"
    return "1" if name.endswith("_occupancy") else "µM"


def _figure(kind: str):
    _require("matplotlib")
    from matplotlib.figure import Figure

    w, h = SIZES[kind]
    return Figure(figsize=(w / DPI, h / DPI), dpi=DPI)


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)  # no tight bounding box: the pixel size stays SIZES[kind]
    return path


def plot_all(
    out: Path,
    figures: Path | None = None,
    species: list[str] | None = None,
    time: float | None = None,
) -> list[Path]:
    """Write every figure of the output folder ``out`` into ``figures`` (default OUT/figures).

    ``species``: membrane species of the kymographs and membrane views (default: the
    read-out species); ``time`` (s): of the membrane views (default: the last output).
    """
    out = Path(out)
    record = load_record(out)
    metrics = load_metrics(out)
    membrane = series_of(out, "membrane")
    names = list(species) if species else readout_species(record)
    if membrane is not None:
        for n in names:
            if n not in membrane.fields:
                known = ", ".join(sorted(membrane.fields))
                raise InputError("--species", f"no membrane field {n!r} in {out} (fields: {known})")
    elif species:
        raise InputError(str(out), "no membrane.xdmf: nothing to plot on the membrane")
    figures = Path(figures) if figures is not None else out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    written = []
    if metrics.get("t") is not None and len(metrics["t"]):
        written.append(readouts_figure(record, metrics, figures / "readouts.png"))
    if membrane is None:
        return written
    cytosol = series_of(out, "cytosol")
    center = (cytosol or membrane).centroid()
    for n in names:
        k = kymograph(membrane, n, record, metrics, center)
        written.append(kymograph_figure(k, record, figures / f"kymograph_{n}.png"))
    for n in names:
        written.append(membrane_figure(membrane, n, record, metrics, center, time, figures))
    return written


# -- read-outs against time -----------------------------------------------------------
def readouts_figure(record: dict[str, Any], metrics: dict[str, np.ndarray], path: Path) -> Path:
    """PI, angle to the gradient, front/back ratio and totals against time."""
    fig = _figure("readouts")
    axes = fig.subplots(2, 2, sharex=True)
    t = metrics["t"]
    names = [n for n in readout_species(record) if f"PI_{n}" in metrics]
    panels = (
        (axes[0, 0], "PI", "polarisation index (1)", "linear"),
        (axes[0, 1], "angle", "angle of the front to the gradient (degree)", "linear"),
        (axes[1, 0], "FB", "front/back ratio (1)", "log"),
    )
    for ax, key, label, scale in panels:
        drawn = False
        for n in names:
            if f"{key}_{n}" in metrics:
                ax.plot(t, metrics[f"{key}_{n}"], marker=".", label=n)
                drawn = True
        ax.set_ylabel(label)
        if drawn:
            ax.set_yscale(scale)
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "no read-outs in metrics.csv", ha="center", transform=ax.transAxes)
        ax.grid(True, alpha=0.3)
    if any(f"angle_{n}" in metrics for n in names):
        axes[0, 1].set_ylim(0, 180)
        axes[0, 1].set_yticks([0, 45, 90, 135, 180])
    ax = axes[1, 1]
    dim = record.get("mesh", {}).get("dim", 3)
    for key, values in metrics.items():
        if key.startswith(("total_", "pool_")) and np.any(values > 0):
            style = "--" if key.startswith("pool_") else "-"
            ax.plot(t, np.where(values > 0, values, np.nan), style, label=key.split("_", 1)[1])
    ax.set_yscale("log")
    ax.set_ylabel(f"total amount (µM·µm{'³' if dim == 3 else '²'})")
    ax.legend(fontsize="x-small", ncol=2, title="species (—), pools (--)")
    ax.grid(True, alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("time (s)")
    fig.suptitle(f"{record.get('source', '')}: read-outs ({record.get('status', '?')})")
    fig.tight_layout()
    return _save(fig, path)


# -- kymograph ------------------------------------------------------------------------
@dataclass(frozen=True)
class Kymograph:
    """``values[i, j]``: the species at time ``times[i]`` (s) and angle ``angles[j]`` (degree)."""

    species: str
    times: np.ndarray
    angles: np.ndarray
    values: np.ndarray
    reference: str  # what angle 0 is: "gradient", or the final front of a species
    signed: bool  # 2-D: signed angle in [-180, 180]; 3-D: polar angle in [0, 180]


def kymograph(
    membrane: Series,
    name: str,
    record: dict[str, Any],
    metrics: dict[str, np.ndarray],
    center: np.ndarray,
    bins: int = 36,
) -> Kymograph:
    """Membrane profile of ``name`` against the angle from the gradient direction and time.

    2-D: nodal values, linearly interpolated (periodically) onto 1° steps of the signed
    angle. 3-D: area-weighted means over ``bins`` bands of polar angle; empty bands
    are interpolated from their neighbours.
    """
    times, values = membrane.values(name)
    ref = reference_direction(record, times, center, metrics)
    r = membrane.points - center[: membrane.gdim]
    r /= np.maximum(np.linalg.norm(r, axis=1), 1e-300)[:, None]
    rows = []
    if membrane.gdim == 2:
        grid = np.linspace(-180.0, 180.0, 361)
        for d, u in zip(ref.directions, values, strict=True):
            d2 = d[:2] / max(np.linalg.norm(d[:2]), 1e-300)
            angle = np.degrees(np.arctan2(d2[0] * r[:, 1] - d2[1] * r[:, 0], r @ d2))
            rows.append(np.interp(grid, angle, u, period=360.0))
        return Kymograph(name, times, grid, np.array(rows), ref.label, True)
    weights = membrane.node_weights()
    edges = np.linspace(0.0, 180.0, bins + 1)
    grid = 0.5 * (edges[1:] + edges[:-1])
    for d, u in zip(ref.directions, values, strict=True):
        angle = np.degrees(np.arccos(np.clip(r @ d[: membrane.gdim], -1.0, 1.0)))
        band = np.clip(np.digitize(angle, edges) - 1, 0, bins - 1)
        w = np.bincount(band, weights=weights, minlength=bins)
        wu = np.bincount(band, weights=weights * u, minlength=bins)
        filled = w > 0
        mean = np.full(bins, np.nan)
        mean[filled] = wu[filled] / w[filled]
        rows.append(np.interp(grid, grid[filled], mean[filled]))
    return Kymograph(name, times, grid, np.array(rows), ref.label, False)


def kymograph_figure(k: Kymograph, record: dict[str, Any], path: Path) -> Path:
    """The kymograph as an image: time across, angle up, the species in colour."""
    fig = _figure("kymograph")
    ax = fig.subplots()
    image = ax.pcolormesh(k.times, k.angles, k.values.T, shading="nearest", cmap="viridis")
    fig.colorbar(image, ax=ax, label=f"{k.species} ({units_of(record, k.species)})")
    ax.set_xlabel("time (s)")
    what = "signed angle" if k.signed else "angle"
    ax.set_ylabel(f"{what} from the {k.reference} direction (degree)")
    ax.set_yticks([-180, -90, 0, 90, 180] if k.signed else [0, 45, 90, 135, 180])
    ax.axhline(0.0, color="w", lw=0.8, ls=":")
    ax.set_title(
        f"{k.species} on the membrane: front at 0°, back at ±180°"
        if k.signed
        else f"{k.species} on the membrane: front at 0°, back at 180°"
    )
    fig.tight_layout()
    return _save(fig, path)


# -- the membrane coloured by a species --------------------------------------------------
def membrane_figure(
    membrane: Series,
    name: str,
    record: dict[str, Any],
    metrics: dict[str, np.ndarray],
    center: np.ndarray,
    time: float | None,
    figures: Path,
) -> Path:
    """The membrane coloured by ``name`` at ``time`` (default: the last output), fixed range."""
    times, values = membrane.values(name)
    if time is None:
        i = len(times) - 1
    else:
        i = int(np.argmin(np.abs(times - time)))
        if abs(times[i] - time) > 1e-9 * max(1.0, abs(time)):
            listed = ", ".join(f"{t:g}" for t in times)
            raise InputError("--time", f"no output at t = {time:g} s (outputs at {listed} s)")
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    d = reference_direction(record, times[i : i + 1], center, metrics)
    label = f"{name} ({units_of(record, name)})"
    path = figures / f"membrane_{name}.png"
    if membrane.gdim == 2:
        return _curve_2d(membrane, values[i], times[i], (lo, hi), d, center, label, path)
    return _surface_3d(membrane, values[i], times[i], (lo, hi), d, center, label, path)


def _curve_2d(membrane, u, t, clim, ref, center, label, path) -> Path:
    from matplotlib.collections import LineCollection

    fig = _figure("membrane_2d")
    ax = fig.subplots()
    segments = membrane.points[membrane.cells[:, :2]]
    lines = LineCollection(segments, array=u[membrane.cells[:, :2]].mean(axis=1), linewidths=6)
    lines.set_clim(*clim)
    ax.add_collection(lines)
    fig.colorbar(lines, ax=ax, label=label)
    radius = float(np.max(np.linalg.norm(membrane.points - center[:2], axis=1)))
    d = ref.directions[0][:2]
    ax.annotate(
        "",
        xy=center[:2] + 0.6 * radius * d,
        xytext=center[:2],
        arrowprops={"arrowstyle": "->", "lw": 2, "color": "k"},
    )
    ax.text(*(center[:2] + 0.65 * radius * d), ref.label, ha="center", va="center")
    ax.set_xlim(center[0] - 1.15 * radius, center[0] + 1.15 * radius)
    ax.set_ylim(center[1] - 1.15 * radius, center[1] + 1.15 * radius)
    ax.set_aspect("equal")
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    ax.set_title(f"membrane at t = {t:g} s")
    fig.tight_layout()
    return _save(fig, path)


def _surface_3d(membrane, u, t, clim, ref, center, label, path) -> Path:
    pv = _require("pyvista")
    cells = membrane.cells
    faces = np.hstack([np.full((len(cells), 1), cells.shape[1]), cells]).reshape(-1)
    surface = pv.PolyData(np.asarray(membrane.points, dtype=float), faces)
    surface.point_data[label] = u
    d = ref.directions[0]
    up = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    up -= (up @ d) * d
    up /= np.linalg.norm(up)
    radius = float(np.max(np.linalg.norm(membrane.points - center, axis=1)))
    width, height = SIZES["membrane"]
    plotter = pv.Plotter(off_screen=True, shape=(1, 2), window_size=(width, height))
    for col, (side, sign) in enumerate((("front", 1.0), ("back", -1.0))):
        plotter.subplot(0, col)
        plotter.add_mesh(
            surface.copy(),
            scalars=label,
            clim=clim,
            cmap="viridis",
            show_scalar_bar=col == 1,
            scalar_bar_args={"title": label.replace("µ", "u").replace("·", "*")},
        )
        plotter.add_text(
            f"{side}: seen from {'+' if sign > 0 else '-'}d ({ref.label}), t = {t:g} s",
            font_size=10,
        )
        plotter.add_axes(xlabel="x (um)", ylabel="y (um)", zlabel="z (um)")
        plotter.camera.focal_point = tuple(center)
        plotter.camera.position = tuple(center + sign * 4.0 * radius * d)
        plotter.camera.up = tuple(up)
        plotter.reset_camera_clipping_range()
    plotter.screenshot(str(path))
    plotter.close()
    return path
