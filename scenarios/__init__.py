"""The scenario catalogue: workflow patterns with hand-written expectations."""
