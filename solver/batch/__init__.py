"""Slurm batch scripts: one template (``job.sbatch.in``), filled for a case or a sweep.

:mod:`solver.batch.scripts` fills the template; ``polarity job`` writes the script of a
case (:mod:`solver.cli.job`) and ``polarity sweep --slurm`` the job array of a sweep
(:mod:`solver.sweep.slurm`). Both share the template's wall-time and requeue logic.
"""
