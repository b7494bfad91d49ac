"""``polarity mesh``: make a cell mesh, import a cell surface, or check a mesh file.

::

    polarity mesh SHAPE [--radius R ...] [--size H] [--inner-size H] -o cell.msh
    polarity mesh --from config.toml -o cell.msh
    polarity mesh import SURFACE [--inner SURFACE] [--unit um|nm|mm|px] [--size H] -o cell.msh
    polarity mesh --check FILE

The output (gmsh ``.msh`` with physical groups ``cytosol`` and ``membrane``, or
XDMF with tags) is what a run file reads with ``[mesh] shape = "file"``. ``--from``
makes the mesh of the ``[mesh]`` table of a TOML file (a run file), nested ones
(``[mesh.inner.NAME]``, ``[mesh.outside]``) included; a mesh of several volumes
keeps the names of its volumes and surfaces in either format. Lengths are in µm, or
strings with a unit (``"500 nm"``). Every mesh made or checked is described by
:mod:`solver.mesh.report`.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
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
    p.add_argument(
        "--from",
        dest="from_file",
        type=Path,
        metavar="TOML",
        help="make the mesh of the [mesh] table of a run file (inner bodies, medium included)",
    )
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
        metavar="N",
        help="refuse a generated mesh estimated to have more cells "
        f"(default {Limits().mesh_elements}; --from: the file's [limits] mesh_elements)",
    )
    units = p.add_argument_group("import")
    units.add_argument(
        "--unit",
        default="um",
        choices=("um", "µm", "nm", "mm", "px"),
        help="length unit of the surface file (default um)",
    )
    units.add_argument("--pixel-size", help="with --unit px: µm per pixel (or e.g. '0.1 um')")
    units.add_argument(
        "--inner",
        type=Path,
        metavar="SURFACE",
        help="a closed surface inside the cell's: an inner body (a second piece of the "
        "cell's file works too)",
    )
    units.add_argument("--inner-name", default="nucleus", help="its volume (default nucleus)")
    units.add_argument("--inner-surface", default="envelope", help="its surface (default envelope)")
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


def _from_file(args: argparse.Namespace, comm: MPI.Comm, msh_file: Path | None) -> Any:
    """The mesh of the ``[mesh]`` table of the TOML file ``--from``."""
    from solver.config import runfile
    from solver.config.limits import read_limits
    from solver.config.mesh import read_mesh
    from solver.config.values import Values
    from solver.mesh import meshing

    path = args.from_file
    if args.shape is not None:
        raise InputError("--from", f"takes a run file and -o, not a SHAPE ({args.shape!r})")
    data = runfile._read_toml(path)  # InputError naming the file
    try:
        limits = read_limits(data.get("limits", {}))
        if args.max_elements is not None:
            limits = replace(limits, mesh_elements=args.max_elements)
        runfile.check_document(data, limits)
        values = Values(path.parent, limits)
        if "mesh" not in data:
            raise InputError("mesh", "missing table [mesh]")
        spec = read_mesh(values, values.table("mesh", data["mesh"]))
    except InputError as err:
        raise err.located(str(path)) from None
    if spec.file is not None:
        raise InputError(f"{path}: mesh.shape", "'file': the mesh exists; --check reports on it")
    try:
        return meshing.generate(
            spec.shape, comm, msh_file=msh_file, msh_binary=args.binary, **spec.arguments()
        )
    except meshing.MeshError as err:
        raise InputError(f"{path}: mesh", str(err)) from None


def run(args: argparse.Namespace) -> int:
    """Handler of ``polarity mesh``; returns the exit code."""
    from solver.mesh import meshing
    from solver.mesh import report as mesh_report
    from solver.mesh import surface as mesh_import
    from solver.mesh.shapes import SHAPE_DEFAULTS

    comm = MPI.COMM_WORLD
    if args.check is not None:
        if args.shape is not None or args.out is not None or args.from_file is not None:
            raise InputError("--check", "takes a mesh file only, no SHAPE, --from or -o")
        try:
            tagged = meshing.read(args.check, comm)
        except meshing.MeshError as err:
            raise InputError("--check", str(err)) from None
        say("\n".join(mesh_report.report(tagged).lines()))
        return EXIT_OK
    if args.shape is None and args.from_file is None:
        raise InputError(
            "polarity mesh",
            "expected a SHAPE, 'import SURFACE', --from TOML or --check FILE (see --help)",
        )
    given = _lengths(args)
    out = _check_output(args.out, args.overwrite)
    msh_file = out if out.suffix.lower() == ".msh" else None
    if args.binary and msh_file is None:
        raise InputError("--binary", f"only for a .msh output, not {str(out)!r}")
    nested = (args.inner, args.inner_name != "nucleus", args.inner_surface != "envelope")
    if args.shape != IMPORT and any(nested):
        raise InputError("--inner", "--inner/--inner-name/--inner-surface are for import")
    if args.from_file is not None:
        if given or args.order != 1:
            raise InputError("--from", "the run file's [mesh] table gives the shape and sizes")
        tagged = _from_file(args, comm, msh_file)
        if msh_file is None:
            meshing.write_xdmf(tagged, out)
        say("\n".join([*mesh_report.report(tagged).lines(), f"written: {out}"]))
        return EXIT_OK
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
                inner=args.inner,
                inner_name=args.inner_name,
                inner_surface=args.inner_surface,
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
            limit = Limits().mesh_elements if args.max_elements is None else args.max_elements
            _check_size(args.shape, kwargs, limit)
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
