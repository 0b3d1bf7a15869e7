"""Typed configuration of the models (the ``[model]`` table of a training config)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from linecube.config import StrictModel
from linecube.errors import ConfigError

__all__ = ["ModelConfig"]


class ModelConfig(StrictModel):
    """Architecture of a ConvLSTM autoencoder (``ae``/``vae``) or of the 2-D conv baseline.

    The encoder reads the lines of a galaxy as a sequence (wavelength plays the role of time);
    layer ``i`` has ``hidden[i]`` channels and runs at ``size / downsample**i``; the decoder
    mirrors it. Unknown keys are rejected.
    """

    kind: Literal["ae", "vae", "conv2d"] = "ae"
    """``ae``: ConvLSTM autoencoder; ``vae``: ConvLSTM variational autoencoder; ``conv2d``: 2-D
    convolutional autoencoder with the lines as channels (the baseline)."""

    stem_channels: int = Field(8, ge=0)
    """Channels of the per-step 3x3 convolutional stem before the encoder (0: no stem)."""

    hidden: list[int] = Field(default_factory=lambda: [16, 32], min_length=1)
    """Hidden channels of each encoder layer (of each conv level for ``conv2d``)."""

    decoder_hidden: list[int] | None = None
    """Hidden channels of each decoder layer; None mirrors ``hidden`` (reversed)."""

    kernel_size: int = Field(3, ge=1)
    """Odd square kernel of every ConvLSTM (and ``conv2d``) convolution."""

    downsample: int | None = Field(2, ge=1)
    """Spatial down-sampling factor between encoder layers (up-sampling between decoder layers);
    None or 1: every layer at full resolution."""

    downsample_mode: Literal["avg", "max"] = "avg"
    """Pooling used for down-sampling."""

    upsample_mode: Literal["nearest", "bilinear"] = "nearest"
    """Interpolation used for up-sampling."""

    latent: Literal["vector", "spatial"] = "vector"
    """``vector``: a ``latent_dim`` vector from a linear map of the final encoder state;
    ``spatial``: a latent map (C, h, w) at the lowest resolution."""

    latent_dim: int | None = Field(16, ge=1)
    """Size of the latent vector, or channels of the latent map. With ``latent = "spatial"``,
    None uses the final encoder state itself as the latent map (autoencoders only)."""

    latent_source: Literal["hidden", "hidden_cell"] = "hidden"
    """Encoder state the latent is computed from: final hidden state, or hidden and cell states
    concatenated along channels (ConvLSTM kinds only)."""

    peephole: bool = False
    """Hadamard peephole connections (Shi et al. 2015) in every ConvLSTM layer."""

    bidirectional: bool = False
    """Bidirectional encoder layers (each direction has ``hidden[i]`` channels)."""

    decoder_input: Literal["repeat", "state"] = "repeat"
    """``repeat``: the decoded latent map is the input of the first decoder layer at every step
    (its convolution runs once); ``state``: it is the initial hidden state of that layer, which
    has no input."""

    head_kernel: int = Field(1, ge=1)
    """Odd kernel of the per-step output convolution (decoder hidden -> 1 channel)."""

    head: Literal["shared", "per_line"] = "shared"
    """Output convolution of the ConvLSTM decoder: ``shared`` by every line (step), or
    ``per_line``: each line has its own weights and bias, so that the decoder's state maps to
    each line's flux through that line's own weights (the decoder need not count steps to
    give lines different levels)."""

    activation: Literal["relu", "gelu", "silu"] = "gelu"
    """Non-linearity after the stem and the ``conv2d`` convolutions."""

    mask_channel: bool = False
    """Feed each line's validity mask as a second input channel (ConvLSTM kinds), so that a
    masked spaxel is not confused with a measured zero flux. Input (B, L, 2, H, W)."""

    fuse_gates: bool = False
    """Fuse the LSTM gate arithmetic into one kernel with ``torch.compile`` (compiles on first
    use; the result is the same function)."""

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if any(h < 1 for h in self.hidden + (self.decoder_hidden or [])):
            raise ValueError("hidden sizes must be positive")
        if self.kernel_size % 2 == 0 or self.head_kernel % 2 == 0:
            raise ValueError("kernel_size and head_kernel must be odd")
        if self.decoder_hidden is not None and len(self.decoder_hidden) != len(self.hidden):
            raise ValueError("decoder_hidden must have as many layers as hidden")
        if self.kind == "vae" and self.latent_dim is None:
            raise ValueError("a vae needs latent_dim (mu and log-variance are learned maps)")
        if self.latent == "vector" and self.latent_dim is None:
            raise ValueError("latent = 'vector' needs latent_dim")
        if self.kind == "conv2d" and self.latent_source != "hidden":
            raise ValueError("conv2d has no cell state: set latent_source = 'hidden'")
        if self.kind == "conv2d" and self.head != "shared":
            raise ValueError("head is a ConvLSTM option (conv2d has one output per line already)")
        if self.kind == "conv2d" and self.mask_channel:
            raise ValueError("mask_channel is a ConvLSTM option (conv2d reads lines as channels)")
        return self

    @property
    def factor(self) -> int:
        """Down-sampling factor between layers (1 for none)."""
        return self.downsample or 1

    @property
    def decoder_channels(self) -> list[int]:
        """Hidden channels of the decoder layers."""
        return list(self.decoder_hidden or reversed(self.hidden))

    def check_size(self, size: int) -> int:
        """Resolution of the lowest layer for input maps ``size`` x ``size``.

        Raises:
            ConfigError: ``size`` is not divisible by ``downsample ** (layers - 1)``.
        """
        scale = self.factor ** (len(self.hidden) - 1)
        if size % scale:
            raise ConfigError(
                f"model: map size {size} is not divisible by downsample**(layers-1) = {scale}")
        return size // scale
