"""``python -m solver`` is the ``polarity`` command."""

import sys

from solver.cli import main

sys.exit(main())
