"""What SBML core cannot say about a run file, in annotations of the project's namespace.

An exported model carries, under :data:`NAMESPACE`:

* on the model, ``<polarity:run>`` with the TOML text of the run file's tables that
  are not the reaction network (``[mesh]``, ``[time]``, ``[output]``, ``[stimulus]``,
  ``[metrics]``, ``[solver]``, ``[limits]``);
* on a surface compartment, ``<polarity:compartment inside=... outside=...>``: the volumes
  on its two sides;
* on a species, ``<polarity:species>`` with its diffusion coefficient ``D``,
  ``description``, ``noise``, ``unit``, and an ``initial`` value that SBML core cannot hold
  (an expression in x, y, z) with ``at_origin``, the number written to SBML for it;
* on a parameter, ``<polarity:parameter value=...>``, its value as the run file wrote it
  (SBML writes 15 digits), or ``stimulus`` / ``occupancy`` naming the stimulus a
  parameter stands for.

The import reads them back; what SBML itself says wins wherever both speak (a value
edited in another tool is taken from the SBML, not from a stale annotation).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

NAMESPACE = "urn:polarity-solver:sbml:1"
PREFIX = "polarity"


def write(element: Any, tag: str, attributes: Mapping[str, str], text: str = "") -> None:
    """Add ``<polarity:TAG attributes>text</polarity:TAG>`` to an SBML element's annotation."""
    node = ET.Element(f"{PREFIX}:{tag}", {f"xmlns:{PREFIX}": NAMESPACE, **attributes})
    node.text = text or None
    element.appendAnnotation(ET.tostring(node, encoding="unicode"))


def read(element: Any, tag: str) -> tuple[dict[str, str], str] | None:
    """The attributes and text of ``<polarity:TAG>`` in an element's annotation, or None."""
    if element is None or not element.isSetAnnotation():
        return None
    text = element.getAnnotationString()
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    node = root.find(f"{{{NAMESPACE}}}{tag}")
    if node is None:
        return None
    return dict(node.attrib), node.text or ""
