"""Reading an output folder back: the run rebuilt from run.json."""

from __future__ import annotations

import tomllib

from solver.io.results import run_config

RUN_FILE = """
[mesh]
shape = "disk"
radius = "5 um"
size = "1 um"

[time]
end = "1 s"
dt = "0.1 s"

[parameters]
k = "1 um/s"

[stimulus.chemokine]
kind = "linear"
mean = "10 nM"
gradient = "1 %/um"
direction = [0, 1]

[species.c]
compartment = "cytosol"
initial = "1 uM"

[species.m]
compartment = "membrane"

[reactions.bind]
equation = "c -> m"
rate = "RATE"

[metrics]
species = ["m"]
"""


def record(rate: str) -> dict:
    return {"config": tomllib.loads(RUN_FILE.replace("RATE", rate)), "source": "x/config.toml"}


def test_a_run_is_rebuilt_with_its_stimulus_and_read_outs():
    cfg = run_config(record("k*c"))
    assert cfg is not None and cfg.metrics.stimulus == "chemokine"
    assert set(cfg.model.reactions) == {"bind"}


def test_a_run_whose_rates_fail_todays_checks_still_gives_its_stimulus():
    cfg = run_config(record("k*c/(1 + c)"))  # um/s·uM/uM: not a membrane flux
    assert cfg is not None and cfg.metrics.stimulus == "chemokine"
    assert cfg.model.stimuli["chemokine"].direction == (0.0, 1.0)
    assert not cfg.model.reactions  # rebuilt without them


def test_no_config_gives_none():
    assert run_config({"source": "x"}) is None
