"""Run files: reading, ``--set`` overrides, validation and units.

A run file (TOML) becomes a frozen :class:`RunConfig` in solver units (µm, s, µM,
µM·µm); every error names the file, the key and what was expected.
"""

from solver.config.runfile import RunConfig, apply_override, from_dict, load

__all__ = ["RunConfig", "apply_override", "from_dict", "load"]
