"""linecube.analysis."""
