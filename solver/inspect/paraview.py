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

A run of other compartments: "the membrane" is the read-out surface (``membrane``,
else the first surface with species) and "the cytosol" the cell's volume (``cytosol``,
else the membrane's inside); every other compartment with a series is loaded and
shown the same way (volumes cut like the cytosol, surfaces like the membrane), each
coloured by its species that varies most, with a colour bar of its own.

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
from solver.inspect.figure import label_of
from solver.io.compartments import (
    CYTOSOL,
    MEMBRANE,
    primary_volume,
    readout_surface,
    with_series,
)
from solver.io.metrics import load_metrics
from solver.io.results import (
    Series,
    center_of,
    load_record,
    readout_species,
    reference_direction,
    series_of,
)

__all__ = ["STATE_NAME", "write_state"]

STATE_NAME = "polarity_view.py"


def most_varying(series: Series) -> str:
    """The field of ``series`` that varies most over the cell at the last output.

    Its range relative to its mean is the largest: the one worth colouring the inside by.
    """

    def spread(name: str) -> float:
        values = series.values(name)[1][-1]
        mean = float(np.mean(np.abs(values)))
        return float(np.ptp(values)) / mean if mean > 0 else 0.0

    return max(sorted(series.fields), key=spread)


def _range_at(series: Series, name: str, times: list[float]) -> list[float]:
    """The range of ``name`` over the output ``times`` only.

    The inside is coloured by how it varies at the pictured times, not by a transient
    long gone.
    """
    at, values = series.values(name)
    rows = [int(np.argmin(np.abs(at - t))) for t in times]
    return [float(values[rows].min()), float(values[rows].max())]


def write_state(
    out: Path,
    species: str | None = None,
    cytosol_species: str | None = None,
    times: list[float] | None = None,
    size: tuple[int, int] = (1200, 900),
) -> Path:
    """Write ``OUT/polarity_view.py`` and return its path.

    ``species``: membrane species to colour by (default: the first read-out species);
    ``cytosol_species``: of the cytosol (default: the one that varies most), or of
    another volume, which is then coloured by it; ``times`` (s): output times that
    pvbatch renders (default: the last); ``size``: pixels of the PNGs. Every other
    compartment with a series is shown too, coloured by its species that varies most.
    """
    out = Path(out)
    record = load_record(out)
    metrics = load_metrics(out)
    surface = readout_surface(record) or MEMBRANE
    volume = primary_volume(record) or CYTOSOL
    membrane = series_of(out, surface)
    cytosol = series_of(out, volume)
    if membrane is None:
        raise InputError(str(out), f"no {surface}.xdmf: nothing to show")
    species = species or next(iter(readout_species(record)), None)
    if species is None or species not in membrane.fields:
        known = ", ".join(sorted(membrane.fields))
        raise InputError("--species", f"no {surface} field {species!r} in {out} (fields: {known})")
    others = {
        c.name: s
        for c in with_series(record)
        if c.name not in (surface, volume) and (s := series_of(out, c.name)) is not None
    }
    chosen_volume = None  # another volume named by --cytosol-species
    if cytosol_species and (cytosol is None or cytosol_species not in cytosol.fields):
        chosen_volume = next(
            (c for c, s in others.items() if cytosol_species in s.fields and _is_volume(s)), None
        )
    cyto = None
    if cytosol is not None and cytosol.fields:
        cyto = cytosol_species if cytosol_species and not chosen_volume else None
        cyto = cyto or most_varying(cytosol)
        if cyto not in cytosol.fields:
            known = ", ".join(sorted(cytosol.fields))
            raise InputError(
                "--cytosol-species", f"no {volume} field {cyto!r} in {out} (fields: {known})"
            )
    elif cytosol_species and not chosen_volume:
        raise InputError("--cytosol-species", f"no {volume}.xdmf in {out}")
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
    center = center_of(out, record)
    radius = float(np.max(np.linalg.norm(membrane.points - center[: membrane.gdim], axis=1)))
    ref = reference_direction(record, np.array(chosen), center, metrics)
    shown = []
    for c, s in others.items():
        name = cytosol_species if cytosol_species and c == chosen_volume else most_varying(s)
        inside = _is_volume(s)
        shown.append(
            {
                "compartment": c,
                "volume": inside,
                "species": name,
                "label": label_of(record, name),
                "range": _range_at(s, name, chosen) if inside else list(s.range(name)),
            }
        )
    settings = {
        "folder": str(out.resolve()),
        "dim": membrane.gdim,
        "membrane": surface,
        "cytosol": volume,
        "species": species,
        "species_label": label_of(record, species),
        "range": list(membrane.range(species)),
        "cytosol_species": cyto,
        "cytosol_label": label_of(record, cyto) if cyto else None,
        "cytosol_range": _range_at(cytosol, cyto, chosen) if cyto and cytosol else None,
        "others": shown,
        # the volume beyond the membrane (a medium): drawn translucent, around the cell
        "medium": record.get("resolved", {})
        .get("compartments", {})
        .get(surface, {})
        .get("outside"),
        "center": [float(v) for v in center],
        "radius": radius,
        "reference": ref.label,
        "times": chosen,
        "directions": [[float(v) for v in d] for d in ref.directions],
        "size": [int(size[0]), int(size[1])],
    }
    path = out / STATE_NAME
    script = (Path(__file__).parent / "paraview_state.py").read_text()
    if script.count(_SETTINGS_LINE) != 1:
        raise RuntimeError(f"paraview_state.py has no line {_SETTINGS_LINE!r} to fill")
    data = json.dumps(settings, indent=1, ensure_ascii=True)
    path.write_text(script.replace(_SETTINGS_LINE, f'SETTINGS = json.loads(r"""{data}""")'))
    return path


def _is_volume(series: Series) -> bool:
    """Whether ``series`` is of a volume (cells of gdim + 1 nodes), not of a surface."""
    return series.cells.shape[1] == series.gdim + 1


_SETTINGS_LINE = 'SETTINGS: dict = json.loads("{}")  # filled in by polarity paraview'
