"""Parameter sweeps.

The plan (Cartesian product of ``--vary`` values), the ensemble run inside one
``mpiexec``, the Slurm job array and the table of results.
"""
