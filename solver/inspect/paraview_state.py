"""ParaView state of a polarity run (written into its output folder by `polarity paraview`).

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
    Show,
    Slice,
    Text,
    Xdmf3ReaderT,
)

SETTINGS: dict = json.loads("{}")  # filled in by polarity paraview

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
        Selectors=[f"/Root/Block{index}", "/Root/" + name],
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
        dot = sum(a * b for a, b in zip(up, d, strict=False))
        up = _unit([a - dot * b for a, b in zip(up, d, strict=False)])
        eye = _unit([0.866 * a + 0.5 * b for a, b in zip(d, up, strict=False)])  # 30 degrees above
        view.CameraPosition = [c[i] + 4 * r * eye[i] for i in range(3)]
        view.CameraViewUp = _unit([a - 0.5 * b for a, b in zip(up, eye, strict=False)])
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
            dot = sum(a * b for a, b in zip(up, d, strict=False))
            normal = _unit([a - dot * b for a, b in zip(up, d, strict=False)])
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
        colour(
            inside, view, name, SETTINGS["cytosol_label"], SETTINGS["cytosol_range"], "Cool to Warm"
        )
    outside = Show(shown, view)
    colour(
        outside, view, species, SETTINGS["species_label"], SETTINGS["range"], "Viridis (matplotlib)"
    )
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
        where = "{} direction to the right".format(SETTINGS["reference"])
    else:
        where = "camera on the {} axis".format(SETTINGS["reference"])
    note = Text(registrationName="view")
    note.Text = f"{species} on the membrane; {where}"
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
    for t, direction in zip(SETTINGS["times"], SETTINGS["directions"], strict=False):
        show_time(view, scene, t)
        for side, sign in sides:
            camera(view, direction, sign)
            Render(view)
            path = os.path.join(
                folder, "paraview_{}_{}_t{:g}.png".format(SETTINGS["species"], side, t)
            )
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
