"""Reading a model file: SBML (Level 2 or 3) with libsbml, Antimony with antimony.

Both libraries are the optional ``sbml`` extra (``pip install 'polarity-solver[sbml]'``);
without them the commands say so in one line. A file that cannot be read — missing,
not XML, Antimony with a syntax error, SBML that libsbml's consistency checks find in
error — is an :class:`~solver.errors.InputError` naming the file, on one line. Warnings
(of units, of modelling practice) are not errors: the import checks units itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from solver.errors import InputError

ANTIMONY_SUFFIXES = (".ant", ".antimony", ".txt")
MAX_BYTES = 16 * 1024 * 1024  # a model file of more is no model of a cell
EXTRA = "pip install 'polarity-solver[sbml]' (python-libsbml, antimony)"


def libsbml() -> Any:
    """The libsbml module; an InputError when it is not installed."""
    try:
        import libsbml as module
    except ImportError:
        raise InputError("polarity", f"SBML needs python-libsbml: {EXTRA}") from None
    return module


def one_line(text: str, width: int = 400) -> str:
    """``text`` on one line, shortened to ``width`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _read_text(path: Path) -> str:
    where = str(path)
    if path.is_dir():
        raise InputError(where, "is a folder, not a model file")
    if not path.is_file():
        raise InputError(where, "model file does not exist")
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InputError(
                where, f"a model file of {path.stat().st_size} bytes (at most {MAX_BYTES})"
            )
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(where, f"cannot read the model file: {err.strerror or err}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(where, f"not a UTF-8 text file: {err}") from None


def is_antimony(path: Path, text: str) -> bool:
    """Antimony by its suffix; otherwise by its first character (SBML starts with '<')."""
    if path.suffix.lower() in ANTIMONY_SUFFIXES:
        return True
    if path.suffix.lower() in (".xml", ".sbml"):
        return False
    return not text.lstrip().startswith("<")


def antimony_to_sbml(text: str, where: str) -> str:
    """The SBML (Level 3 Version 2) of the main model of an Antimony text."""
    try:
        import antimony
    except ImportError:
        raise InputError(where, f"Antimony needs the antimony package: {EXTRA}") from None
    antimony.clearPreviousLoads()
    if antimony.loadAntimonyString(text) < 0:
        message = antimony.getLastError() or "cannot read the Antimony model"
        message = re.sub(r"^Error in model string,\s*", "", one_line(message))
        raise InputError(where, f"Antimony: {message}")
    module = antimony.getMainModuleName()
    sbml = antimony.getSBMLString(module) if module else ""
    if not sbml:
        raise InputError(where, "Antimony: the file holds no model")
    return sbml


def read_document(path: str | Path) -> Any:
    """The checked libsbml SBMLDocument of an SBML or Antimony file."""
    path = Path(path)
    text = _read_text(path)
    sbml = antimony_to_sbml(text, str(path)) if is_antimony(path, text) else text
    return parse(sbml, str(path))


def parse(sbml: str, where: str) -> Any:
    """An SBML text read and checked: InputError on the first error libsbml finds."""
    L = libsbml()
    doc = L.readSBMLFromString(sbml)
    _refuse_errors(doc, where, "")
    if doc.getModel() is None:
        raise InputError(where, "the SBML document holds no model")
    for category in (
        L.LIBSBML_CAT_UNITS_CONSISTENCY,
        L.LIBSBML_CAT_MODELING_PRACTICE,
        L.LIBSBML_CAT_SBO_CONSISTENCY,
    ):
        doc.setConsistencyChecks(category, False)
    doc.checkConsistency()
    _refuse_errors(doc, where, "inconsistent SBML: ")
    return doc


def _refuse_errors(doc: Any, where: str, prefix: str) -> None:
    L = libsbml()
    serious = (L.LIBSBML_SEV_ERROR, L.LIBSBML_SEV_FATAL)
    errors = [
        doc.getError(i)
        for i in range(doc.getNumErrors())
        if doc.getError(i).getSeverity() in serious
    ]
    if not errors:
        return
    first = errors[0]
    line = f"line {first.getLine()}: " if first.getLine() else ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    message = first.getMessage() or first.getShortMessage()
    if first.getErrorId() in (L.NotUTF8, L.BadlyFormedXML, L.XMLContentEmpty) or (
        first.getCategory() == L.LIBSBML_CAT_XML
    ):
        prefix = "not well-formed XML: "
    raise InputError(where, f"{prefix}{line}{one_line(message, 300)}{more}")


def error_count(doc: Any) -> tuple[int, int]:
    """(errors, warnings) of a full consistency check of ``doc`` (units included)."""
    L = libsbml()
    doc.checkConsistency()
    severities = [doc.getError(i).getSeverity() for i in range(doc.getNumErrors())]
    errors = sum(s in (L.LIBSBML_SEV_ERROR, L.LIBSBML_SEV_FATAL) for s in severities)
    warnings = sum(s == L.LIBSBML_SEV_WARNING for s in severities)
    return errors, warnings
