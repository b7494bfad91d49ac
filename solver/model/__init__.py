"""The model as a pure description (no dolfinx): species, compartments, reactions,
conserved pools, the expression language of rates, and the stimuli."""
