"""Make the example cells of meshes/ (see meshes/README.md); run from the repository root.

    python meshes/make_examples.py            # or: mpiexec -n 2 python meshes/make_examples.py

1. ``blebbed-cell.stl``: an irregular, real-looking cell surface, as a segmentation
   tool would export it: a 5-µm sphere deformed by smooth random shape modes
   (fixed seed), with four blebs and one broad pseudopod, triangulated as a
   subdivided icosahedron (20480 triangles), in µm.
2. ``blebbed-cell.msh``: its volume mesh, ``polarity mesh import``.
3. ``spread-cell.msh``: ``polarity mesh spread`` with the generator's defaults.

Every mesh has membrane elements of 0.4 µm (docs/numerics.md, "Mesh resolution")
and grows to 1 µm inside. The commands are printed, so the files can be remade by
hand.
"""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path

try:  # the dolfinx wheel must be initialised before dolfinx or petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:
    pass

from mpi4py import MPI

import meshio
import numpy as np

from solver import cli
from solver.mesh.shapes import icosphere

HERE = Path(__file__).resolve().parent
SEED = 7
RADIUS = 5.0  # µm
SUBDIVISIONS = 5  # icosahedron refinements: 20 * 4**5 triangles, edges ~0.17 µm
SIZES = ["--size", "0.4", "--inner-size", "1.0"]  # µm at the membrane, inside
REMAKE = ["--overwrite"]


def blebbed_radius(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Radius (µm) in the unit directions ``u``: random smooth modes, blebs, a pseudopod."""
    x, y, z = u.T
    modes = [x * y, y * z, z * x, x * x - y * y, 3 * z * z - 1, x * y * z, x**3 - 3 * x * y * y]
    r = RADIUS * (1 + sum(0.05 * rng.standard_normal() * m for m in modes))
    for _ in range(4):  # blebs: round protrusions ~1.5 µm across
        d = rng.standard_normal(3)
        d /= np.linalg.norm(d)
        r += rng.uniform(0.6, 1.0) * np.exp(-np.sum((u - d) ** 2, axis=1) / 0.03)
    front = np.array([1.0, 0.3, 0.0]) / math.hypot(1.0, 0.3)  # a broad pseudopod
    r += 2.0 * np.exp(-np.sum((u - front) ** 2, axis=1) / 0.25)
    return r


def run(argv: list[str]) -> None:
    if MPI.COMM_WORLD.rank == 0:
        print("$ polarity " + " ".join(shlex.quote(a) for a in argv), flush=True)
    if cli.main(argv) != 0:
        sys.exit(f"failed: polarity {' '.join(argv)}")


def main() -> None:
    surface = HERE / "blebbed-cell.stl"
    if MPI.COMM_WORLD.rank == 0:
        u, triangles = icosphere(SUBDIVISIONS)
        points = u * blebbed_radius(u, np.random.default_rng(SEED))[:, None]
        meshio.write(surface, meshio.Mesh(points, [("triangle", triangles)]), binary=True)
    MPI.COMM_WORLD.barrier()
    rel = surface.relative_to(Path.cwd()) if surface.is_relative_to(Path.cwd()) else surface
    run(
        [
            "mesh",
            "import",
            str(rel),
            "--unit",
            "um",
            *SIZES,
            "-o",
            str(rel.with_suffix(".msh")),
            *REMAKE,
        ]
    )
    run(["mesh", "spread", *SIZES, "-o", str(rel.with_name("spread-cell.msh")), *REMAKE])


if __name__ == "__main__":
    main()
