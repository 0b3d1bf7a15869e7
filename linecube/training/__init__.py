"""linecube.training."""
