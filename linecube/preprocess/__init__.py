"""linecube.preprocess."""
