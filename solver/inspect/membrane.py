"""The membrane coloured by a species: a still at one time, and a movie over all outputs.

2-D cells: the membrane curve in its plane, coloured along its length, with the
gradient as an arrow. 3-D cells (pyvista, off-screen): three views of the surface
with smooth shading — from the side with the gradient pointing right and drawn as an
arrow, from the front (the gradient towards the viewer) and from the back — and one
colour bar below them, off the geometry. The colour range is fixed over all times.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from solver.errors import InputError
from solver.inspect.figure import SIZES, case_name, figure, label_of, name_of, require, save
from solver.io.results import Reference, Series, reference_direction

MAX_FRAMES = 200  # a movie of more outputs shows every k-th one
FRAME_MS = 120  # display time of one movie frame


def output_index(times: np.ndarray, time: float | None) -> int:
    """The index of the output at ``time`` (s; None: the last); InputError if none is."""
    if time is None:
        return len(times) - 1
    i = int(np.argmin(np.abs(times - time)))
    if abs(times[i] - time) > 1e-9 * max(1.0, abs(time)):
        listed = ", ".join(f"{t:g}" for t in times)
        raise InputError("--time", f"no output at t = {time:g} s (outputs at {listed} s)")
    return i


class MembraneView:
    """Draws the membrane (or another surface) of one run coloured by ``name``, at any time."""

    def __init__(
        self,
        membrane: Series,
        name: str,
        record: dict[str, Any],
        metrics: dict[str, np.ndarray],
        center: np.ndarray,
    ) -> None:
        self.membrane = membrane
        self.name = name
        self.record = record
        self.times, self.values = membrane.values(name)
        self.clim = (float(np.nanmin(self.values)), float(np.nanmax(self.values)))
        self.refs = reference_direction(record, self.times, center, metrics)
        self.center = np.asarray(center, dtype=float)
        self.label = label_of(record, name)
        surface = membrane.path.stem  # the compartment: membrane, or another surface
        self.title = f"{case_name(record)}: {name_of(record, name)} on the {surface}"
        r = membrane.points - self.center[: membrane.gdim]
        self.radius = float(np.max(np.linalg.norm(r, axis=1)))

    def reference(self, i: int) -> Reference:
        """The gradient (or front) direction at output ``i``."""
        return Reference(self.refs.label, self.refs.directions[i : i + 1])

    # -- 2-D ---------------------------------------------------------------------------
    def draw_2d(self, fig: Any, i: int) -> None:
        """Draw the curve at output ``i`` into the empty matplotlib figure ``fig``."""
        from matplotlib.collections import LineCollection

        m, c = self.membrane, self.center[:2]
        ax = fig.subplots()
        segments = m.points[m.cells[:, :2]]
        # each segment split in two halves coloured by its end nodes: a smooth profile
        mid = segments.mean(axis=1)
        halves = np.concatenate(
            [np.stack([segments[:, 0], mid], 1), np.stack([mid, segments[:, 1]], 1)]
        )
        u = self.values[i]
        colours = np.concatenate([u[m.cells[:, 0]], u[m.cells[:, 1]]])
        lines = LineCollection(list(halves), array=colours, linewidths=7, capstyle="round")
        lines.set_clim(*self.clim)
        ax.add_collection(lines)
        fig.colorbar(lines, ax=ax, label=self.label, shrink=0.8)
        ref = self.reference(i)
        d = ref.directions[0][:2] / max(np.linalg.norm(ref.directions[0][:2]), 1e-300)
        ax.annotate(
            "",
            xy=c + 0.55 * self.radius * d,
            xytext=c - 0.55 * self.radius * d,
            arrowprops={"arrowstyle": "-|>", "lw": 2, "color": "0.3"},
        )
        ax.text(*(c - 0.75 * self.radius * d), ref.label, ha="center", va="center", color="0.3")
        ax.set_xlim(c[0] - 1.2 * self.radius, c[0] + 1.2 * self.radius)
        ax.set_ylim(c[1] - 1.2 * self.radius, c[1] + 1.2 * self.radius)
        ax.set_aspect("equal")
        ax.set_xlabel("x (µm)")
        ax.set_ylabel("y (µm)")
        ax.set_title(f"{self.title}, t = {self.times[i]:g} s")

    # -- 3-D ---------------------------------------------------------------------------
    def plotter_3d(self) -> tuple[Any, Any]:
        """A pyvista plotter with the three views and the colour bar, and its surface."""
        pv = require("pyvista")
        m = self.membrane
        faces = np.hstack([np.full((len(m.cells), 1), m.cells.shape[1]), m.cells]).reshape(-1)
        surface = pv.PolyData(np.asarray(m.points, dtype=float), faces)
        surface.point_data[self.name] = self.values[-1]
        width, height = SIZES["membrane"]
        plotter = pv.Plotter(
            off_screen=True, shape=(1, 3), window_size=(width, height), border=False
        )
        plotter.set_background("white")
        bar = {
            "title": self.label,
            "color": "black",
            "position_x": 0.2,
            "position_y": 0.03,
            "width": 0.6,
            "height": 0.08,
            "vertical": False,
            "fmt": "%.3g",
            "title_font_size": 16,
            "label_font_size": 13,
        }
        for col in range(3):
            plotter.subplot(0, col)
            plotter.add_mesh(
                surface,
                scalars=self.name,
                clim=self.clim,
                cmap="viridis",
                smooth_shading=True,
                show_scalar_bar=col == 1,
                scalar_bar_args=bar,
                ambient=0.35,
                diffuse=0.7,
                specular=0.0,
            )
        return plotter, surface

    def place_3d(self, plotter: Any, i: int) -> None:
        """Point the three cameras for output ``i``, with the gradient arrow and captions."""
        pv = require("pyvista")
        ref = self.reference(i)
        d = ref.directions[0] / max(np.linalg.norm(ref.directions[0]), 1e-300)
        up = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
        up -= (up @ d) * d
        up /= np.linalg.norm(up)
        side = np.cross(d, up)  # seen from here, d points to the right
        t = self.times[i]
        views = (
            (f"side: {ref.label} to the right, t = {t:g} s", side),
            ("front: seen along the gradient", d),
            ("back: seen against the gradient", -d),
        )
        r, c = self.radius, self.center
        for col, (caption, eye) in enumerate(views):
            plotter.subplot(0, col)
            plotter.remove_actor(f"arrow{col}")
            plotter.remove_actor(f"caption{col}")
            if col == 0:
                start = c + 1.3 * r * up - 0.6 * r * d  # above the cell, along the gradient
                arrow = pv.Arrow(start=start, direction=d, scale=1.2 * r)
                plotter.add_mesh(arrow, color="dimgray", name=f"arrow{col}")
            plotter.add_text(caption, font_size=10, color="black", name=f"caption{col}")
            plotter.camera.focal_point = tuple(c + 0.1 * r * up)
            plotter.camera.position = tuple(c + 0.1 * r * up + 6.5 * r * eye)
            plotter.camera.up = tuple(up)
            plotter.reset_camera_clipping_range()


def membrane_figure(
    view: MembraneView, time: float | None, figures: Path, formats: Sequence[str] = ("png",)
) -> list[Path]:
    """The membrane at ``time`` (default: the last output) as ``membrane_<name>.*``.

    3-D views are raster images: PNG whatever ``formats`` asks.
    """
    i = output_index(view.times, time)
    path = figures / f"membrane_{view.name}.png"
    if view.membrane.gdim == 2:
        fig = figure("membrane_2d")
        view.draw_2d(fig, i)
        fig.tight_layout()
        return save(fig, path, formats)
    plotter, surface = view.plotter_3d()
    surface.point_data[view.name] = view.values[i]
    view.place_3d(plotter, i)
    plotter.screenshot(str(path))
    plotter.close()
    return [path]


def membrane_movie(view: MembraneView, figures: Path) -> Path:
    """``membrane_<name>.gif``: the membrane at every output time (at most MAX_FRAMES)."""
    image_module = require("PIL.Image")
    step = max(1, -(-len(view.times) // MAX_FRAMES))
    indices = list(range(0, len(view.times), step))
    if indices[-1] != len(view.times) - 1:
        indices.append(len(view.times) - 1)
    frames = []
    if view.membrane.gdim == 2:
        for i in indices:
            fig = figure("membrane_2d")
            view.draw_2d(fig, i)
            fig.tight_layout()
            canvas = fig.canvas
            if not hasattr(canvas, "buffer_rgba"):  # a Figure made without pyplot
                from matplotlib.backends.backend_agg import FigureCanvasAgg

                canvas = FigureCanvasAgg(fig)
            canvas.draw()
            frames.append(image_module.fromarray(np.asarray(canvas.buffer_rgba())[..., :3]))
    else:
        plotter, surface = view.plotter_3d()
        for i in indices:
            surface.point_data[view.name] = view.values[i]
            view.place_3d(plotter, i)
            frames.append(image_module.fromarray(plotter.screenshot(return_img=True)))
        plotter.close()
    path = figures / f"membrane_{view.name}.gif"
    # a palette of its own per frame: the web palette would band the colour scale
    adaptive = [f.quantize(colors=256, method=image_module.Quantize.FASTOCTREE) for f in frames]
    adaptive[0].save(path, save_all=True, append_images=adaptive[1:], duration=FRAME_MS, loop=0)
    return path
