"""Cell meshes.

Shapes generated with gmsh (with inner bodies and in a medium: nested meshes of
several named volumes and surfaces), meshes read from and written to files, cell
surfaces imported from segmentations, and the mesh report.
"""
