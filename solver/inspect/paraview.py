"""``polarity paraview OUT``: a ParaView Python state next to the outputs.

The script (``OUT/polarity_view.py``) opens ``membrane.xdmf`` and ``cytosol.xdmf``
with ParaView's Xdmf3 reader, colours the membrane by one species with a fixed
colour range over all times, shows the cytosol (3-D: clipped by a plane through the
centre that contains the gradient direction, so its cross-section is visible) coloured
by a cytosol species, places the camera on the gradient axis looking at the cell from
the front (3-D: raised 30° above the axis, so the cut face shows; 2-D: the gradient
points to the right), and annotates the time. Opened in the ParaView GUI
(``paraview --script=OUT/polarity_view.py``) it sets up the scene; run with ``pvbatch``
it renders PNGs of the chosen times into ``OUT/figures/`` (3-D: from the front and from
the back).

Everything the script needs (species, colour ranges, centre, radius in µm,
directions per time) is computed here and written into it as JSON; the script
itself uses only ParaView and the standard library, so it runs in ParaView's
own Python.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from solver.errors import InputError
from solver.inspect.plotting import units_of
from solver.io.results import (
    load_metrics,
    load_record,
    readout_species,
    reference_direction,
    series_of,
)

__all__ = ["STATE_NAME", "write_state"]

STATE_NAME = "polarity_view.py"


def write_state(
    out: Path,
    species: str | None = None,
    cytosol_species: str | None = None,
    times: list[float] | None = None,
    size: tuple[int, int] = (1200, 900),
) -> Path:
    """Write ``OUT/polarity_view.py`` and return its path.

    ``species``: membrane species to colour by (default: the first read-out species);
    ``cytosol_species``: of the cytosol (default: the first); ``times`` (s): output
    times that pvbatch renders (default: the last); ``size``: pixels of the PNGs.
    """
    out = Path(out)
    record = load_record(out)
    metrics = load_metrics(out)
    membrane = series_of(out, "membrane")
    cytosol = series_of(out, "cytosol")
    if membrane is None:
        raise InputError(str(out), "no membrane.xdmf: nothing to show")
    species = species or next(iter(readout_species(record)), None)
    if species is None or species not in membrane.fields:
        known = ", ".join(sorted(membrane.fields))
        raise InputError("--species", f"no membrane field {species!r} in {out} (fields: {known})")
    cyto = None
    if cytosol is not None and cytosol.fields:
        cyto = cytosol_species or next(iter(cytosol.fields))
        if cyto not in cytosol.fields:
            known = ", ".join(sorted(cytosol.fields))
            raise InputError(
                "--cytosol-species", f"no cytosol field {cyto!r} in {out} (fields: {known})"
            )
    elif cytosol_species:
        raise InputError("--cytosol-species", f"no cytosol.xdmf in {out}")
    available = membrane.times(species)
    if len(available) == 0:
        raise InputError(str(out), f"no output times of {species!r}")
    chosen = []
    for t in times or [float(available[-1])]:
        i = int(np.argmin(np.abs(available - t)))
        if abs(available[i] - t) > 1e-9 * max(1.0, abs(t)):
            listed = ", ".join(f"{v:g}" for v in available)
            raise InputError("--times", f"no output at t = {t:g} s (outputs at {listed} s)")
        chosen.append(float(available[i]))
    center = (cytosol or membrane).centroid()
    radius = float(np.max(np.linalg.norm(membrane.points - center[: membrane.gdim], axis=1)))
    ref = reference_direction(record, np.array(chosen), center, metrics)
    settings = {
        "folder": str(out.resolve()),
        "dim": membrane.gdim,
        "species": species,
        "species_label": f"{species} ({units_of(record, species)})",
        "range": list(membrane.range(species)),
        "cytosol_species": cyto,
        "cytosol_label": f"{cyto} ({units_of(record, cyto)})" if cyto else None,
        "cytosol_range": list(cytosol.range(cyto)) if cyto else None,
        "center": [float(v) for v in center],
        "radius": radius,
        "reference": ref.label,
        "times": chosen,
        "directions": [[float(v) for v in d] for d in ref.directions],
        "size": [int(size[0]), int(size[1])],
    }
    path = out / STATE_NAME
    text = _TEMPLATE.replace("@SETTINGS@", json.dumps(settings, indent=1, ensure_ascii=True))
    path.write_text(text.replace("@OUT@", str(out)))
    return path


_TEMPLATE = '''\
"""ParaView state of the polarity run in @OUT@ (written by `polarity paraview`).

Open in ParaView:  paraview --script=polarity_view.py   (or File > Load State...)
Render PNGs:       xvfb-run -a -s "-screen 0 1024x768x24" pvbatch polarity_view.py
                   (pvbatch, or pvpython with --png: one image per chosen time, 3-D
                   runs from the front and from the back, into figures/)

Arrays: membrane.xdmf holds the membrane species (surface densities, uM*um) and the
stimulus sampled on the membrane (uM; occupancy dimensionless); cytosol.xdmf the
cytosol species (uM). Lengths in um, times in s.
"""

import json
import os
import sys
import xml.etree.ElementTree as ET

from paraview import servermanager
from paraview.simple import (
    AnnotateTime,
    Clip,
    ColorBy,
    CreateView,
    ExtractBlock,
    GetAnimationScene,
    GetColorTransferFunction,
    GetScalarBar,
    MergeBlocks,
    Render,
    SaveScreenshot,
    SetActiveView,
    Slice,
    Show,
    Text,
    Xdmf3ReaderT,
)

SETTINGS = json.loads(r"""@SETTINGS@""")

try:
    HERE = os.path.dirname(os.path.abspath(__file__))
except NameError:  # executed without a file name (some GUI paths)
    HERE = SETTINGS["folder"]


def _collections(xdmf):
    """The function names in each temporal collection of an XDMF file, in file order."""
    domain = ET.parse(xdmf).getroot().find("Domain")
    return [
        set(a.get("Name") for a in g.iter("Attribute"))
        for g in domain.findall("Grid")
        if g.get("GridType") == "Collection"
    ]


def field(compartment, name):
    """One function of <compartment>.xdmf, read with the Xdmf3 reader, as one dataset.

    The reader gives one block per temporal collection (unnamed, in file order;
    a collection holds one function or several), or a plain dataset when the file
    holds a single collection.
    """
    path = os.path.join(HERE, compartment + ".xdmf")
    reader = Xdmf3ReaderT(registrationName=compartment + ".xdmf", FileName=[path])
    collections = _collections(path)
    if len(collections) == 1:
        return reader
    index = [i for i, names in enumerate(collections) if name in names][0]
    block = ExtractBlock(
        registrationName=compartment + ": " + name,
        Input=reader,
        Selectors=["/Root/Block%d" % index, "/Root/" + name],
    )
    return MergeBlocks(registrationName=name, Input=block)


def colour(display, view, name, label, bounds, preset):
    """Colour `display` by point array `name` with the fixed range `bounds`."""
    ColorBy(display, ("POINTS", name))
    lut = GetColorTransferFunction(name)
    lut.ApplyPreset(preset, True)
    lut.AutomaticRescaleRangeMode = "Never"
    low, high = bounds
    if high <= low:
        high = low + max(abs(low), 1.0) * 1e-6
    lut.RescaleTransferFunction(low, high)
    display.SetScalarBarVisibility(view, True)
    bar = GetScalarBar(lut, view)
    bar.Title = label
    bar.ComponentTitle = ""
    bar.TitleColor = [0.0, 0.0, 0.0]
    bar.LabelColor = [0.0, 0.0, 0.0]
    bar.HorizontalTitle = 1
    bar.WindowLocation = "Any Location"
    bar.Position = [0.82, 0.05 if "Cool" in preset else 0.52]
    bar.ScalarBarLength = 0.36


def _unit(v):
    n = sum(x * x for x in v) ** 0.5
    return [x / n for x in v]


def camera(view, direction, side=1.0):
    """Look at the cell along the gradient axis, from the front (side=1) or the back."""
    c, r = SETTINGS["center"], SETTINGS["radius"]
    d = _unit([side * x for x in direction])
    if SETTINGS["dim"] == 2:
        view.CameraPosition = [c[0], c[1], c[2] + 4 * r]
        view.CameraViewUp = [-d[1], d[0], 0.0]  # the gradient points to the right
    else:
        up = [0.0, 0.0, 1.0] if abs(d[2]) < 0.9 else [0.0, 1.0, 0.0]
        dot = sum(a * b for a, b in zip(up, d))
        up = _unit([a - dot * b for a, b in zip(up, d)])
        eye = _unit([0.866 * a + 0.5 * b for a, b in zip(d, up)])  # 30 degrees above
        view.CameraPosition = [c[i] + 4 * r * eye[i] for i in range(3)]
        view.CameraViewUp = _unit([a - 0.5 * b for a, b in zip(up, eye)])
    view.CameraFocalPoint = c
    view.CameraParallelProjection = SETTINGS["dim"] == 2
    view.ResetCamera(False)


def build():
    """The scene: membrane by species, (clipped) cytosol, time annotation, camera."""
    view = CreateView("RenderView")
    view.ViewSize = SETTINGS["size"]
    view.OrientationAxesVisibility = 1
    view.OrientationAxesLabelColor = [0.0, 0.0, 0.0]
    view.Background = [1.0, 1.0, 1.0]
    try:
        view.UseColorPaletteForBackground = 0
    except AttributeError:
        pass
    SetActiveView(view)
    species = SETTINGS["species"]
    membrane = field("membrane", species)
    shown = membrane
    if SETTINGS["cytosol_species"]:
        name = SETTINGS["cytosol_species"]
        cytosol = field("cytosol", name)
        if SETTINGS["dim"] == 3:
            up = [0.0, 0.0, 1.0] if abs(SETTINGS["directions"][-1][2]) < 0.9 else [0.0, 1.0, 0.0]
            d = SETTINGS["directions"][-1]
            dot = sum(a * b for a, b in zip(up, d))
            normal = _unit([a - dot * b for a, b in zip(up, d)])
            # the cut face of the clipped cell (a slice: no faces on top of the membrane)
            cytosol = Slice(registrationName=name + " (cut face)", Input=cytosol)
            cytosol.SliceType = "Plane"
            cytosol.SliceType.Origin = SETTINGS["center"]
            cytosol.SliceType.Normal = normal
            shown = Clip(registrationName=species + " (clipped)", Input=membrane)
            shown.ClipType = "Plane"
            shown.ClipType.Origin = SETTINGS["center"]
            shown.ClipType.Normal = normal
        inside = Show(cytosol, view)
        colour(inside, view, name, SETTINGS["cytosol_label"], SETTINGS["cytosol_range"],
               "Cool to Warm")
    outside = Show(shown, view)
    colour(outside, view, species, SETTINGS["species_label"], SETTINGS["range"],
           "Viridis (matplotlib)")
    if SETTINGS["dim"] == 2:
        outside.LineWidth = 6.0
        outside.RenderLinesAsTubes = 1
        outside.Position = [0.0, 0.0, 0.01 * SETTINGS["radius"]]  # above the cytosol
    clock = AnnotateTime(registrationName="time")
    clock.Format = "t = {time:g} s"
    shown_clock = Show(clock, view)
    shown_clock.WindowLocation = "Upper Left Corner"
    shown_clock.Color = [0.0, 0.0, 0.0]
    if SETTINGS["dim"] == 2:
        where = "%s direction to the right" % SETTINGS["reference"]
    else:
        where = "camera on the %s axis" % SETTINGS["reference"]
    note = Text(registrationName="view")
    note.Text = "%s on the membrane; %s" % (species, where)
    shown_note = Show(note, view)
    shown_note.WindowLocation = "Lower Left Corner"
    shown_note.Color = [0.0, 0.0, 0.0]
    shown_note.FontSize = 14
    scene = GetAnimationScene()
    scene.UpdateAnimationUsingDataTimeSteps()
    return view, scene


def show_time(view, scene, t):
    """Go to time `t` (s): the Xdmf3 readers give an empty grid unless a time is set."""
    scene.AnimationTime = t
    view.ViewTime = t


def render(view, scene):
    """One PNG per chosen time (3-D: front and back) in figures/; returns the paths."""
    folder = os.path.join(HERE, "figures")
    if not os.path.isdir(folder):
        os.makedirs(folder)
    written = []
    sides = [("front", 1.0)] if SETTINGS["dim"] == 2 else [("front", 1.0), ("back", -1.0)]
    for t, direction in zip(SETTINGS["times"], SETTINGS["directions"]):
        show_time(view, scene, t)
        for side, sign in sides:
            camera(view, direction, sign)
            Render(view)
            path = os.path.join(folder, "paraview_%s_%s_t%g.png" % (SETTINGS["species"], side, t))
            SaveScreenshot(path, view, ImageResolution=SETTINGS["size"])
            written.append(path)
    return written


def _batch():
    module = servermanager.vtkProcessModule
    return module.GetProcessModule().GetProcessType() == module.PROCESS_BATCH


VIEW, SCENE = build()
show_time(VIEW, SCENE, SETTINGS["times"][-1])
camera(VIEW, SETTINGS["directions"][-1])
if _batch() or "--png" in sys.argv:
    for written in render(VIEW, SCENE):
        print(written)
else:
    Render(VIEW)
'''
