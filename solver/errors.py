"""Errors a user can cause, each naming where (file, key) and what was expected."""

from __future__ import annotations

import os


class InputError(ValueError):
    """Bad user input: a run file, a command-line value or a mesh file.

    ``where`` names the place (``"runs/x/config.toml: reactions.r1.rate"``) and
    ``message`` says what was wrong and what was expected. ``str()`` gives the
    one line the command-line interface prints.
    """

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message

    def located(self, prefix: str) -> InputError:
        """The same error with ``prefix`` (a file name) put in front of ``where``."""
        where = f"{prefix}: {self.where}" if self.where else prefix
        return InputError(where, self.message)


def describe(err: BaseException) -> str:
    """One line for an OSError (h5py's carry a multi-line HDF5 message)."""
    number = getattr(err, "errno", None)
    if isinstance(number, int) and number > 0:
        return f"[Errno {number}] {os.strerror(number)}"
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
