"""Kymographs: a membrane species against the angle from the gradient and time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from solver.inspect.figure import case_name, figure, label_of, name_of, save
from solver.io.results import Series, reference_direction


@dataclass(frozen=True)
class Kymograph:
    """``values[i, j]``: the species at time ``times[i]`` (s) and angle ``angles[j]`` (degree)."""

    species: str
    times: np.ndarray
    angles: np.ndarray
    values: np.ndarray
    reference: str  # what angle 0 is: "gradient", or the final front of a species
    signed: bool  # 2-D: signed angle in [-180, 180]; 3-D: polar angle in [0, 180]
    surface: str = "membrane"  # the surface the species is on


def kymograph(
    membrane: Series,
    name: str,
    record: dict[str, Any],
    metrics: dict[str, np.ndarray],
    center: np.ndarray,
    bins: int = 72,
) -> Kymograph:
    """Profile of ``name`` on the surface ``membrane`` against the gradient angle and time.

    Angles are measured about ``center`` (µm).

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
        return Kymograph(name, times, grid, np.array(rows), ref.label, True, membrane.path.stem)
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
    return Kymograph(name, times, grid, np.array(rows), ref.label, False, membrane.path.stem)


def kymograph_figure(
    k: Kymograph, record: dict[str, Any], path: Path, formats: Sequence[str] = ("png",)
) -> list[Path]:
    """The kymograph as an image: time across, angle up, the species in colour.

    Colours are interpolated between the output times and the angles (Gouraud
    shading), so the picture shows the field, not the output cadence.
    """
    fig = figure("kymograph")
    ax = fig.subplots()
    steps = np.diff(k.times)
    if len(k.times) > 1 and np.allclose(steps, steps[0], rtol=1e-6):
        # outputs at equal intervals: an image, interpolated bilinearly when drawn
        # pixel centres on the data: half a step beyond the first and last of each
        dt, da = steps[0], float(np.mean(np.diff(k.angles)))
        extent = (
            k.times[0] - dt / 2,
            k.times[-1] + dt / 2,
            k.angles[0] - da / 2,
            k.angles[-1] + da / 2,
        )
        image = ax.imshow(
            k.values.T,
            extent=extent,
            origin="lower",
            aspect="auto",
            interpolation="bilinear",
            cmap="viridis",
        )
    elif len(k.times) > 1:
        image = ax.pcolormesh(k.times, k.angles, k.values.T, shading="gouraud", cmap="viridis")
    else:  # one output: a single column
        image = ax.pcolormesh(k.times, k.angles, k.values.T, shading="nearest", cmap="viridis")
    fig.colorbar(image, ax=ax, label=label_of(record, k.species))
    if len(k.times) > 1:
        ax.set_xlim(k.times[0], k.times[-1])
    ax.set_ylim(k.angles[0], k.angles[-1])
    ax.set_xlabel("time (s)")
    what = "signed angle" if k.signed else "angle"
    ax.set_ylabel(f"{what} from the {k.reference} direction (degree)")
    ax.set_yticks([-180, -90, 0, 90, 180] if k.signed else [0, 45, 90, 135, 180])
    ax.axhline(0.0, color="w", lw=0.8, ls=":")
    back = "±180°" if k.signed else "180°"
    title = f"{case_name(record)}: {name_of(record, k.species)} on the {k.surface}"
    ax.set_title(f"{title} (front 0°, back {back})")
    fig.tight_layout()
    return save(fig, path, formats)
