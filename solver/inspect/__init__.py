"""Looking at finished runs.

The summary of ``polarity info``, the figures of ``polarity plot`` and the ParaView
state of ``polarity paraview``.
"""
