"""Baseline: a 2-D convolutional autoencoder with the lines as input channels.

Same latent (vector or map, same ``latent_dim``) and the same :class:`ModelOutput` as the ConvLSTM
models, so it trains through the same machinery. Stem, peepholes, bidirectional layers,
``decoder_input`` and ``fuse_gates`` concern ConvLSTM layers only and are not used here.
"""

from __future__ import annotations

from torch import Tensor, nn

from linecube.models.autoencoder import AutoencoderBase, activation, resample
from linecube.models.config import ModelConfig
from linecube.models.conv import Conv2d

__all__ = ["Conv2dAutoencoder"]


class Conv2dAutoencoder(AutoencoderBase):
    """Conv encoder (one conv + activation per level, down-sampling between levels), latent,
    mirrored conv decoder with up-sampling, and a conv to L output channels.

    Args:
        cfg: architecture (``hidden`` are the channels of each level).
        n_lines: L, the number of input and output channels.
        size: map size H = W.
    """

    def __init__(self, cfg: ModelConfig, n_lines: int, size: int):
        super().__init__(cfg, n_lines, size)
        self.encoder = self._levels(n_lines, cfg.hidden)
        channels = self.build_latent(cfg.hidden[-1])
        self.decoder = self._levels(channels, cfg.decoder_channels)
        channels = cfg.decoder_channels[-1]
        self.head = Conv2d(channels, n_lines, cfg.head_kernel, padding=cfg.head_kernel // 2)

    def _levels(self, channels: int, hidden: list[int]) -> nn.ModuleList:
        """One "same"-padded convolution + activation per level, ``channels`` -> hidden[0] ->
        hidden[1] ..."""
        cfg, levels = self.cfg, nn.ModuleList()
        for out in hidden:
            levels.append(nn.Sequential(
                Conv2d(channels, out, cfg.kernel_size, padding=cfg.kernel_size // 2),
                activation(cfg.activation)))
            channels = out
        return levels

    def encode(self, x: Tensor) -> tuple[Tensor, None]:
        """x (B, L, 1, H, W) -> (latent, None)."""
        self.check_input(x)
        y = x.squeeze(2)
        for i, level in enumerate(self.encoder):
            y = level(resample(self.cfg, y, up=False) if i and self.cfg.factor > 1 else y)
        return self.latent_head(y)

    def decode(self, z: Tensor) -> Tensor:
        """Latent z -> reconstruction (B, L, 1, H, W)."""
        y = self.latent_map(z)
        for j, level in enumerate(self.decoder):
            y = level(resample(self.cfg, y, up=True) if j and self.cfg.factor > 1 else y)
        return self.head(y).unsqueeze(2)
