"""The model as a pure description (no dolfinx).

Species, compartments, reactions, conserved pools, the expression language of rates,
and the stimuli.
"""
