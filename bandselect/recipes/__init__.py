"""Recipes shipped with the package (YAML), e.g. the two-phase training recipe."""
