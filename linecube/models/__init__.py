"""linecube.models."""
