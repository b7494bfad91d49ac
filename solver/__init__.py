"""polarity: bulk–surface reaction–diffusion for chemotactic cell polarity.

Species live in the cytosol (a volume mesh) and on the membrane (its boundary
surface), coupled by binding fluxes, and are solved with dolfinx on one mesh
split over MPI ranks. Units inside the solver: µm, s, µM (cytosol) and µM·µm
(membrane surface densities).
"""

from __future__ import annotations

try:  # the dolfinx wheel must be initialised before dolfinx or petsc4py are imported
    import dolfinx_solver  # noqa: F401
except ImportError:  # a dolfinx installed another way (conda, spack, docker images)
    pass

__version__ = "0.1.0"
