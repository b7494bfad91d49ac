#!/usr/bin/env python3
"""Independent re-computation of SMART example 5 (numpy/scipy, no FEniCS).

Needs scipy (`pip install scipy`; not a dependency of the solver); about 6 min on
one core: `python runs/smart_example5/reference/reference_fem.py` from the repository
root. It builds the same mesh as `make_mesh.py` itself.

Discretisation chosen to match SMART (its model assembly at
RangamaniLabUCSD/smart 44c67e0):
* mesh: dolfin UnitCubeMesh(16,16,16) split by create_cubes (see make_mesh.py), P1 on
  each compartment's submesh, cytosol and ER fields independent
  (discontinuous across ERm), ERm fields on the interface triangles, PM = face x = 0;
* backward Euler, dt = 0.01 s, t_end = 1 s;
* every reaction term integrated exactly (products of three P1 functions on triangles:
  exact barycentric-monomial integrals; UFL's estimated degree is exact here too);
* the PM pulse preintegrated: J_n = (F(t_{n+1}) - F(t_n))/dt, F = Vmax*atan(m (t - t0));
* Newton to a tight tolerance (SMART: SNES newtonls, rtol 1e-5).

Units here: um, s, uM (volume species), uM*um (surface species) — the molecules/um^2 of
SMART divided by N = 602.2140857 (SMART's molecule = mol/6.022140857e23).

Prints avg A (cytosol mean of A, uM) at every step, and the notebook's AUC
np.trapezoid(avg_A, tvec) to compare with auc_compare = 4.646230684534995.
Writes the time course to reference_avgA.csv.

Variants (environment): REF_DT (step, default 0.01), REF_PULSE=pointwise (j1 at t_{n+1}
instead of the step average), REF_QUAD=interior3|edge3 (degree-2 rule for the ERm terms),
REF_NEWTON=smart (stop Newton at ||F|| <= 1e-5 ||F_0|| like SMART's SNES).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

N_AV = 602.2140857  # molecules/um^2 per uM*um (SMART's Avogadro number 6.022140857e23)

# --- parameters ---------------------
D_A, D_B, D_AER, D_R = 1.0, 1.0, 5.0, 0.02  # um^2/s
A0, B0, AER0 = 0.01, 0.0, 200.0  # uM
k2f = 10.0  # 1/s
k3f, k3r = 100.0, 100.0  # 1/(uM s), 1/s
k4 = 2000.0  # 1/(uM s)   (molecule/um^2 * 1/(uM s) * uM -> molecule/(um^2 s); same number in uM*um)
Vmax_pulse, t0, m = 500.0 / N_AV, 0.1, 200.0  # Vmax 500 molecule/um^2 -> uM*um
DT, T_END = float(os.environ.get("REF_DT", 0.01)), 1.0
NEWTON = os.environ.get("REF_NEWTON", "tight")  # "smart": stop at ||F|| <= 1e-5 ||F_0|| (SNES rtol)
PULSE = os.environ.get("REF_PULSE", "preintegrated")  # or "pointwise" (j1 at t_{n+1})


def R1_init(x, y, z):  # molecule/um^2 -> uM*um
    return (np.sin(40 * y) + np.cos(40 * z) + np.sin(40 * x) + 3) * (y - x) ** 2 / N_AV


def F_pulse(t):  # antiderivative of the PM flux (uM*um)
    return Vmax_pulse * math.atan(m * (t - t0))


def build_mesh(n=16):
    m1 = n + 1
    iz, iy, ix = np.meshgrid(np.arange(m1), np.arange(m1), np.arange(m1), indexing="ij")
    X = np.stack([ix.ravel() / n, iy.ravel() / n, iz.ravel() / n], axis=1)
    cz, cy, cx = np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij")
    v0 = (cz * m1 * m1 + cy * m1 + cx).ravel()
    v1, v2 = v0 + 1, v0 + m1
    v3 = v1 + m1
    v4, v5, v6, v7 = v0 + m1 * m1, v1 + m1 * m1, v2 + m1 * m1, v3 + m1 * m1
    tets = np.concatenate(
        [
            np.stack(c, 1)
            for c in (
                (v0, v1, v3, v7),
                (v0, v1, v7, v5),
                (v0, v5, v7, v4),
                (v0, v3, v2, v7),
                (v0, v6, v4, v7),
                (v0, v2, v6, v7),
            )
        ]
    )
    mid = X[tets].mean(1)
    is_er = np.all((0.3 - 3e-16 < mid) & (mid < 0.7 + 3e-16), axis=1)
    faces = np.concatenate(
        [tets[:, [1, 2, 3]], tets[:, [0, 2, 3]], tets[:, [0, 1, 3]], tets[:, [0, 1, 2]]]
    )
    key = np.sort(faces, 1)
    uniq, inv, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    n_er = np.bincount(inv.ravel(), weights=np.tile(is_er, 4).astype(float), minlength=len(uniq))
    erm = uniq[(counts == 2) & (n_er == 1)]
    bnd = uniq[counts == 1]
    pm = bnd[X[bnd].mean(1)[:, 0] <= 3e-16]
    return X, tets[~is_er], tets[is_er], erm, pm


def tet_matrices(X, tets, nv, index):
    """P1 mass and stiffness on tets (vertex ids mapped by index)."""
    P = X[tets]  # (T,4,3)
    J = (P[:, 1:] - P[:, :1]).transpose(0, 2, 1)  # columns = edges
    det = np.linalg.det(J)
    vol = np.abs(det) / 6
    Jinv = np.linalg.inv(J)  # rows: grads of lambda1..3
    G = np.concatenate([-Jinv.sum(1, keepdims=True), Jinv], axis=1)  # (T,4,3)
    Kloc = vol[:, None, None] * np.einsum("tik,tjk->tij", G, G)
    Mloc = vol[:, None, None] / 20 * (np.ones((4, 4)) + np.eye(4))
    li = index[tets]
    rows = np.repeat(li, 4, axis=1).ravel()
    cols = np.tile(li, (1, 4)).ravel()
    M = sp.csr_matrix((Mloc.ravel(), (rows, cols)), shape=(nv, nv))
    K = sp.csr_matrix((Kloc.ravel(), (rows, cols)), shape=(nv, nv))
    return M, K, vol.sum()


def tri_geometry(X, tris):
    P = X[tris]
    e = [P[:, 2] - P[:, 1], P[:, 0] - P[:, 2], P[:, 1] - P[:, 0]]  # edge opposite vertex i
    area = 0.5 * np.linalg.norm(np.cross(e[2], -e[1]), axis=1)
    return e, area


def tri_matrices(X, tris, index, nrow, ncol=None, col_index=None, stiff=False):
    e, area = tri_geometry(X, tris)
    Mloc = area[:, None, None] / 12 * (np.ones((3, 3)) + np.eye(3))
    ri = index[tris]
    ci = (col_index if col_index is not None else index)[tris]
    rows = np.repeat(ri, 3, axis=1).ravel()
    cols = np.tile(ci, (1, 3)).ravel()
    shape = (nrow, ncol or nrow)
    M = sp.csr_matrix((Mloc.ravel(), (rows, cols)), shape=shape)
    if not stiff:
        return M, area.sum()
    E = np.stack(e, axis=1)  # (T,3,3)
    Kloc = np.einsum("tik,tjk->tij", E, E) / (4 * area[:, None, None])
    K = sp.csr_matrix((Kloc.ravel(), (rows, cols)), shape=shape)
    return M, K, area.sum()


# integral of lambda_i lambda_j lambda_k over a triangle, divided by 2*area: exact by
# default; REF_QUAD=interior3 / edge3 use a 3-point (degree-2) rule instead (a test of how
# much the quadrature of the ERm terms matters)
QUAD = os.environ.get("REF_QUAD", "exact")
T3 = np.zeros((3, 3, 3))
if QUAD == "exact":
    for i in range(3):
        for j in range(3):
            for k in range(3):
                c = np.bincount([i, j, k], minlength=3)
                T3[i, j, k] = np.prod([math.factorial(a) for a in c]) / math.factorial(5)
else:
    pts = {
        "interior3": [[2 / 3, 1 / 6, 1 / 6], [1 / 6, 2 / 3, 1 / 6], [1 / 6, 1 / 6, 2 / 3]],
        "edge3": [[0.5, 0.5, 0], [0, 0.5, 0.5], [0.5, 0, 0.5]],
    }[QUAD]
    for lam in np.array(pts):
        T3 += 0.5 * (1 / 3) * np.einsum("i,j,k->ijk", lam, lam, lam)


def main():
    X, cyto, er, erm, pm = build_mesh()
    nvert = len(X)

    # numbering of each compartment's vertices
    def numbering(cells):
        ids = np.unique(cells)
        idx = -np.ones(nvert, dtype=np.int64)
        idx[ids] = np.arange(len(ids))
        return ids, idx

    cid, cidx = numbering(cyto)
    eid, eidx = numbering(er)
    sid, sidx = numbering(erm)
    nc, ne, ns = len(cid), len(eid), len(sid)
    print(
        f"dofs per species: cytosol {nc}, er {ne}, erm {ns}; tets {len(cyto)}+{len(er)}, "
        f"erm tris {len(erm)}, pm tris {len(pm)}"
    )
    Mc, Kc, Vc = tet_matrices(X, cyto, nc, cidx)
    Me, Ke, Ve = tet_matrices(X, er, ne, eidx)
    Ms, Ks, As = tri_matrices(X, erm, sidx, ns, stiff=True)
    Mpm, Apm = tri_matrices(X, pm, cidx, nc)
    Msc, _ = tri_matrices(X, erm, cidx, nc, ns, sidx)  # rows cytosol test, cols erm trial
    Mse, _ = tri_matrices(X, erm, eidx, ne, ns, sidx)  # rows er test, cols erm trial
    pm_load = np.asarray(Mpm.sum(axis=1)).ravel()  # int_PM v
    wc = np.asarray(Mc.sum(axis=0)).ravel()  # int_cyto phi_i
    we = np.asarray(Me.sum(axis=0)).ravel()
    print(f"V_cyto {Vc:.9f}, V_er {Ve:.9f}, A_erm {As:.9f}, A_pm {Apm:.9f}")
    _, area = tri_geometry(X, erm)
    w = 2 * area  # (T,)
    tc, te, ts = cidx[erm], eidx[erm], sidx[erm]

    # unknown layout
    oA, oB, oE, oR, oO = 0, nc, 2 * nc, 2 * nc + ne, 2 * nc + ne + ns
    n = 2 * nc + ne + 2 * ns
    Mall = sp.block_diag([Mc, Mc, Me, Ms, Ms]).tocsr()
    Kall = sp.block_diag([D_A * Kc, D_B * Kc + k2f * Mc, D_AER * Ke, D_R * Ks, D_R * Ks]).tocsr()

    # linear coupling k3r*R1o: into B (+), R1 (+), R1o (-)
    def placed(blocks):
        """Sum of sparse blocks placed at (row offset, col offset) in the n x n system."""
        out = sp.csr_matrix((n, n))
        for ro, co, blk in blocks:
            c = blk.tocoo()
            out = out + sp.csr_matrix((c.data, (c.row + ro, c.col + co)), shape=(n, n))
        return out

    # linear coupling k3r*R1o (rhs): into B (+), R1 (+), R1o (-)
    Lk3r = placed([(oB, oO, k3r * Msc), (oR, oO, k3r * Ms), (oO, oO, -k3r * Ms)])

    U = np.zeros(n)
    U[oA : oA + nc] = A0
    U[oB : oB + nc] = B0
    U[oE : oE + ne] = AER0
    U[oR : oR + ns] = R1_init(*X[sid].T)
    U[oO : oO + ns] = 0.0

    def local(Uv, off, idx):
        return Uv[off + idx]

    def nonlinear(Uv):
        """R_nl(U) and its Jacobian (the bilinear ERm terms)."""
        B = local(Uv, oB, tc)
        A = local(Uv, oA, tc)
        E = local(Uv, oE, te)
        R = local(Uv, oR, ts)
        Ro = local(Uv, oO, ts)
        n1 = w[:, None] * np.einsum("ijk,tj,tk->ti", T3, B, R)  # int k3f-free B*R1*v
        n2 = w[:, None] * np.einsum("ijk,tj,tk->ti", T3, Ro, E - A)  # int R1o*(AER-A)*v
        res = np.zeros(n)
        np.add.at(res, oB + tc, -k3f * n1)
        np.add.at(res, oR + ts, -k3f * n1)
        np.add.at(res, oO + ts, +k3f * n1)
        np.add.at(res, oA + tc, +k4 * n2)
        np.add.at(res, oE + te, -k4 * n2)
        # Jacobian blocks: d n1_i/dB_j = w T_ijk R_k ; d n1_i/dR_k = w T_ijk B_j
        dn1_dB = w[:, None, None] * np.einsum("ijk,tk->tij", T3, R)
        dn1_dR = w[:, None, None] * np.einsum("ijk,tj->tik", T3, B)
        dn2_dO = w[:, None, None] * np.einsum("ijk,tk->tij", T3, E - A)
        dn2_dE = w[:, None, None] * np.einsum("ijk,tj->tik", T3, Ro)
        rows, cols, vals = [], [], []

        def put(ro, ri, co, ci, blk, s):
            rows.append(np.repeat(ro + ri, 3, axis=1).ravel())
            cols.append(np.tile(co + ci, (1, 3)).ravel())
            vals.append((s * blk).ravel())

        for ro, ri, s in ((oB, tc, -k3f), (oR, ts, -k3f), (oO, ts, k3f)):
            put(ro, ri, oB, tc, dn1_dB, s)
            put(ro, ri, oR, ts, dn1_dR, s)
        for ro, ri, s in ((oA, tc, k4), (oE, te, -k4)):
            put(ro, ri, oO, ts, dn2_dO, s)
            put(ro, ri, oE, te, dn2_dE, s)
            put(ro, ri, oA, tc, -dn2_dE, s)
        Jn = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )
        return res, Jn

    avg = [A0]  # the notebook starts avg_A with A.initial_condition
    tvec = [0.0]
    t = 0.0
    nsteps = int(round(T_END / DT))
    total0 = None
    for step in range(1, nsteps + 1):
        tn, t = t, round(step * DT, 6)
        if PULSE == "preintegrated":
            J = (F_pulse(t) - F_pulse(tn)) / DT  # preintegrated PM flux, uM*um/s
        else:
            J = m * Vmax_pulse / (1 + (m * (t - t0)) ** 2)  # the pulse itself at t_{n+1}
        src = np.zeros(n)
        src[oB : oB + nc] = J * pm_load
        Uold = U.copy()
        rhs_old = Mall @ Uold / DT
        G0 = None
        for it in range(30):  # noqa: B007 (the count is printed)
            rnl, Jnl = nonlinear(U)
            G = Mall @ U / DT - rhs_old + Kall @ U - Lk3r @ U - rnl - src
            if NEWTON == "smart":  # SMART's residual: surface rows in molecule units (x N)
                Gs = G.copy()
                Gs[oR:] *= N_AV
                g = np.linalg.norm(Gs)
                if G0 is None:
                    G0 = g
                elif g <= 1e-5 * G0:
                    break
            Jac = (Mall / DT + Kall - Lk3r - Jnl).tocsc()
            dU = spla.splu(Jac).solve(-G)
            U += dU
            if NEWTON != "smart" and np.linalg.norm(dU) <= 1e-12 * max(1.0, np.linalg.norm(U)):
                break
        Acur = U[oA : oA + nc]
        avg.append(float(wc @ Acur) / Vc)
        tvec.append(t)
        # conservation check of A + AER (amount, uM*um^3)
        tot = float(wc @ Acur + we @ U[oE : oE + ne])
        total0 = total0 if total0 is not None else A0 * Vc + AER0 * Ve
        if abs(t * 10 - round(t * 10)) < 1e-9 or step <= 12:
            print(
                f"t={t:5.2f}  J={J * N_AV:12.3f} molec/um2/s  avg_A={avg[-1]:.9f} uM  "
                f"newton={it + 1}  A+AER amount drift={tot - total0:+.2e}"
            )
    auc = (
        np.trapezoid(np.array(avg), np.array(tvec))
        if hasattr(np, "trapz")
        else np.trapezoid(np.array(avg), np.array(tvec))
    )
    ref = 4.646230684534995
    print(
        f"AUC = {auc:.12f}   SMART auc_compare = {ref}   "
        f"difference = {100 * abs(auc - ref) / ref:.4f} %  (SMART tolerance 0.01 %)"
    )
    tag = (
        ""
        if (QUAD, PULSE, DT, NEWTON) == ("exact", "preintegrated", 0.01, "tight")
        else f"_{QUAD}_{PULSE}_dt{DT:g}_{NEWTON}"
    )
    out = Path(__file__).with_name(f"reference_avgA{tag}.csv")
    np.savetxt(
        out,
        np.column_stack([tvec, avg]),
        delimiter=",",
        header="t_s,avg_A_uM",
        comments="",
        fmt="%.10g",
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
