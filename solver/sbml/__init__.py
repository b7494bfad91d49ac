"""Models of the systems-biology ecosystem: SBML and Antimony in, SBML out.

:func:`import_model` reads an SBML (Level 2 or 3) or Antimony model into a run file
(:mod:`solver.sbml.importer`); :func:`export_model` writes the reaction network of a run
file as SBML Level 3 Version 2 core with units (:mod:`solver.sbml.exporter`). Both need
the optional ``sbml`` extra (python-libsbml, antimony).
"""

from solver.sbml.exporter import export_model
from solver.sbml.importer import Imported, import_model, write

__all__ = ["Imported", "export_model", "import_model", "write"]
