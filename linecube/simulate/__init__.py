"""linecube.simulate."""
