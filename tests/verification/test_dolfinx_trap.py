"""The dolfinx 0.11 trap behind the design of solver/fem/forms.py.

The gradient of a membrane-submesh function inside a *parent-mesh* ``ds`` integral
(with ``entity_maps``) is computed wrongly by dolfinx 0.11 / ffcx (FEniCS/ffcx#816),
so the engine assembles every pure membrane term (time derivative, surface
diffusion) as a submesh ``dx`` integral and only the coupling terms over ``ds``.

(a) ∫_Γh |∇_Γ m_h|² as a submesh dx integral is within O(h²) of the exact value;
(b) the same integral over the parent ds differs from (a) by more than 5 %. When a
    dolfinx release fixes the bug, (b) fails on purpose: the membrane row could then
    become a single form; revisit solver/fem/forms.py.

m = xy: unit circle ∫|∇_Γ m|² = π; unit sphere 4π(2/3 − 4/15) = 8π/5.
"""

from __future__ import annotations

import math

try:
    import dolfinx_solver  # noqa: F401
except ImportError:
    pass

from mpi4py import MPI

import pytest
import ufl
from dolfinx import fem

from solver.fem.geometry import CellGeometry
from solver.mesh import meshing
from tests.verification.common import COMM, say

FIXED_MESSAGE = (
    "dolfinx now computes submesh gradients in parent ds integrals correctly (ffcx#816 fixed): "
    "the membrane row could become a single form; see solver/fem/forms.py"
)
CASES = {"disk": (0.1, math.pi), "sphere": (0.2, 8 * math.pi / 5)}


@pytest.mark.parametrize("shape", ["disk", "sphere"])
def test_submesh_gradients_in_parent_ds_integrals_are_wrong_in_dolfinx_0_11(shape):
    size, exact = CASES[shape]
    geometry = CellGeometry.from_tagged(meshing.generate(shape, COMM, size=size))
    V = fem.functionspace(geometry.membrane, ("Lagrange", 1))
    m = fem.Function(V)
    m.interpolate(lambda X: X[0] * X[1])
    integrand = ufl.inner(ufl.grad(m), ufl.grad(m))
    metadata = {"quadrature_degree": 4}

    def total(form):
        return COMM.allreduce(fem.assemble_scalar(form), op=MPI.SUM)

    on_submesh = total(fem.form(integrand * geometry.dm(metadata=metadata)))
    on_parent = total(
        fem.form(integrand * geometry.ds(metadata=metadata), entity_maps=geometry.entity_maps)
    )
    say(
        f"trap {shape} size {size} ({COMM.size} rank(s)): submesh dx {on_submesh:.6f}, "
        f"parent ds {on_parent:.6f}, exact {exact:.6f}"
    )
    assert abs(on_submesh - exact) <= size**2 * exact, (on_submesh, exact)
    assert abs(on_parent - on_submesh) > 0.05 * abs(on_submesh), FIXED_MESSAGE
