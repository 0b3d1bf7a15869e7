"""Readers for survey files: each returns :class:`linecube.io.galaxy.Galaxy` objects."""
