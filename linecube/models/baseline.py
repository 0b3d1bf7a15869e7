"""Baseline: a 2-D convolutional autoencoder with the lines as input channels.

Same latent (vector or map, same ``latent_dim``) and the same :class:`ModelOutput` as the ConvLSTM
models, so it trains through the same machinery. Stem, peepholes, bidirectional layers,
``decoder_input`` and ``fuse_gates`` concern ConvLSTM layers only and are not used here.
"""

from __future__ import annotations

from torch import Tensor, nn

from linecube.models.autoencoder import LatentHead, LatentMap, ModelOutput, activation, resample
from linecube.models.config import ModelConfig
from linecube.models.conv import Conv2d

__all__ = ["Conv2dAutoencoder"]


class Conv2dAutoencoder(nn.Module):
    """Conv encoder (one conv + activation per level, down-sampling between levels), latent,
    mirrored conv decoder with up-sampling, and a conv to L output channels.

    Args:
        cfg: architecture (``hidden`` are the channels of each level).
        n_lines: L, the number of input and output channels.
        size: map size H = W.
    """

    variational = False

    def __init__(self, cfg: ModelConfig, n_lines: int, size: int):
        super().__init__()
        low = cfg.check_size(size)
        self.cfg, self.n_lines, self.size = cfg, n_lines, size
        pad = cfg.kernel_size // 2
        self.encoder = nn.ModuleList()
        channels = n_lines
        for hidden in cfg.hidden:
            self.encoder.append(nn.Sequential(
                Conv2d(channels, hidden, cfg.kernel_size, padding=pad),
                activation(cfg.activation)))
            channels = hidden
        self.latent_head = LatentHead(cfg, channels, low, variational=False)
        dec = cfg.decoder_channels
        map_channels = channels if cfg.latent == "spatial" and cfg.latent_dim is None else dec[0]
        self.latent_map = LatentMap(cfg, map_channels, low)
        self.decoder = nn.ModuleList()
        channels = map_channels
        for hidden in dec:
            self.decoder.append(nn.Sequential(
                Conv2d(channels, hidden, cfg.kernel_size, padding=pad),
                activation(cfg.activation)))
            channels = hidden
        self.head = Conv2d(channels, n_lines, cfg.head_kernel, padding=cfg.head_kernel // 2)

    def check_input(self, x: Tensor) -> None:
        """Raise ValueError unless x is (B, n_lines, 1, size, size)."""
        expected = (self.n_lines, 1, self.size, self.size)
        if x.dim() != 5 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"model input: expected (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")

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

    def forward(self, x: Tensor) -> ModelOutput:
        """x (B, L, 1, H, W) -> :class:`ModelOutput` (logvar None)."""
        mu, _ = self.encode(x)
        return ModelOutput(self.decode(mu), mu, None)
