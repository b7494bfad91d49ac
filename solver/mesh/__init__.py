"""Cell meshes.

Shapes generated with gmsh, meshes read from files, cell surfaces imported from
segmentations, and the mesh report.
"""
