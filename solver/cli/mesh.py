"""``polarity mesh``: make a cell mesh, import a cell surface, or check a mesh file.

::

    polarity mesh SHAPE [--radius R ...] [--size H] [--inner-size H] -o cell.msh
    polarity mesh import SURFACE [--unit um|nm|mm|px] [--size H] -o cell.msh
    polarity mesh --check FILE

The output (gmsh ``.msh`` with physical groups ``cytosol`` and ``membrane``, or
XDMF with tags) is what a run file reads with ``[mesh] shape = "file"``. Lengths
are in µm, or strings with a unit (``"500 nm"``). Every mesh made or checked is
described by :mod:`solver.mesh.report`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mpi4py import MPI

from solver.cli.common import EXIT_OK, say
from solver.config.limits import Limits
from solver.errors import InputError

IMPORT = "import"
OUTPUT_SUFFIXES = (".msh", ".xdmf")
DEFAULT_SIZE = 0.4  # µm: the P1 membrane size of docs/numerics.md, Mesh resolution
# command-line option -> keyword of solver.mesh.meshing.generate (lengths in µm)
_LENGTH_OPTIONS = {
    "radius": "--radius",
    "height": "--height",
    "dome_radius": "--dome-radius",
    "thickness": "--thickness",
    "length": "--length",
    "size": "--size",
    "inner_size": "--inner-size",
    "grading": "--grading",
    "pixel_size": "--pixel-size",
}
_VECTOR_OPTIONS = {"semi_axes": "--semi-axes", "center": "--center"}
_SHAPE_ONLY = ("radius", "height", "dome_radius", "thickness", "length", "semi_axes", "center")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``mesh`` subcommand to the ``polarity`` parser."""
    from solver.mesh.shapes import DEFAULT_GRADING, SHAPE_DEFAULTS, SHAPES

    defaults = "; ".join(
        f"{shape}: "
        + ", ".join(
            f"{k}={v if not isinstance(v, tuple) else ' '.join(map(str, v))}" for k, v in d.items()
        )
        for shape, d in SHAPE_DEFAULTS.items()
    )
    p = subparsers.add_parser(
        "mesh",
        help="make a cell mesh (gmsh), import a cell surface, or check a mesh file",
        description="Make a cell mesh with gmsh (SHAPE), a volume mesh inside a closed cell "
        "surface (import SURFACE: STL, PLY, OBJ, OFF, VTK/VTU, gmsh), or report on a mesh "
        "file (--check FILE). Lengths in µm, or with a unit ('500 nm'). "
        f"Defaults (µm): {defaults}.",
    )
    p.add_argument(
        "shape",
        nargs="?",
        choices=(*SHAPES, IMPORT),
        help="cell shape, or 'import' followed by a surface file",
    )
    p.add_argument("surface", nargs="?", type=Path, help="with 'import': the surface file")
    p.add_argument("-o", "--out", type=Path, help="output mesh: FILE.msh or FILE.xdmf")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--binary", action="store_true", help="write .msh in gmsh's binary format")
    p.add_argument("--check", type=Path, metavar="FILE", help="report on a mesh file (.msh, .xdmf)")
    shape = p.add_argument_group("shape (µm)")
    shape.add_argument("--radius", help="disk, sphere, capsule; spread: lamella radius")
    shape.add_argument("--semi-axes", nargs="+", metavar="A", help="ellipse: 2, ellipsoid: 3")
    shape.add_argument("--height", help="spread: height of the dome above the substrate")
    shape.add_argument("--dome-radius", help="spread: base radius of the dome (default radius/2)")
    shape.add_argument("--thickness", help="spread: thickness of the lamella")
    shape.add_argument("--length", help="capsule: length end to end (along x)")
    shape.add_argument("--center", nargs="+", metavar="X", help="centre (spread: of the footprint)")
    sizes = p.add_argument_group("element sizes (µm)")
    sizes.add_argument(
        "--size",
        help=f"element size at the membrane (default {DEFAULT_SIZE:g}; "
        "import: the surface's mean edge length)",
    )
    sizes.add_argument(
        "--inner-size", help="element size deep inside the cell (default: --size, uniform)"
    )
    sizes.add_argument(
        "--grading",
        help="distance over which sizes grow from --size to --inner-size "
        f"(default {DEFAULT_GRADING:g})",
    )
    sizes.add_argument("--order", type=int, default=1, choices=(1, 2), help="geometry order")
    sizes.add_argument(
        "--max-elements",
        type=int,
        default=Limits().mesh_elements,
        metavar="N",
        help="refuse a generated mesh estimated to have more cells "
        f"(default {Limits().mesh_elements})",
    )
    units = p.add_argument_group("import")
    units.add_argument(
        "--unit",
        default="um",
        choices=("um", "µm", "nm", "mm", "px"),
        help="length unit of the surface file (default um)",
    )
    units.add_argument("--pixel-size", help="with --unit px: µm per pixel (or e.g. '0.1 um')")
    p.set_defaults(handler=run)


def _length(option: str, value: str) -> float:
    """A length (µm) from the command line: a number, or a string with a unit."""
    from solver.config import units

    try:
        return units.to_solver_units(value, "length")
    except (units.UnitError, ValueError) as err:
        raise InputError(
            option, f"expected a length in µm or with a unit, got {value!r} ({err})"
        ) from None


def _lengths(args: argparse.Namespace) -> dict[str, float | tuple[float, ...]]:
    """The length options that were given, in µm."""
    given: dict[str, float | tuple[float, ...]] = {}
    for key, option in _LENGTH_OPTIONS.items():
        if getattr(args, key) is not None:
            given[key] = _length(option, getattr(args, key))
    for key, option in _VECTOR_OPTIONS.items():
        if getattr(args, key) is not None:
            given[key] = tuple(_length(option, v) for v in getattr(args, key))
    return given


def _check_output(out: Path | None, overwrite: bool) -> Path:
    if out is None:
        raise InputError("-o", "missing: the output mesh file (FILE.msh or FILE.xdmf)")
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"-o {out}", f"expected a file ending in {' or '.join(OUTPUT_SUFFIXES)}")
    comm = MPI.COMM_WORLD
    state = comm.bcast((out.exists(), out.parent.is_dir()) if comm.rank == 0 else None, root=0)
    if state[0] and not overwrite:
        raise InputError(f"-o {out}", "exists; choose another name or pass --overwrite")
    if not state[1]:
        raise InputError(f"-o {out}", f"folder {str(out.parent)!r} does not exist")
    return out


def _check_size(shape: str, kwargs: dict[str, Any], limit: int) -> None:
    """Refuse, before gmsh runs, a mesh estimated to have more than ``limit`` cells."""
    from solver.mesh.catalog import SHAPE_DEFAULTS, SHAPE_LENGTHS, estimate_cells

    if shape not in SHAPE_LENGTHS:
        return  # an unknown shape: generate() names it
    lengths = {k: kwargs.get(k, SHAPE_DEFAULTS[shape][k]) for k in SHAPE_LENGTHS[shape]}
    cells = estimate_cells(
        shape, lengths, kwargs["size"], kwargs.get("inner_size"), kwargs.get("grading")
    )
    if cells > limit:
        raise InputError(
            "--size",
            f"a {shape} of element size {kwargs['size']:g} µm would have about {cells:.3g} "
            f"cells (limit {limit}; raise it with --max-elements)",
        )


def run(args: argparse.Namespace) -> int:
    """Handler of ``polarity mesh``; returns the exit code."""
    from solver.mesh import meshing
    from solver.mesh import report as mesh_report
    from solver.mesh import surface as mesh_import
    from solver.mesh.shapes import SHAPE_DEFAULTS

    comm = MPI.COMM_WORLD
    if args.check is not None:
        if args.shape is not None or args.out is not None:
            raise InputError("--check", "takes a mesh file only, no SHAPE and no -o")
        try:
            tagged = meshing.read(args.check, comm)
        except meshing.MeshError as err:
            raise InputError("--check", str(err)) from None
        say("\n".join(mesh_report.report(tagged).lines()))
        return EXIT_OK
    if args.shape is None:
        raise InputError(
            "polarity mesh", "expected a SHAPE, 'import SURFACE' or --check FILE (see --help)"
        )
    given = _lengths(args)
    out = _check_output(args.out, args.overwrite)
    msh_file = out if out.suffix.lower() == ".msh" else None
    if args.binary and msh_file is None:
        raise InputError("--binary", f"only for a .msh output, not {str(out)!r}")
    try:
        if args.shape == IMPORT:
            if args.surface is None:
                raise InputError("polarity mesh import", "missing: the surface file")
            options = {**_LENGTH_OPTIONS, **_VECTOR_OPTIONS}
            unused = sorted(options[k] for k in _SHAPE_ONLY if k in given)
            if unused or args.order != 1:
                raise InputError(
                    "polarity mesh import",
                    f"{', '.join(unused or ['--order'])} not used: the surface gives the shape",
                )
            scalars = {k: v for k, v in given.items() if not isinstance(v, tuple)}
            tagged = mesh_import.import_surface(
                args.surface,
                comm,
                unit=args.unit,
                pixel_size=scalars.get("pixel_size"),
                size=scalars.get("size"),
                inner_size=scalars.get("inner_size"),
                grading=scalars.get("grading"),
                msh_file=msh_file,
                msh_binary=args.binary,
            )
        else:
            if args.surface is not None:
                raise InputError(
                    f"polarity mesh {args.shape}", f"unexpected argument {str(args.surface)!r}"
                )
            if "pixel_size" in given or args.unit != "um":
                raise InputError(
                    f"polarity mesh {args.shape}", "--unit/--pixel-size are for import"
                )
            # lengths (float) and vectors (tuples) for the keyword arguments of generate
            kwargs: dict[str, Any] = {k: v for k, v in given.items() if k != "pixel_size"}
            kwargs.setdefault("size", DEFAULT_SIZE)
            if args.shape in ("disk", "sphere") and "radius" not in kwargs:
                kwargs["radius"] = SHAPE_DEFAULTS[args.shape]["radius"]  # a float
            if args.shape in ("ellipse", "ellipsoid") and "semi_axes" not in kwargs:
                kwargs["semi_axes"] = SHAPE_DEFAULTS[args.shape]["semi_axes"]
            _check_size(args.shape, kwargs, args.max_elements)
            tagged = meshing.generate(
                args.shape,
                comm,
                order=args.order,
                msh_file=msh_file,
                msh_binary=args.binary,
                **kwargs,
            )
    except meshing.MeshError as err:
        raise InputError(f"polarity mesh {args.shape}", str(err)) from None
    if msh_file is None:
        meshing.write_xdmf(tagged, out)
    say("\n".join([*mesh_report.report(tagged).lines(), f"written: {out}"]))
    return EXIT_OK
