"""Stimuli that do not fit their cell are refused once the mesh exists, in one line."""

from __future__ import annotations

from mpi4py import MPI

import numpy as np
import pytest

from solver.errors import InputError
from solver.fem.geometry import CellGeometry
from solver.fem.placement import check_directions, check_stimuli, points_inside
from solver.mesh import meshing
from solver.model.stimulus import Stimulus, StimulusEvent

COMM = MPI.COMM_WORLD


@pytest.fixture(scope="module")
def disk():
    return CellGeometry.from_tagged(meshing.generate("disk", COMM, radius=5.0, size=1.0))


@pytest.fixture(scope="module")
def ball():
    return CellGeometry.from_tagged(meshing.generate("sphere", COMM, radius=5.0, size=1.5))


def linear(direction, events=()):
    return {
        "c": Stimulus("c", "linear", mean=0.01, gradient=0.1, direction=direction, events=events)
    }


def test_points_inside_the_disk_and_outside_it(disk):
    points = np.array([[0.0, 0.0, 0.0], [4.9, 0.0, 0.0], [5.2, 0.0, 0.0], [8.0, 3.0, 0.0]])
    assert points_inside(disk, points).tolist() == [True, True, False, False]


def test_points_inside_the_ball_are_found_on_every_rank(ball):
    points = np.array([[0.0, 0.0, 4.5], [0.0, 0.0, 5.5], [3.0, 3.0, 3.0]])  # |(3,3,3)| = 5.2
    assert points_inside(ball, points).tolist() == [True, False, False]


@pytest.mark.parametrize(
    "stimuli, gdim, key",
    [
        (linear((0.0, 0.0, 1.0)), 2, "stimulus.c.direction"),
        (linear((1.0, 0.0)), 3, "stimulus.c.direction"),
        (
            linear((1.0, 0.0), (StimulusEvent(5.0, direction=(0.0, 0.0, 2.0)),)),
            2,
            "stimulus.c.events[0].direction",
        ),
    ],
)
def test_directions_that_do_not_fit_the_cell_are_refused(stimuli, gdim, key):
    with pytest.raises(InputError) as info:
        check_directions(stimuli, gdim)
    assert info.value.where == key


def test_directions_that_fit_pass():
    check_directions(linear((0.6, 0.8)), 2)
    check_directions(linear((0.6, 0.8, 0.0)), 2)
    check_directions(linear((0.0, 0.0, 1.0)), 3)


@pytest.mark.parametrize(
    "position, events, key",
    [
        ((1.0, 1.0), (), "stimulus.c.position"),
        ((9.0, 0.0), (StimulusEvent(2.0, position=(0.0, -4.0)),), "stimulus.c.events[0].position"),
        ((9.0, 0.0, 1.0), (), "stimulus.c.position"),
    ],
)
def test_a_source_inside_the_cell_or_off_its_plane_is_refused(disk, position, events, key):
    stimuli = {"c": Stimulus("c", "point_source", mean=0.01, position=position, events=events)}
    with pytest.raises(InputError) as info:
        check_stimuli(stimuli, disk)
    assert info.value.where == key


def test_a_source_outside_the_cell_passes(disk):
    stimuli = {"c": Stimulus("c", "point_source", mean=0.01, position=(9.0, 0.0))}
    check_stimuli(stimuli, disk)


def test_an_exponential_profile_that_overflows_on_the_cell_is_refused(disk):
    steep = {"c": Stimulus("c", "exponential", mean=0.01, gradient=200.0, direction=(1.0, 0.0))}
    with pytest.raises(InputError) as info:
        check_stimuli(steep, disk, np.zeros(3))
    assert info.value.where == "stimulus.c.gradient" and "overflows" in info.value.message
    later = {
        "c": Stimulus(
            "c",
            "exponential",
            mean=0.01,
            gradient=0.1,
            events=(StimulusEvent(1.0, gradient=500.0),),
        )
    }
    with pytest.raises(InputError) as info:
        check_stimuli(later, disk, np.zeros(3))
    assert info.value.where == "stimulus.c.events[0].gradient"
    fine = {"c": Stimulus("c", "exponential", mean=0.01, gradient=100.0, direction=(1.0, 0.0))}
    check_stimuli(fine, disk, np.zeros(3))  # exp(100 × 5) fits a double


@pytest.fixture(scope="module")
def in_medium():
    """A disk cell of radius 1 µm with a nucleus, in a disk of medium of radius 4 µm."""
    from solver.model.model import Compartment, Kind

    tagged = meshing.generate(
        "disk",
        COMM,
        radius=1.0,
        size=0.25,
        inner={"nucleus": {"shape": "disk", "radius": 0.4}},
        outside={"shape": "disk", "radius": 4.0, "size": 0.5},
    )
    compartments = {
        "cytosol": Compartment("cytosol", Kind.VOLUME),
        "nucleus": Compartment("nucleus", Kind.VOLUME),
        "medium": Compartment("medium", Kind.VOLUME),
        "membrane": Compartment("membrane", Kind.SURFACE, "cytosol", "medium"),
    }
    return CellGeometry.from_tagged(tagged, compartments)


def test_the_medium_is_outside_the_cell_and_the_nucleus_inside(in_medium):
    points = np.array([[3.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.7, 0.0, 0.0], [1.5, 1.5, 0.0]])
    assert points_inside(in_medium, points).tolist() == [False, True, True, False]
    pipette = {"p": Stimulus("p", "point_source", mean=1.0, position=(3.0, 0.0))}
    check_stimuli(pipette, in_medium, np.zeros(3))  # a pipette in the medium is fine


def test_an_exponential_profile_is_checked_on_the_cell_not_the_medium(in_medium):
    # exp(300/um * 1 um) fits the cell; over the 4-um medium it would overflow
    steep = {"c": Stimulus("c", "exponential", mean=0.01, gradient=300.0, direction=(1.0, 0.0))}
    check_stimuli(steep, in_medium, np.zeros(3))
    with pytest.raises(InputError, match="overflows"):
        check_stimuli(
            {"c": Stimulus("c", "exponential", mean=0.01, gradient=900.0, direction=(1.0, 0.0))},
            in_medium,
            np.zeros(3),
        )
