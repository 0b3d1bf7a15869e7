"""Preprocessing: galaxies to fixed-size, masked, normalised tensors that invert to flux."""

from linecube.preprocess.config import PreprocessConfig
from linecube.preprocess.prepare import Prepared, invert, prepare_file, preprocess, read_file

__all__ = ["PreprocessConfig", "Prepared", "invert", "prepare_file", "preprocess", "read_file"]
