"""Names of parameters, species, stimuli and definitions, as expressions read them.

Python normalises identifiers (NFKC) before it compares them, so the micro sign
``µ`` (U+00B5) and the Greek ``μ`` (U+03BC) are one name in an expression, and the
mathematical italic ``𝑥`` is the coordinate ``x``. A run file's names are therefore
normalised the same way (:func:`normalise`), and two names are refused when they
are the same once normalised, or when they differ only by letters that look alike
(Cyrillic ``х`` and Latin ``x``, :func:`skeleton`).
"""

from __future__ import annotations

import unicodedata

__all__ = ["NameClash", "Names", "describe", "normalise", "skeleton"]

# Letters of other scripts that look like Latin ones (the Latin letter each looks like);
# NFKC keeps them apart, a reader of the run file would not.
_LOOK_ALIKES = str.maketrans(
    {
        # Cyrillic
        "а": "a", "в": "B", "е": "e", "к": "k", "м": "M", "н": "H", "о": "o", "р": "p",
        "с": "c", "т": "T", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
        "һ": "h", "ԛ": "q", "ԝ": "w", "ӏ": "l", "А": "A", "В": "B", "Е": "E", "К": "K",
        "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "Х": "X", "І": "I",
        "Ј": "J", "Ѕ": "S", "Ү": "Y", "Ԛ": "Q", "Ԝ": "W",
        # Greek: only the letters drawn as Latin ones (κ, ρ, τ, χ … are told apart)
        "ο": "o", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K",
        "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
        # other Latin letters and digits that read as ASCII
        "ı": "i", "ȷ": "j", "ɡ": "g", "ʏ": "y", "ℓ": "l",
    }
)  # fmt: skip


def normalise(name: str) -> str:
    """The name as Python reads it in an expression (Unicode NFKC)."""
    return unicodedata.normalize("NFKC", name)


def skeleton(name: str) -> str:
    """The normalised name with look-alike letters of other scripts made Latin."""
    return normalise(name).translate(_LOOK_ALIKES)


def describe(name: str) -> str:
    """``'µ' (U+00B5)``: a name with the code points of its non-ASCII characters."""
    codes = [f"U+{ord(c):04X}" for c in name if not c.isascii()]
    return f"'{name}'" + (f" ({', '.join(codes)})" if codes else "")


class NameClash(ValueError):
    """A name that reads as a reserved name or as a name already taken."""


class Names:
    """The names taken so far, by their normalised form and by their skeleton.

    Args:
        reserved: Names taken from the start (coordinates, time, functions, constants),
            with what each is (``"reserved for expressions"``).
    """

    def __init__(self, reserved: dict[str, str]) -> None:
        self._by_skeleton: dict[str, tuple[str, str]] = {}
        for name, what in reserved.items():
            self._by_skeleton[skeleton(name)] = (name, what)

    def taken(self, name: str) -> tuple[str, str] | None:
        """``(name as written, what it is)`` of the name ``name`` clashes with, or None."""
        return self._by_skeleton.get(skeleton(name))

    def add(self, name: str, what: str) -> str:
        """Take ``name`` (``what`` says where it came from); returns its normalised form.

        Raises:
            NameClash: ``name`` is, once normalised, the same as or a look-alike of a
                name taken before.
        """
        clash = self.taken(name)
        if clash is not None:
            other, other_what = clash
            if other == name:
                raise NameClash(f"'{name}' has the same name as {other_what}")
            if normalise(other) == normalise(name):
                how = "is the same name as"
                why = "once normalised as Python reads names (Unicode NFKC)"
            else:
                how, why = "looks like", "in letters of another script"
            raise NameClash(f"{describe(name)} {how} {describe(other)} ({other_what}) {why}")
        self._by_skeleton[skeleton(name)] = (name, what)
        return normalise(name)
