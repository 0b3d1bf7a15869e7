"""linecube: ConvLSTM autoencoders for integral-field emission-line maps."""

__version__ = "0.1.0"
