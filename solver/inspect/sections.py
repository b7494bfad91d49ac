"""Compartment figures: every species of one compartment at one time, in the cell's plane.

``compartment_<name>.png`` has one panel per species of the compartment. 2-D cells are
drawn as they are; 3-D cells as their section by the plane through the centre normal
to the vertical (z; y when the gradient is nearly vertical), the plane the ParaView
state cuts too. A volume species colours its volume (interpolated between the nodes),
a surface species its surface (a thick curve coloured along its length); the outlines
of every volume that has a series are drawn thin and grey, so each panel shows where
the compartment lies among the others (each panel spans the compartment and a margin
around it). Colour ranges are those of the whole run.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from solver.inspect.figure import DPI, SIZES, case_name, label_of, name_of, require, save
from solver.inspect.membrane import output_index
from solver.io.compartments import Compartment
from solver.io.results import Series

COLUMNS = 3  # panels per row at most
OUTLINE = "0.55"  # grey of the outlines


@dataclass(frozen=True)
class Plane:
    """The picture plane: a 3-D cell's section through ``origin`` (µm) normal to ``normal``.

    ``axes`` are the indices of the two coordinates drawn (x, y or x, z).
    """

    origin: np.ndarray
    normal: int  # index of the coordinate normal to the plane
    axes: tuple[int, int]

    @classmethod
    def through(
        cls, center: np.ndarray, direction: np.ndarray | None, meshes: Sequence[Series] = ()
    ) -> Plane:
        """The horizontal plane through ``center``; vertical (y = const) if ``direction`` is.

        With ``meshes``, the plane is moved off their nodes (by at most a fifth of the
        finest mesh's mean edge length h, to at least h/50 from every node, as little as
        that allows): a section that grazes nodes has sliver triangles, which are drawn
        as dark streaks.
        """
        vertical = direction is not None and abs(direction[2]) >= 0.9 * np.linalg.norm(direction)
        normal = 1 if vertical else 2
        origin = np.array(center, dtype=float)
        if meshes:
            h = min(_edge_length(m) for m in meshes)
            heights = np.concatenate([m.points[:, normal] for m in meshes])
            shifts = np.linspace(-0.2 * h, 0.2 * h, 81)
            gaps = np.array([np.min(np.abs(heights - origin[normal] - d)) for d in shifts])
            best = np.minimum(gaps, 0.02 * h) - 1e-3 * np.abs(shifts)  # clear, then close
            origin[normal] += shifts[int(np.argmax(best))]
        return cls(origin, normal, (0, 2) if vertical else (0, 1))

    @property
    def text(self) -> str:
        """``"section z = 0.02 µm"``."""
        return f"section {'xyz'[self.normal]} = {round(self.origin[self.normal], 3) + 0.0:g} µm"


def _edge_length(series: Series) -> float:
    """The mean length of the first edge of each cell (µm): the mesh's spacing."""
    x = series.points[series.cells[:, :2]]
    return float(np.mean(np.linalg.norm(x[:, 1] - x[:, 0], axis=1)))


@dataclass(frozen=True)
class Picture:
    """A compartment's mesh in the picture plane, with its fields at one time.

    ``cells`` are triangles (a volume) or segments (a surface) of ``points`` (µm, N × 2);
    ``values`` are node values per field.
    """

    points: np.ndarray
    cells: np.ndarray
    values: dict[str, np.ndarray]

    @property
    def surface(self) -> bool:
        """Whether the picture is of a curve (segments)."""
        return self.cells.shape[1] == 2

    def outline(self) -> np.ndarray:
        """The boundary edges of a volume (K × 2 × 2 points), the segments of a curve."""
        if self.surface:
            return self.points[self.cells]
        edges = np.sort(self.cells[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
        unique, counts = np.unique(edges, axis=0, return_counts=True)
        return self.points[unique[counts == 1]]


def picture(series: Series, index: int, names: Sequence[str], plane: Plane | None) -> Picture:
    """``series`` at output ``index`` with fields ``names``: as it is, or cut by ``plane``."""
    values = {n: series.values(n)[1][index] for n in names}
    if series.gdim == 2:
        return Picture(series.points, series.cells, values)
    assert plane is not None  # 3-D series are cut
    pv = require("pyvista")
    points = np.asarray(series.points, dtype=float)
    per_cell = series.cells.shape[1]
    if per_cell == 4:
        cell_types = np.full(len(series.cells), pv.CellType.TETRA, dtype=np.uint8)
        cells = np.hstack([np.full((len(series.cells), 1), 4), series.cells]).reshape(-1)
        mesh: Any = pv.UnstructuredGrid(cells, cell_types, points)
    else:
        faces = np.hstack([np.full((len(series.cells), 1), per_cell), series.cells]).reshape(-1)
        mesh = pv.PolyData(points, faces)
    for n, v in values.items():
        mesh.point_data[n] = v
    normal = np.zeros(3)
    normal[plane.normal] = 1.0
    cut = mesh.slice(normal=normal, origin=plane.origin).clean()
    if cut.n_points == 0:
        empty = np.zeros((0, 3 if per_cell == 4 else 2), dtype=np.int64)
        return Picture(np.zeros((0, 2)), empty, {n: np.zeros(0) for n in names})
    if per_cell == 4:  # a volume's section: polygons, made triangles
        cut = cut.triangulate()
        cells = np.asarray(cut.regular_faces, dtype=np.int64)
    else:  # a surface's: polylines
        cells = _segments(cut.lines)
    flat = np.asarray(cut.points)[:, list(plane.axes)]
    return Picture(flat, cells, {n: np.asarray(cut.point_data[n]) for n in names})


def _segments(lines: np.ndarray) -> np.ndarray:
    """The segments (K × 2) of VTK polylines ``[n, i0, ..., i(n-1), n, ...]``."""
    out, k, lines = [], 0, np.asarray(lines, dtype=np.int64)
    while k < len(lines):
        n = int(lines[k])
        ids = lines[k + 1 : k + 1 + n]
        out += [(int(a), int(b)) for a, b in zip(ids[:-1], ids[1:], strict=True)]
        k += n + 1
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def compartment_figure(
    compartment: Compartment,
    series: Mapping[str, Series],
    record: dict[str, Any],
    center: np.ndarray,
    direction: np.ndarray | None,
    time: float | None,
    path: Path,
    formats: Sequence[str] = ("png",),
) -> list[Path]:
    """``compartment_<name>``: a panel per species of ``compartment`` at ``time`` (s).

    ``series``: every series of the run by compartment (those of volumes give the
    outlines); ``center`` and ``direction`` (µm; the gradient, or None) place the
    section of a 3-D cell; ``time`` None: the last output.
    """
    require("matplotlib")
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    own = series[compartment.name]
    names = [n for n in compartment.species if n in own.fields]
    times = own.times(names[0])
    i = output_index(times, time)
    plane = Plane.through(center, direction, list(series.values())) if own.gdim == 3 else None
    shown = picture(own, i, names, plane)
    # the outlines of the volumes (cells of gdim + 1 nodes), which do not move in time
    outlines = [
        picture(s, 0, [], plane).outline()
        for s in series.values()
        if s.cells.shape[1] == s.gdim + 1
    ]
    ranges = {n: own.range(n) for n in names}
    columns = min(len(names), COLUMNS)
    rows = math.ceil(len(names) / columns)
    width, height = SIZES["compartment"]
    fig = Figure(figsize=(width * columns / DPI, (height * rows + 80) / DPI), dpi=DPI)
    fig.set_layout_engine("constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).reshape(-1)
    # the compartment's own extent, and a margin that shows what surrounds it
    around = [np.zeros((0, 2)), *(o.reshape(-1, 2) for o in outlines)]
    drawn = shown.points if len(shown.points) else np.concatenate(around)
    low, high = (drawn.min(axis=0), drawn.max(axis=0)) if len(drawn) else (-np.ones(2), np.ones(2))
    pad = 0.15 * max(float(np.max(high - low)), 1e-12)
    for ax, name in zip(axes, names, strict=False):
        for outline in outlines:
            ax.add_collection(LineCollection(list(outline), colors=OUTLINE, linewidths=0.8))
        lo, hi = ranges[name]
        if hi <= lo:
            hi = lo + max(abs(lo), 1.0) * 1e-6
        u = shown.values[name]
        if not len(shown.cells):
            artist = None
        elif shown.surface:
            segments = shown.points[shown.cells]
            mid = segments.mean(axis=1)
            halves = np.concatenate(
                [np.stack([segments[:, 0], mid], 1), np.stack([mid, segments[:, 1]], 1)]
            )
            colours = np.concatenate([u[shown.cells[:, 0]], u[shown.cells[:, 1]]])
            artist = LineCollection(list(halves), array=colours, linewidths=5, capstyle="round")
            artist.set_clim(lo, hi)
            ax.add_collection(artist)
        else:
            artist = ax.tripcolor(
                shown.points[:, 0],
                shown.points[:, 1],
                shown.cells,
                u,
                shading="gouraud",
                cmap="viridis",
                vmin=lo,
                vmax=hi,
            )
        if artist is not None:
            fig.colorbar(artist, ax=ax, label=label_of(record, name), shrink=0.85)
        ax.set_xlim(low[0] - pad, high[0] + pad)
        ax.set_ylim(low[1] - pad, high[1] + pad)
        ax.set_aspect("equal")
        first, second = plane.axes if plane is not None else (0, 1)
        ax.set_xlabel(f"{'xyz'[first]} (µm)")
        ax.set_ylabel(f"{'xyz'[second]} (µm)")
        ax.set_title(name_of(record, name))
    for ax in axes[len(names) :]:
        ax.set_axis_off()
    where = f"{case_name(record)}: {compartment.name} ({compartment.where})"
    when = f"t = {times[i]:g} s" + (f", {plane.text}" if plane is not None else "")
    fig.suptitle("\n".join(textwrap.wrap(where, width * columns // 9) + [when]))
    return save(fig, path, formats)
