"""A full disk (or another I/O error) at any write: exit 1, status failed, reason; --restart.

Every write site — the field series (HDF5 data files and the XDMF index), metrics.csv,
run.json and the checkpoint — fails once with ENOSPC (on rank 0, where files are
written: the other ranks must not hang). The run ends with exit code 1 and one line
on standard error naming the file, ``run.json`` says ``failed`` with the reason, no
``.tmp`` file is left, the last checkpoint is intact, and ``--restart`` then completes
the run to the answer of an uninterrupted one. A real full filesystem (a small tmpfs)
gives the same.
"""

from __future__ import annotations

import errno
import io
import json
import subprocess
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest

from solver import cli
from solver.io import checkpoint, files, metrics, series
from solver.io.metrics import load_metrics
from tests.cases import KRYLOV_AGREEMENT, exchange_disk, mount_tmpfs

WORLD = MPI.COMM_WORLD
RUN_FILE = exchange_disk(end="0.5 s", dt="0.05 s", every="0.1 s")
CASE = Path(__file__).parents[2] / "runs" / "chemotaxis_2d" / "config.toml"


def _write(path: Path, text: str) -> Path:
    if WORLD.rank == 0:
        path.write_text(text)
    WORLD.barrier()
    return path


def _full(path: object) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", str(path))


class _Injector:
    """Make the ``at``-th write of files whose name ends with ``suffix`` fail (once)."""

    def __init__(self, suffix: str, at: int) -> None:
        self.suffix, self.at, self.calls = suffix, at, 0

    def due(self, path: Path) -> bool:
        if not str(path).endswith(self.suffix):
            return False
        self.calls += 1
        return self.calls == self.at

    def atomic_write(self, original):
        def write(path, fill):
            if not self.due(path):
                return original(path, fill)

            def half(tmp):  # the file is begun, then the disk is full
                fill(tmp)
                raise _full(tmp)

            return original(path, half)

        return write


class _FullFile(io.FileIO):
    """metrics.csv whose ``at``-th row gets half written, then the disk is full."""

    injector: _Injector

    def write(self, data):  # type: ignore[override]
        if self.injector.due(Path(self.name)):
            super().write(bytes(data)[: len(data) // 2])
            raise _full(self.name)
        return super().write(data)


SITES = {
    "series data": ("membrane/000003.h5", 1),
    "series index": ("cytosol.xdmf", 4),
    "metrics.csv": ("metrics.csv", 4),
    "run.json": ("run.json", 2),  # the record of the end; written again as failed
    "checkpoint": ("state.h5", 3),
}


def _inject(monkeypatch, site: str) -> None:
    suffix, at = SITES[site]
    injector = _Injector(suffix, at)
    if site == "metrics.csv":
        _FullFile.injector = injector
        fake_io = type("io", (), {"FileIO": _FullFile, "StringIO": io.StringIO})
        monkeypatch.setattr(metrics, "io", fake_io)
        return
    for module in (files, series, metrics):
        monkeypatch.setattr(module, "atomic_write", injector.atomic_write(module.atomic_write))


def _leftovers(out: Path) -> list[str]:
    WORLD.barrier()  # rank 0 releases the lock as it returns
    return [str(p) for p in out.rglob("*") if p.name.endswith(".tmp") or ".polarity.lock" in p.name]


@pytest.fixture
def reference(tmp_shared) -> Path:
    cfg = _write(tmp_shared / "config.toml", RUN_FILE)
    assert cli.main(["run", str(cfg), "-o", str(tmp_shared / "full")]) == cli.EXIT_OK
    return tmp_shared / "full"


@pytest.mark.parametrize("site", sorted(SITES))
def test_a_full_disk_fails_the_run_cleanly_and_restart_completes_it(
    tmp_shared, reference, capsys, monkeypatch, site
):
    cfg = tmp_shared / "config.toml"
    out = tmp_shared / "out"
    capsys.readouterr()
    _inject(monkeypatch, site)
    assert cli.main(["run", str(cfg), "-o", str(out)]) == cli.EXIT_FAILED
    monkeypatch.undo()
    captured = capsys.readouterr()
    if WORLD.rank == 0:
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1, captured.err
        assert "Traceback" not in captured.err + captured.out
        assert "No space left on device" in lines[0] and SITES[site][0].split("/")[-1] in lines[0]
        assert "--restart" in lines[0]
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed"
    assert "No space left on device" in record["reason"]
    assert _leftovers(out) == []
    stored = checkpoint.read(checkpoint.path_in(out), WORLD)  # the last one, readable
    assert stored.meta["t"] <= record["t"]
    # the rows written are whole
    assert load_metrics(out)["t"] == pytest.approx(
        [0.1 * k for k in range(len(load_metrics(out)["t"]))]
    )
    # space is back: the run continues to the answer of the uninterrupted one
    assert cli.main(["run", str(cfg), "-o", str(out), "--restart"]) == cli.EXIT_OK
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "completed" and record["t"] == pytest.approx(0.5)
    assert _leftovers(out) == []
    got, want = load_metrics(out), load_metrics(reference)
    assert got["t"] == pytest.approx(want["t"])
    for column in ("total_c", "total_m"):  # the continued run's Krylov solves differ
        assert np.allclose(got[column], want[column], rtol=KRYLOV_AGREEMENT), column
    text = (out / "membrane.xdmf").read_text()
    assert text.count("<Time ") == 6


@pytest.mark.serial  # mounts a filesystem
def test_a_real_full_filesystem(tmp_path, capsys):
    """A 400 kB tmpfs fills up during the run; made larger, the run is continued."""
    disk = tmp_path / "disk"
    disk.mkdir()
    why = mount_tmpfs(disk, "size=400k")
    if why:
        pytest.skip(f"cannot mount a small tmpfs to fill ({why})")
    try:
        out = disk / "out"
        sets = ["--set", "mesh.size=1", "--set", "time.end=60", "--set", "output.every=2"]
        args = ["run", str(CASE), "-o", str(out), *sets]
        assert cli.main(args) == cli.EXIT_FAILED
        captured = capsys.readouterr()
        assert len(captured.err.strip().splitlines()) == 1, captured.err
        assert "No space left on device" in captured.err
        record = json.loads((out / "run.json").read_text())
        assert record["status"] == "failed" and "No space left" in record["reason"]
        assert _leftovers(out) == []
        assert checkpoint.read(checkpoint.path_in(out), MPI.COMM_SELF).meta["t"] > 0
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        assert cli.main([*args, "--restart"]) == cli.EXIT_OK
        record = json.loads((out / "run.json").read_text())
        assert record["status"] == "completed" and record["t"] == pytest.approx(60)
        assert list(load_metrics(out)["t"]) == pytest.approx([2.0 * k for k in range(31)])
        assert _leftovers(out) == []
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
