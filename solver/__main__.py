"""``python -m solver`` is the ``polarity`` command."""

from solver.cli.app import entry

entry()
