"""linecube.viz."""
