"""``python -m solver`` is the ``polarity`` command."""

from solver.cli import entry

entry()
