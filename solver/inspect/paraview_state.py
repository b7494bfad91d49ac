"""ParaView state of a polarity run (written into its output folder by `polarity paraview`).

Open in ParaView:  paraview --script=polarity_view.py   (or File > Load State...)
Render PNGs:       xvfb-run -a -s "-screen 0 1024x768x24" pvbatch polarity_view.py
                   (pvbatch, or pvpython with --png: one image per chosen time, 3-D
                   runs from the front and from the back, into figures/)

Arrays: membrane.xdmf holds the membrane species (surface densities, uM*um) and the
stimulus sampled on the membrane (uM; occupancy dimensionless); cytosol.xdmf the
cytosol species (uM); <compartment>.xdmf those of any other compartment of the run
(SETTINGS["others"]). Lengths in um, times in s.
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
    Cone,
    CreateView,
    ExtractBlock,
    GetAnimationScene,
    GetColorTransferFunction,
    GetScalarBar,
    Line,
    MergeBlocks,
    Render,
    SaveScreenshot,
    SetActiveView,
    Show,
    Slice,
    Text,
    Tube,
    Xdmf3ReaderT,
    _DisableFirstRenderCameraReset,
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


def colour(display, view, name, label, bounds, preset, slot=None):
    """Colour `display` by point array `name` with the fixed range `bounds`.

    `slot`: where its colour bar goes, ([x, y], length) in the view's fractions.
    """
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
    position, length = slot or ([0.82, 0.05 if "Cool" in preset else 0.52], 0.36)
    bar.Position = position
    bar.ScalarBarLength = length
    bar.RangeLabelFormat = "%-#.6g"  # a narrow range needs its digits


def slots(count):
    """Places of `count` colour bars, ([x, y], length) each, membrane's first.

    Two bars: one above the other on the right; more: three on the right, top down,
    then the others on the left, clear of the time above and the caption below, and
    of the cell (the camera centres it).
    """
    if count <= 2:  # the membrane's above the cytosol's
        return [([0.82, 0.52], 0.36), ([0.82, 0.05], 0.36)][:count]
    return [([0.83 if k < 3 else 0.11, 0.68 - 0.3 * (k % 3)], 0.2) for k in range(count)]


def _unit(v):
    n = sum(x * x for x in v) ** 0.5
    return [x / n for x in v]


def _frame(direction):
    """Unit vectors (d, up, s) of a 3-D view: the gradient, up, and the side s = d x up."""
    d = _unit(direction)
    up = [0.0, 0.0, 1.0] if abs(d[2]) < 0.9 else [0.0, 1.0, 0.0]
    dot = sum(a * b for a, b in zip(up, d, strict=False))
    up = _unit([a - dot * b for a, b in zip(up, d, strict=False)])
    s = [d[1] * up[2] - d[2] * up[1], d[2] * up[0] - d[0] * up[2], d[0] * up[1] - d[1] * up[0]]
    return d, up, s


def camera(view, direction, side=1.0):
    """Point the camera: the gradient to the right (2-D), or at the cut face (3-D).

    3-D: the cell seen from the side 20 degrees from above, the gradient to the right
    (side=1) or, from the other side, to the left (side=-1).
    """
    c, r = SETTINGS["center"], SETTINGS["radius"]
    if SETTINGS["dim"] == 2:
        d = _unit(direction)
        view.CameraPosition = [c[0], c[1], c[2] + 4 * r]
        view.CameraViewUp = [-d[1], d[0], 0.0]
    else:
        d, up, s = _frame(direction)
        eye = _unit([side * 0.94 * a + 0.34 * b for a, b in zip(s, up, strict=False)])
        view.CameraPosition = [c[i] + 4.5 * r * eye[i] for i in range(3)]
        view.CameraViewUp = up
    view.CameraFocalPoint = c
    view.CameraParallelProjection = SETTINGS["dim"] == 2
    position = list(view.CameraPosition)
    view.ResetCamera(False)
    # a medium around the cell would fill the picture: frame the cell and its surroundings
    # (the view's camera properties lag behind ResetCamera: read the camera itself)
    active = view.GetActiveCamera()
    if SETTINGS["dim"] == 2:
        active.SetParallelScale(min(active.GetParallelScale(), 3.2 * r))
    else:
        far = sum((a - b) ** 2 for a, b in zip(active.GetPosition(), c, strict=False)) ** 0.5
        if far > 7.0 * r:
            active.SetPosition(*position)


def _cutaway(view, source, direction, side, name):
    """The half of `source` away from a camera on `side`, cut through the centre."""
    _, _, s = _frame(direction)
    half = Clip(registrationName=name, Input=source)
    half.ClipType = "Plane"
    half.ClipType.Origin = SETTINGS["center"]
    half.ClipType.Normal = [side * x for x in s]
    return half


def _arrow(view, direction):
    """An arrow above the cell along the gradient (a tube and a cone)."""
    c, r = SETTINGS["center"], SETTINGS["radius"]
    d, up, _ = _frame(direction)
    base = [c[i] + 1.35 * r * up[i] - 0.7 * r * d[i] for i in range(3)]
    tip = [base[i] + 1.2 * r * d[i] for i in range(3)]
    shaft = Tube(registrationName="gradient shaft", Input=Line(Point1=base, Point2=tip))
    shaft.Radius = 0.04 * r
    head = Cone(registrationName="gradient head", Center=tip, Direction=d)
    head.Height, head.Radius, head.Resolution = 0.3 * r, 0.12 * r, 24
    for part in (shaft, head):
        shown = Show(part, view)
        shown.ColorArrayName = ["POINTS", ""]
        shown.AmbientColor = shown.DiffuseColor = [0.3, 0.3, 0.3]


#: colour maps of surfaces and of volumes, in turn (the membrane and cytosol first)
SURFACE_PRESETS = ["Viridis (matplotlib)", "Plasma (matplotlib)", "Inferno (matplotlib)"]
VOLUME_PRESETS = ["Cool to Warm", "Blue Orange (divergent)", "Black-Body Radiation"]


def layers():
    """What the scene shows: one entry per compartment, the membrane and cytosol first.

    Each: its reader (one function of its series), whether it is a volume, the
    species it is coloured by, with label, range, colour map and colour-bar slot.
    """
    found = [
        {
            "source": field(SETTINGS["membrane"], SETTINGS["species"]),
            "volume": False,
            "species": SETTINGS["species"],
            "label": SETTINGS["species_label"],
            "range": SETTINGS["range"],
        }
    ]
    if SETTINGS["cytosol_species"]:
        found.append(
            {
                "source": field(SETTINGS["cytosol"], SETTINGS["cytosol_species"]),
                "volume": True,
                "species": SETTINGS["cytosol_species"],
                "label": SETTINGS["cytosol_label"],
                "range": SETTINGS["cytosol_range"],
            }
        )
    for other in SETTINGS.get("others", []):
        found.append(dict(other, source=field(other["compartment"], other["species"])))
    counts = {True: 0, False: 0}
    for layer, slot in zip(found, slots(len(found)), strict=False):
        presets = VOLUME_PRESETS if layer["volume"] else SURFACE_PRESETS
        layer["preset"] = presets[counts[layer["volume"]] % len(presets)]
        layer["slot"] = slot
        counts[layer["volume"]] += 1
    return found


def build():
    """The scene: membrane by species, cytosol by a species that varies, time, caption."""
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
    direction = SETTINGS["directions"][-1]
    scene_layers = layers()
    views = {}
    if SETTINGS["dim"] == 3:
        for side in (1.0, -1.0):
            parts = []
            for layer in scene_layers:
                source, what = layer["source"], f"{layer['species']}"
                if layer["volume"]:  # the far half of the horizontal section
                    _, up, _ = _frame(direction)
                    section = Slice(registrationName=f"{what} (section)", Input=source)
                    section.SliceType = "Plane"
                    section.SliceType.Origin = SETTINGS["center"]
                    section.SliceType.Normal = up
                    source, what = section, f"{what} (half section)"
                parts.append((_cutaway(view, source, direction, side, f"{what} (cut)"), layer))
            views[side] = parts
        _arrow(view, direction)
    else:
        views[1.0] = [(layer["source"], layer) for layer in scene_layers]
    shown = {}
    for side, parts in views.items():
        for source, layer in parts:
            display = Show(source, view)
            display.Ambient, display.Diffuse = 0.35, 0.75  # inner faces lit too
            colour(
                display,
                view,
                layer["species"],
                layer["label"],
                layer["range"],
                layer["preset"],
                layer["slot"],
            )
            if layer.get("compartment") is not None and layer["compartment"] == SETTINGS.get(
                "medium"
            ):
                display.Opacity = 0.45  # the medium around the cell: the labels stay legible
            if not layer["volume"] and SETTINGS["dim"] == 2:
                display.LineWidth = 6.0
                display.RenderLinesAsTubes = 1
                display.Position = [0.0, 0.0, 0.01 * SETTINGS["radius"]]  # above the volumes
            shown.setdefault(side, []).append(display)
    clock = AnnotateTime(registrationName="time")
    clock.Format = "t = {time:g} s"
    shown_clock = Show(clock, view)
    shown_clock.WindowLocation = "Upper Left Corner"
    shown_clock.Color = [0.0, 0.0, 0.0]
    note = Text(registrationName="view")
    shown_note = Show(note, view)
    shown_note.WindowLocation = "Lower Left Corner"
    shown_note.Color = [0.0, 0.0, 0.0]
    shown_note.FontSize = 14
    scene = GetAnimationScene()
    scene.UpdateAnimationUsingDataTimeSteps()
    return {"view": view, "scene": scene, "shown": shown, "note": note}


def arrange(state, side):
    """Show the cutaway seen from `side` (3-D) and say what the picture shows."""
    for s, displays in state["shown"].items():
        for display in displays:
            display.Visibility = 1 if s == side else 0
    reference, species = SETTINGS["reference"], SETTINGS["species"]
    if SETTINGS["dim"] == 2:
        text = f"{species} on the membrane; the {reference} direction points to the right"
    else:
        where = "right" if side > 0 else "left"
        inside = SETTINGS["cytosol_species"]
        text = f"{species} on the far half of the membrane; the {reference} (arrow) points "
        text += where + (f"; {inside} on the horizontal section" if inside else "")
    others = [f"{o['species']} in {o['compartment']}" for o in SETTINGS.get("others", [])]
    if others:
        text += "\nalso " + ", ".join(others)
    state["note"].Text = text
    camera(state["view"], SETTINGS["directions"][-1], side)


def show_time(view, scene, t):
    """Go to time `t` (s): the Xdmf3 readers give an empty grid unless a time is set."""
    scene.AnimationTime = t
    view.ViewTime = t


def render(state):
    """One PNG per chosen time (3-D: the cutaway from both sides) in figures/."""
    view, scene = state["view"], state["scene"]
    folder = os.path.join(HERE, "figures")
    if not os.path.isdir(folder):
        os.makedirs(folder)
    written = []
    sides = [("front", 1.0)] if SETTINGS["dim"] == 2 else [("front", 1.0), ("back", -1.0)]
    for t, direction in zip(SETTINGS["times"], SETTINGS["directions"], strict=False):
        show_time(view, scene, t)
        for side, sign in sides:
            arrange(state, sign)
            camera(view, direction, sign)
            Render(view)
            name = f"paraview_{SETTINGS['species']}_{side}_t{t:g}.png"
            path = os.path.join(folder, name)
            SaveScreenshot(path, view, ImageResolution=SETTINGS["size"])
            written.append(path)
    return written


def _batch():
    module = servermanager.vtkProcessModule
    return module.GetProcessModule().GetProcessType() == module.PROCESS_BATCH


_DisableFirstRenderCameraReset()  # the camera is set by camera(), not by the first render
STATE = build()
show_time(STATE["view"], STATE["scene"], SETTINGS["times"][-1])
arrange(STATE, 1.0)
if _batch() or "--png" in sys.argv:
    for written in render(STATE):
        print(written)
else:
    Render(STATE["view"])
