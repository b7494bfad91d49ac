"""Files of a run.

The output folder, field series, metrics, run records, checkpoints and restarts, and
the readers of all of them.
"""
