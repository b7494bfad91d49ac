"""The exchange benchmark written by hand in plain dolfinx 0.11 (no polarity code).

This is the reference the engine is compared with: the script a competent
dolfinx user would write for the problem without this project.

    unit ball Ω, membrane Γ = ∂Ω; c in Ω (D_c = 1), m on Γ (D_m = 0.1)
    dc/dt = D_c Δc,  -D_c dc/dn = j  on Γ;   dm/dt = D_m Δ_Γ m + j
    j = k_on c (1 + a m²/(K² + m²)) − k_off m,  k_on = 1, k_off = 0.5, a = 5, K = 0.5
    c0 = 1 + 0.5 x,  m0 = 0.2 + 0.1 y;  backward Euler, dt = 0.01

- mesh: gmsh OCC ball on rank 0 (the same gmsh options as the engine's mesher,
  so both codes solve on the same mesh), ``dolfinx.io.gmsh.model_to_mesh``;
  membrane = ``create_submesh`` of the tagged boundary facets; P1 on both.
- residual: cytosol row = mass/dt + diffusion on dx + j on the parent ds;
  membrane row = mass/dt + surface diffusion on the submesh dx (a form of its
  own: the gradient of a submesh function inside a parent ds integral is wrong
  in dolfinx 0.11) plus −j on the parent ds. Flux quadrature degree 4 (the
  engine's default; UFL's estimate for the rational flux is much higher).
- Jacobian by ``ufl.derivative``; every block, linear ones included,
  re-assembled at every Newton iteration into one ``kind="mpi"`` matrix; the
  submesh part of the membrane-membrane block is added through
  ``getLocalSubMatrix``.
- PETSc SNES newtonls (default line search), snes_rtol 1e-10, snes_atol 1e-13; the
  linear solver (``--linear``) MUMPS LU (``mumps``, the default) or what a user who
  knows PETSc writes for a bulk–surface system (``fieldsplit``): GMRES (rtol 1e-9,
  restart 100) with a multiplicative field split of c and m, GAMG on each field
  (field index sets from the matrix's ownership range).

Prints (rank 0) a JSON record with the fields of ``benchmarks/engine.py`` it can
fill::

    mpiexec -n 2 python benchmarks/baseline_dolfinx.py --size 0.041 --steps 100
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

try:  # the dolfinx wheel must be initialised before dolfinx or petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:  # dolfinx installed another way
    pass

from mpi4py import MPI
from petsc4py import PETSc

import dolfinx
import dolfinx.fem.petsc
import gmsh
import ufl
from dolfinx import fem
from dolfinx.io import gmsh as gmshio
from timing import peak_rss_mib, report, run_main, time_loop

CYTOSOL, MEMBRANE = 1, 2
D_C, D_M = 1.0, 0.1
K_ON, K_OFF, A_FB, K_HALF = 1.0, 0.5, 5.0, 0.5
DT = 0.01


def ball(comm: MPI.Comm, size: float):
    """Unit ball meshed by gmsh on rank 0: (mesh, facet tags)."""
    if comm.rank == 0:
        gmsh.initialize(interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("ball")
        tag = gmsh.model.occ.addSphere(0.0, 0.0, 0.0, 1.0)
        gmsh.model.occ.dilate([(3, tag)], 0.0, 0.0, 0.0, 1.0, 1.0, 1.0)  # as the engine does
        gmsh.model.occ.synchronize()
        boundary = gmsh.model.getBoundary([(3, tag)], oriented=False)
        gmsh.model.addPhysicalGroup(3, [tag], CYTOSOL)
        gmsh.model.addPhysicalGroup(2, [t for _, t in boundary], MEMBRANE)
        gmsh.option.setNumber("Mesh.MeshSizeMin", size)
        gmsh.option.setNumber("Mesh.MeshSizeMax", size)
        gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
        gmsh.option.setNumber("Mesh.Algorithm", 6)  # frontal-Delaunay surfaces
        gmsh.option.setNumber("Mesh.Algorithm3D", 10)  # HXT
        gmsh.option.setNumber("Mesh.Optimize", 1)
        gmsh.model.mesh.generate(3)
    data = gmshio.model_to_mesh(gmsh.model if comm.rank == 0 else None, comm, 0, gdim=3)
    if comm.rank == 0:
        gmsh.finalize()
    return data.mesh, data.facet_tags


def run(size: float, steps: int, comm: MPI.Comm = MPI.COMM_WORLD, linear: str = "mumps") -> dict:
    start = time.perf_counter()
    setup = {}

    # -- mesh and membrane submesh ---------------------------------------------
    t0 = time.perf_counter()
    msh, facet_tags = ball(comm, size)
    msh.topology.create_connectivity(2, 3)
    membrane_facets = facet_tags.find(MEMBRANE)
    smsh, emap, _, _ = dolfinx.mesh.create_submesh(msh, 2, membrane_facets)
    setup["mesh"] = time.perf_counter() - t0

    # -- spaces, functions, forms ----------------------------------------------
    t0 = time.perf_counter()
    V = fem.functionspace(msh, ("Lagrange", 1))
    Q = fem.functionspace(smsh, ("Lagrange", 1))
    c, c_n = fem.Function(V), fem.Function(V)
    m, m_n = fem.Function(Q), fem.Function(Q)
    c.interpolate(lambda x: 1.0 + 0.5 * x[0])
    m.interpolate(lambda x: 0.2 + 0.1 * x[1])
    c_n.x.array[:] = c.x.array
    m_n.x.array[:] = m.x.array
    v, w = ufl.TestFunction(V), ufl.TestFunction(Q)
    dc, dm = ufl.TrialFunction(V), ufl.TrialFunction(Q)

    dx = ufl.Measure("dx", domain=msh)
    ds = ufl.Measure(
        "ds",
        domain=msh,
        subdomain_data=facet_tags,
        subdomain_id=MEMBRANE,
        metadata={"quadrature_degree": 4},
    )
    dG = ufl.Measure("dx", domain=smsh)

    j = K_ON * c * (1 + A_FB * m**2 / (K_HALF**2 + m**2)) - K_OFF * m
    F_c = ((c - c_n) / DT * v + D_C * ufl.inner(ufl.grad(c), ufl.grad(v))) * dx + j * v * ds
    F_m_surface = ((m - m_n) / DT * w + D_M * ufl.inner(ufl.grad(m), ufl.grad(w))) * dG
    F_m_flux = -j * w * ds

    maps = [emap]
    residual = [fem.form(F_c, entity_maps=maps), fem.form(F_m_flux, entity_maps=maps)]
    residual_surface = fem.form(F_m_surface)
    jacobian = [
        [fem.form(ufl.derivative(F, u, du), entity_maps=maps) for u, du in ((c, dc), (m, dm))]
        for F in (F_c, F_m_flux)
    ]
    jacobian_surface = fem.form(ufl.derivative(F_m_surface, m, dm))
    setup["forms"] = time.perf_counter() - t0

    # -- PETSc objects and SNES ------------------------------------------------
    t0 = time.perf_counter()
    A = dolfinx.fem.petsc.create_matrix(jacobian, kind="mpi")
    b = dolfinx.fem.petsc.create_vector([V, Q], kind="mpi")
    x = dolfinx.fem.petsc.create_vector([V, Q], kind="mpi")
    blocks = b.getAttr("_blocks")  # offsets of the owned and ghost entries of c and m
    owned, ghosts = blocks
    index_sets = dolfinx.cpp.la.petsc.create_index_sets(
        [(V.dofmap.index_map, V.dofmap.index_map_bs), (Q.dofmap.index_map, Q.dofmap.index_map_bs)]
    )
    n_q = Q.dofmap.index_map.size_local
    timers = {"residual": 0.0, "jacobian": 0.0, "snes": 0.0}

    def assign_x(x: PETSc.Vec) -> None:
        x.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
        dolfinx.fem.petsc.assign(x, [c, m])

    def F(snes, x, b):
        t = time.perf_counter()
        assign_x(x)
        b.setAttr("_blocks", blocks)  # SNES work vectors (line search) lack it
        with b.localForm() as b_local:
            b_local.set(0.0)
        dolfinx.fem.petsc.assemble_vector(b, residual)
        surface = fem.assemble_vector(residual_surface)  # membrane row, submesh part
        with b.localForm() as b_local:
            b_local.array_w[owned[1] : owned[2]] += surface.array[:n_q]
            b_local.array_w[ghosts[1] : ghosts[2]] += surface.array[n_q:]
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        timers["residual"] += time.perf_counter() - t

    def J(snes, x, J_mat, P_mat):
        t = time.perf_counter()
        assign_x(x)
        J_mat.zeroEntries()
        dolfinx.fem.petsc.assemble_matrix(J_mat, jacobian)
        block = J_mat.getLocalSubMatrix(index_sets[1], index_sets[1])
        dolfinx.cpp.fem.petsc.assemble_matrix(
            block,
            jacobian_surface._cpp_object,
            fem.pack_constants(jacobian_surface),
            fem.pack_coefficients(jacobian_surface),
            [],
            True,
        )
        J_mat.restoreLocalSubMatrix(index_sets[1], index_sets[1], block)
        J_mat.assemble()
        timers["jacobian"] += time.perf_counter() - t

    snes = PETSc.SNES().create(comm)
    snes.setOptionsPrefix("baseline_")
    options: dict[str, object] = {"snes_type": "newtonls", "snes_rtol": 1e-10, "snes_atol": 1e-13}
    if linear == "mumps":
        options.update(ksp_type="preonly", pc_type="lu", pc_factor_mat_solver_type="mumps")
    else:
        options.update(ksp_type="gmres", ksp_rtol=1e-9, ksp_gmres_restart=100)
        options.update(pc_type="fieldsplit", pc_fieldsplit_type="multiplicative")
        for name in ("c", "m"):
            options[f"fieldsplit_{name}_ksp_type"] = "preonly"
            options[f"fieldsplit_{name}_pc_type"] = "gamg"
    db = PETSc.Options()
    for key, value in options.items():
        db["baseline_" + key] = value
    snes.setFunction(F, b)
    snes.setJacobian(J, A, A)
    if linear == "fieldsplit":  # the splits as global index sets of the owned rows
        first = A.getOwnershipRange()[0]
        splits = [
            (name, PETSc.IS().createStride(hi - lo, first=first + lo, step=1, comm=comm))
            for name, lo, hi in (("c", owned[0], owned[1]), ("m", owned[1], owned[2]))
        ]
        snes.getKSP().getPC().setType("fieldsplit")
        snes.getKSP().getPC().setFieldSplitIS(*splits)
    snes.setFromOptions()
    setup["problem"] = time.perf_counter() - t0

    one_c, one_m = fem.form(c * dx), fem.form(m * dG)

    def totals() -> dict[str, float]:
        tc = comm.allreduce(fem.assemble_scalar(one_c), op=MPI.SUM)
        tm = comm.allreduce(fem.assemble_scalar(one_m), op=MPI.SUM)
        return {"total_c": tc, "total_m": tm, "pool_c+m": tc + tm}

    setup["total"] = sum(setup.values())
    initial = totals()

    # -- time loop ----------------------------------------------------------------
    timers_after_first = {}

    def one_step() -> tuple[int, int, str, bool]:
        dolfinx.fem.petsc.assign([c, m], x)
        t_snes = time.perf_counter()
        snes.solve(None, x)
        timers["snes"] += time.perf_counter() - t_snes
        assign_x(x)
        c_n.x.array[:] = c.x.array
        m_n.x.array[:] = m.x.array
        reason = snes.getConvergedReason()
        return (
            snes.getIterationNumber(),
            snes.getLinearSolveIterations(),
            _reason_name(reason),
            reason > 0,
        )

    stats, rest = time_loop(
        one_step, steps, comm, on_first=lambda: timers_after_first.update(timers)
    )
    final = totals()

    timed = {
        k: comm.allreduce(timers[k] - timers_after_first.get(k, 0.0), op=MPI.MAX) for k in timers
    }
    assembly = timed["residual"] + timed["jacobian"]
    peak_sum, peak_max = peak_rss_mib(comm)
    record = {
        "code": "baseline_dolfinx",
        "versions": {"dolfinx": dolfinx.__version__, "petsc": PETSc.Sys.getVersion()},
        "linear": linear,
        "petsc_options": {k: str(v) for k, v in options.items()},
        "mesh_size": size,
        "ranks": comm.size,
        "unknowns": x.getSize(),
        "dofs": {
            "cytosol": V.dofmap.index_map.size_global,
            "membrane": Q.dofmap.index_map.size_global,
        },
        "dt": DT,
        "steps": steps,
        "setup_s": setup,
        **stats,
        "timers_s": {
            "residual_assembly": timed["residual"],
            "jacobian_assembly": timed["jacobian"],
            "assembly": assembly,
            "snes": timed["snes"],
            "snes_minus_assembly": timed["snes"] - assembly,
            "steps_wall": rest,
        },
        "assembly_share": assembly / rest if rest > 0 else float("nan"),
        "solve_share": (timed["snes"] - assembly) / rest if rest > 0 else float("nan"),
        "peak_rss_mib": peak_sum,
        "peak_rss_mib_max_rank": peak_max,
        "totals_initial": initial,
        "totals_final": final,
        "conservation_drift": abs(final["pool_c+m"] - initial["pool_c+m"])
        / abs(initial["pool_c+m"]),
        "wall_s": time.perf_counter() - start,
    }
    snes.destroy()
    A.destroy()
    for key in options:
        db.delValue("baseline_" + key)
    return record


def _reason_name(reason: int) -> str:
    for name in dir(PETSc.SNES.ConvergedReason):
        if not name.startswith("_") and getattr(PETSc.SNES.ConvergedReason, name) == reason:
            return name
    return str(reason)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=float, required=True, help="gmsh mesh size")
    p.add_argument("--steps", type=int, default=100, help="time steps of dt = 0.01")
    p.add_argument("--linear", choices=("mumps", "fieldsplit"), default="mumps")
    p.add_argument("--json", type=Path, default=None, help="also write the record here")
    args = p.parse_args(argv)
    if args.steps < 2:
        p.error("--steps must be at least 2 (the first step is timed apart)")
    comm = MPI.COMM_WORLD
    record = run(args.size, args.steps, comm, args.linear)
    return report(record, args.json, comm)


if __name__ == "__main__":
    run_main(main)
