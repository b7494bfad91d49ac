"""``polarity plot OUT``: the standard figures of a polarity run.

- ``readouts.png``: polarisation index, how far the front is from the gradient axis,
  front/back ratio and totals against time (from metrics.csv);
- ``kymograph_<species>.png``: a membrane species against the angle from the gradient
  direction and time (:mod:`solver.inspect.kymograph`);
- ``membrane_<species>.png``: the membrane coloured by the species at one time, and
  with ``movie`` ``membrane_<species>.gif`` over all outputs
  (:mod:`solver.inspect.membrane`);
- ``compartment_<name>.png`` (runs of more compartments than the cytosol and its
  membrane): every species of one compartment at one time, in the cell's plane
  (:mod:`solver.inspect.sections`).

Figures have a fixed size in pixels (:data:`~solver.inspect.figure.SIZES`), units on
every axis and colour bars with a fixed range over time; ``formats`` adds vector
graphics (PDF, SVG) of the matplotlib figures. Needs the ``plot`` extra (matplotlib,
pyvista).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from solver.errors import InputError
from solver.inspect.figure import (
    FORMATS,
    SIZES,
    case_name,
    figure,
    name_of,
    save,
    total_units_of,
)
from solver.inspect.kymograph import Kymograph, kymograph, kymograph_figure
from solver.inspect.membrane import MembraneView, membrane_figure, membrane_movie, output_index
from solver.inspect.sections import compartment_figure
from solver.io.compartments import is_default, readout_surface, with_series
from solver.io.metrics import load_metrics
from solver.io.results import (
    Series,
    center_of,
    load_record,
    readout_species,
    reference_direction,
    series_of,
)

__all__ = ["FORMATS", "SIZES", "Kymograph", "kymograph", "plot_all", "readouts_figure"]

ANGLE_FLOOR = 1e-3  # degree: deviations below this are drawn at it (log axis)


def plot_all(
    out: Path,
    figures: Path | None = None,
    species: list[str] | None = None,
    time: float | None = None,
    formats: Sequence[str] = ("png",),
    movie: bool = False,
) -> list[Path]:
    """Write every figure of the output folder ``out`` into ``figures`` (default OUT/figures).

    ``species``: surface species of the kymographs and membrane views (default: the
    read-out species); ``time`` (s): of the membrane views and compartment figures
    (default: the last output); ``formats``: of the matplotlib figures (see
    :data:`FORMATS`); ``movie``: also a GIF of the membrane over time per species. A
    run of more compartments than the cytosol and its membrane also gets a figure per
    compartment that holds species (:mod:`solver.inspect.sections`).
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise InputError("--format", f"expected some of {', '.join(FORMATS)}, got {bad or '[]'}")
    out = Path(out)
    record = load_record(out)
    metrics = load_metrics(out)
    names = list(species) if species else readout_species(record)
    found = surface_series(out, record, names)
    if not found and (species or movie):
        surface = readout_surface(record) or "membrane"
        raise InputError(str(out), f"no {surface}.xdmf: nothing to plot on the membrane")
    figures = Path(figures) if figures is not None else out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if metrics.get("t") is not None and len(metrics["t"]):
        written += readouts_figure(record, metrics, figures / "readouts.png", formats)
    centers = {c: center_of(out, record, c) for c in {c for c, _ in found.values()}}
    for n, (c, series) in found.items():
        k = kymograph(series, n, record, metrics, centers[c])
        written += kymograph_figure(k, record, figures / f"kymograph_{n}.png", formats)
    for n, (c, series) in found.items():
        view = MembraneView(series, n, record, metrics, centers[c])
        written += membrane_figure(view, time, figures, formats)
        if movie:
            written.append(membrane_movie(view, figures))
    if not is_default(record):
        written += compartment_figures(out, record, metrics, time, figures, formats)
    return written


def surface_series(
    out: Path, record: dict[str, Any], names: Sequence[str]
) -> dict[str, tuple[str, Series]]:
    """``{species: (surface, series)}``: the series of the surface each of ``names`` is on.

    Empty when the run wrote no series of its read-out surface (the membrane) and
    ``names`` are on no other. Raises InputError for a name that is on no surface.
    """
    readout = readout_surface(record) or "membrane"
    surfaces = [readout] + [c.name for c in with_series(record) if c.surface and c.name != readout]
    series = {c: s for c in surfaces if (s := series_of(out, c)) is not None}
    if not series:
        return {}
    found = {}
    for n in names:
        place = next((c for c, s in series.items() if n in s.fields), None)
        if place is None:
            if len(series) == 1:
                known = ", ".join(sorted(next(iter(series.values())).fields))
                what = f"{next(iter(series))} field"
            else:
                known = "; ".join(f"{c}: {', '.join(sorted(s.fields))}" for c, s in series.items())
                what = "surface field"
            raise InputError("--species", f"no {what} {n!r} in {out} (fields: {known})")
        found[n] = (place, series[place])
    return found


def compartment_figures(
    out: Path,
    record: dict[str, Any],
    metrics: dict[str, np.ndarray],
    time: float | None,
    figures: Path,
    formats: Sequence[str] = ("png",),
) -> list[Path]:
    """``compartment_<name>.*`` for every compartment with a series, at ``time`` (s)."""
    places = [c for c in with_series(record) if (out / f"{c.name}.xdmf").is_file()]
    series = {c.name: s for c in places if (s := series_of(out, c.name)) is not None}
    if not series:
        return []
    center = center_of(out, record)
    written = []
    for c in places:
        own = series[c.name]
        times = own.times(next(iter(own.fields)))
        t = times[output_index(times, time)]
        direction = reference_direction(record, np.array([t]), center, metrics).directions[0]
        path = figures / f"compartment_{c.name}.png"
        written += compartment_figure(c, series, record, center, direction, t, path, formats)
    return written


# -- read-outs against time -----------------------------------------------------------
def readouts_figure(
    record: dict[str, Any],
    metrics: dict[str, np.ndarray],
    path: Path,
    formats: Sequence[str] = ("png",),
) -> list[Path]:
    """PI, deviation of the front from the gradient axis, front/back ratio and totals."""
    from matplotlib import colormaps

    fig = figure("readouts", layout="constrained")
    axes = fig.subplots(2, 2, sharex=True)
    t = metrics["t"]
    names = [n for n in readout_species(record) if f"PI_{n}" in metrics]
    tab10 = colormaps["tab10"]
    colours = {n: tab10(k % 10) for k, n in enumerate(names)}
    labels = {n: name_of(record, n) for n in names}
    _series_panel(axes[0, 0], t, metrics, names, colours, "PI", "polarisation index", labels=labels)
    _angle_panel(axes[0, 1], t, metrics, names, colours)
    _series_panel(axes[1, 0], t, metrics, names, colours, "FB", "front/back ratio", "log")
    _totals_panel(axes[1, 1], t, metrics, record)
    for ax in axes[1]:
        ax.set_xlabel("time (s)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(names), 8))
    fig.suptitle(f"{case_name(record)}: read-outs ({record.get('status', '?')})")
    return save(fig, path, formats)


def _series_panel(ax, t, metrics, names, colours, key, label, scale="linear", labels=None):
    labels = labels or {n: n for n in names}
    drawn = False
    for n in names:
        if f"{key}_{n}" in metrics:
            ax.plot(t, metrics[f"{key}_{n}"], marker=".", color=colours[n], label=labels[n])
            drawn = True
    ax.set_ylabel(label)
    if drawn:
        ax.set_yscale(scale)
    else:
        ax.text(0.5, 0.5, "no read-outs in metrics.csv", ha="center", transform=ax.transAxes)
    ax.grid(True, alpha=0.3)


def _angle_panel(ax, t, metrics, names, colours) -> None:
    """How far each species' front is from the gradient axis, on a log axis.

    0 is towards the gradient for front species and away from it for back species, so
    small errors stay visible.
    """
    drawn = False
    for n in names:
        angle = metrics.get(f"angle_{n}")
        if angle is None or not np.any(np.isfinite(angle)):
            continue
        back = np.nanmedian(angle[len(angle) // 2 :]) > 90.0
        off = np.where(np.isfinite(angle), np.minimum(angle, 180.0 - angle), np.nan)
        style = "--" if back else "-"
        ax.plot(t, np.maximum(off, ANGLE_FLOOR), style, marker=".", color=colours[n])
        drawn = True
    ax.set_ylabel("front's angle to the gradient axis (degree)")
    if drawn:
        ax.set_yscale("log")
        ax.set_ylim(ANGLE_FLOOR * 0.8, 100.0)
        ax.set_title(
            "— front species (towards the gradient), - - back species (away from it)",
            fontsize="small",
        )
    ax.grid(True, alpha=0.3, which="both")


def _totals_panel(ax, t, metrics, record) -> None:
    from matplotlib import colormaps

    tab20 = colormaps["tab20"]
    units = set()
    k = 0
    # runs of several compartments say where each species is
    where = {} if is_default(record) else {n: c for c in with_series(record) for n in c.species}
    for key, values in metrics.items():
        if key.startswith(("total_", "pool_")) and np.any(values > 0):
            name = key.split("_", 1)[1]
            unit = total_units_of(record, name if key.startswith("total_") else "")
            units.add(unit)
            style = "--" if key.startswith("pool_") else "-"
            shown = np.where(values > 0, values, np.nan)
            place = f" in {where[name].name}" if key.startswith("total_") and name in where else ""
            ax.plot(t, shown, style, color=tab20(k % 20), label=f"{name}{place} ({unit})")
            k += 1
    ax.set_yscale("log")
    ax.set_ylabel(f"total amount ({units.pop()})" if len(units) == 1 else "total amount")
    if k:
        ax.legend(
            fontsize="x-small",
            ncol=1 + k // 12,
            title="species —, pools - -",
            title_fontsize="x-small",
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
        )
    ax.grid(True, alpha=0.3)
