"""Every shipped case runs: each runs/*/config.toml, shortened to a few steps."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from mpi4py import MPI

import pytest

from solver import cli, config

CASES = sorted((Path(__file__).resolve().parents[2] / "runs").glob("*/config.toml"))


def test_there_are_cases():
    assert CASES


@pytest.mark.parametrize("path", CASES, ids=[p.parent.name for p in CASES])
def test_case_runs_a_few_steps(path, tmp_shared):
    time = config.load(path).time
    dt = time.dt
    out = tmp_shared / "out"
    code = cli.main(
        [
            "run",
            str(path),
            "-o",
            str(out),
            "--set",
            f"time.end={3 * dt!r}",
            "--set",
            f"output.every={dt!r}",
        ]
    )
    assert code == 0
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "completed" and record["t"] == pytest.approx(3 * dt)
    # fixed steps: exactly 3; adaptive ones: as many as the error needs from the first dt
    assert record["steps"] == 3 if not time.adaptive else record["steps"] >= 2
    assert record["mpi_ranks"] == MPI.COMM_WORLD.size
    # every stimulus (and its occupancy) is written with the membrane; read-outs with metrics
    cfg = config.load(path)
    if cfg.model.stimuli and (out / "membrane.xdmf").exists():
        root = ET.fromstring((out / "membrane.xdmf").read_text())
        names = {a.get("Name") for a in root.iter("Attribute")}
        for stimulus in cfg.model.stimuli.values():
            assert set(stimulus.symbols) <= names
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    for name in cfg.metrics.species:
        assert f"PI_{name}" in header
