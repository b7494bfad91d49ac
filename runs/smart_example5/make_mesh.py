"""Write cubes.msh: the mesh of SMART's example 5, vertex for vertex and cell for cell.

    .venv/bin/python runs/smart_example5/make_mesh.py [-o FILE] [--n 16]

SMART (RangamaniLabUCSD/smart, ``smart.mesh_tools.create_cubes``) meshes the unit cube
(lengths in µm) as legacy DOLFIN's ``UnitCubeMesh(16, 16, 16)``: a grid of 16³ cubes,
each cut into six tetrahedra around its diagonal from (0, 0, 0) to (1, 1, 1). A
tetrahedron belongs to the ER when its midpoint lies in [0.3, 0.7]³, otherwise to the
cytosol. Midpoints sit at 1/4, 1/2 or 3/4 of a grid cube, so the ER is the union of whole
grid cubes, [5/16, 11/16]³ = [0.3125, 0.6875]³. The example keeps the plasma membrane
only on the face x = 0; the other five faces belong to no compartment (no flux).

Written as gmsh discrete entities with named physical groups (the tags are SMART's
markers): volumes ``cytosol`` (1) and ``er`` (2), surfaces ``pm`` (10, the face x = 0)
and ``erm`` (12, the triangles between an ER and a cytosol tetrahedron).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gmsh
import numpy as np

GROUPS = {"cytosol": (3, 1), "er": (3, 2), "pm": (2, 10), "erm": (2, 12)}
LOW, HIGH = 0.3, 0.7  # SMART's cube_condition
EPS = 3e-16  # DOLFIN_EPS, the margin of SMART's tests


def unit_cube(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and tetrahedra of DOLFIN's UnitCubeMesh(n, n, n), in DOLFIN's order."""
    m = n + 1
    k, j, i = np.meshgrid(np.arange(m), np.arange(m), np.arange(m), indexing="ij")
    points = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1) / n
    k, j, i = np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij")
    v0 = (k * m * m + j * m + i).ravel()
    v1, v2, v4 = v0 + 1, v0 + m, v0 + m * m
    v3, v5, v6 = v1 + m, v1 + m * m, v2 + m * m
    v7 = v3 + m * m
    six = [
        (v0, v1, v3, v7),
        (v0, v1, v7, v5),
        (v0, v5, v7, v4),
        (v0, v3, v2, v7),
        (v0, v6, v4, v7),
        (v0, v2, v6, v7),
    ]
    return points, np.concatenate([np.stack(t, axis=1) for t in six])


def classify(points: np.ndarray, tets: np.ndarray) -> dict[str, np.ndarray]:
    """The cells of each volume and the triangles of each surface."""
    mid = points[tets].mean(axis=1)
    in_er = np.all((mid > LOW - EPS) & (mid < HIGH + EPS), axis=1)
    faces = np.concatenate([np.delete(tets, c, axis=1) for c in range(4)])
    owner_er = np.tile(in_er, 4)
    unique, index, count = np.unique(
        np.sort(faces, axis=1), axis=0, return_inverse=True, return_counts=True
    )
    er_sides = np.bincount(index.ravel(), weights=owner_er, minlength=len(unique))
    on_x0 = np.all(points[unique][:, :, 0] <= EPS, axis=1)
    return {
        "cytosol": tets[~in_er],
        "er": tets[in_er],
        "pm": unique[(count == 1) & on_x0],
        "erm": unique[(count == 2) & (er_sides == 1)],
    }


def write(path: Path, n: int) -> dict[str, np.ndarray]:
    """Build the mesh with the gmsh API and write it (format 4.1)."""
    points, tets = unit_cube(n)
    parts = classify(points, tets)
    gmsh.initialize()
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("smart_example5")
        for dim, tag in GROUPS.values():
            gmsh.model.addDiscreteEntity(dim, tag)
        tags = np.arange(1, len(points) + 1)
        gmsh.model.mesh.addNodes(3, GROUPS["cytosol"][1], tags, points.ravel())
        first = 1
        for name, cells in parts.items():
            dim, tag = GROUPS[name]
            kind = gmsh.model.mesh.getElementType("Tetrahedron" if dim == 3 else "Triangle", 1)
            numbers = np.arange(first, first + len(cells))
            gmsh.model.mesh.addElementsByType(tag, kind, numbers, (cells + 1).ravel())
            first += len(cells)
            gmsh.model.addPhysicalGroup(dim, [tag], tag, name)
        gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
        gmsh.write(str(path))
    finally:
        gmsh.finalize()
    return parts


def main(argv: list[str] | None = None) -> int:
    """Command line: write the file and print what it holds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name("cubes.msh"))
    parser.add_argument("--n", type=int, default=16, help="grid cubes per side (SMART: 16)")
    args = parser.parse_args(argv)
    parts = write(args.output, args.n)
    counts = ", ".join(f"{name} {len(cells)}" for name, cells in parts.items())
    print(f"{args.output}: {(args.n + 1) ** 3} vertices; cells per group: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
