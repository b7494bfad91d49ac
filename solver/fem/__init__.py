"""The finite-element system.

Geometry and spaces, forms, the blocked Newton problem, the node ordering shared by
outputs and checkpoints, and read-outs on fields.
"""
