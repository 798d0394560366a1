"""The scenario catalogue, one module per family (SCENARIOS lists)."""
