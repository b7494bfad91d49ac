"""Small run files shared by the tests of the command line, sweeps and batch jobs.

A disk of radius 1 µm with one cytosol species c and one membrane species m
exchanged through the membrane: cheap (a few hundred unknowns), and conserving
c + m, so every run can be checked for mass as well as for its outputs.
"""

from __future__ import annotations

_EXCHANGE_DISK = """
[mesh]
shape = "disk"
radius = "1 um"
size = "{size}"

[time]
end = "{end}"
dt = "{dt}"

[output]
every = "{every}"

[parameters]
k = "1 um/s"{parameters}

[species.c]
compartment = "cytosol"
D = "1 um^2/s"
initial = "1 + 0.5*x"

[species.m]
compartment = "membrane"
D = "0.1 um^2/s"
initial = 0.2

[reactions.bind]
equation = "c -> m"
rate = "{rate}"
{tables}"""


def exchange_disk(
    size: str = "0.25 um",
    end: str = "0.2 s",
    dt: str = "0.05 s",
    every: str = "0.1 s",
    rate: str = "k*c - 0.5*m",
    parameters: str = "",
    tables: str = "",
) -> str:
    """The text of the exchange run file; ``parameters`` and ``tables`` are added lines."""
    return _EXCHANGE_DISK.format(
        size=size,
        end=end,
        dt=dt,
        every=every,
        rate=rate,
        parameters=f"\n{parameters}" if parameters else "",
        tables=f"\n{tables}\n" if tables else "",
    )
