"""ConvLSTM autoencoder (AE) and variational autoencoder (VAE) over emission-line sequences.

A galaxy is ``x`` (B, L, 1, H, W): L line maps ordered by wavelength, read as a sequence. The
encoder (optional per-step conv stem, ConvLSTM layers with spatial down-sampling between them)
ends in a final state from which a latent (a vector, or a map) is computed; the decoder turns
the latent into a map, feeds it to every step of a mirrored ConvLSTM stack with up-sampling,
and a per-step convolution returns the reconstruction (B, L, 1, H, W).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from linecube.errors import ConfigError
from linecube.models.config import ModelConfig
from linecube.models.conv import Conv2d
from linecube.models.convlstm import ConvLSTM, per_step

__all__ = [
    "AutoencoderBase", "ConvLSTMAutoencoder", "ConvLSTMVAE", "LatentHead", "LatentMap",
    "ModelOutput", "kl_divergence",
]


class ModelOutput(NamedTuple):
    """What every linecube model returns.

    Attributes:
        recon: reconstruction (B, L, 1, H, W).
        mu: latent (B, D) for a vector latent, (B, C, h, w) for a spatial one; the VAE mean.
        logvar: VAE log-variance, same shape as ``mu``; None for autoencoders.
    """

    recon: Tensor
    mu: Tensor
    logvar: Tensor | None


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) summed over latent dimensions.

    Args:
        mu, logvar: (B, ...) latent mean and log-variance.

    Returns:
        (B,) divergence per sample.
    """
    kl = -0.5 * (1.0 + logvar - mu.square() - logvar.exp())
    return kl.flatten(1).sum(1)


def activation(name: str) -> nn.Module:
    """The non-linearity named in :attr:`ModelConfig.activation`."""
    return {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}[name]()


def resample(cfg: ModelConfig, x: Tensor, up: bool) -> Tensor:
    """Down- or up-sample x (N, C, H, W) by ``cfg.factor``."""
    if up:
        return F.interpolate(x, scale_factor=cfg.factor, mode=cfg.upsample_mode)
    pool = F.avg_pool2d if cfg.downsample_mode == "avg" else F.max_pool2d
    return pool(x, cfg.factor)


class LatentHead(nn.Module):
    """Final encoder features (B, C, h, w) -> latent ``mu`` (and ``logvar`` for a VAE).

    Vector latent: linear maps of the flattened features to (B, D). Spatial latent: 1x1
    convolutions to (B, D, h, w), or the features themselves when ``latent_dim`` is None.
    """

    def __init__(self, cfg: ModelConfig, channels: int, res: int, variational: bool):
        super().__init__()

        def head() -> nn.Module:
            if cfg.latent == "vector":
                return nn.Sequential(nn.Flatten(), nn.Linear(channels * res * res, cfg.latent_dim))
            if cfg.latent_dim is None:
                return nn.Identity()
            return Conv2d(channels, cfg.latent_dim, 1)

        self.mu = head()
        self.logvar = head() if variational else None

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor | None]:
        """(B, C, h, w) -> (mu, logvar or None)."""
        return self.mu(features), None if self.logvar is None else self.logvar(features)


class LatentMap(nn.Module):
    """Latent ``z`` ((B, D) or (B, D, h, w)) -> decoder input map (B, channels, h, w)."""

    def __init__(self, cfg: ModelConfig, channels: int, res: int):
        super().__init__()
        self.shape = (channels, res, res)
        if cfg.latent == "vector":
            self.net = nn.Linear(cfg.latent_dim, channels * res * res)
        elif cfg.latent_dim is None:
            self.net = nn.Identity()
        else:
            self.net = Conv2d(cfg.latent_dim, channels, 1)

    def forward(self, z: Tensor) -> Tensor:
        """z -> (B, channels, h, w)."""
        return self.net(z).view(z.shape[0], *self.shape)


def model_input(model: nn.Module, x: Tensor, weight: Tensor) -> Tensor:
    """The model's input from (B, L, H, W) maps: (B, L, 1, H, W), or (B, L, 2, H, W) with the
    validity mask as the second channel when the model was built with ``mask_channel``."""
    cfg = getattr(model, "cfg", None)
    if cfg is not None and cfg.mask_channel:
        return torch.stack([x, weight.to(x.dtype)], 2)
    return x.unsqueeze(2)


class AutoencoderBase(nn.Module):
    """What every linecube model shares: its input shape, the latent between encoder and
    decoder, and ``forward`` as encode, sample (VAE) and decode.

    Subclasses define ``encode(x) -> (mu, logvar or None)`` and ``decode(z) -> recon``, and
    build the latent with :meth:`build_latent`.

    Args:
        cfg: architecture.
        n_lines: number of lines L.
        size: map size H = W.

    Attributes:
        in_channels: C of the input (B, L, C, H, W): 2 with ``cfg.mask_channel``, else 1.
        lowest_size: map size at the lowest level (``cfg.check_size(size)``).

    Raises:
        ConfigError: ``size`` does not fit the down-sampling of ``cfg``.
    """

    variational = False

    def __init__(self, cfg: ModelConfig, n_lines: int, size: int):
        super().__init__()
        self.lowest_size = cfg.check_size(size)
        self.cfg, self.n_lines, self.size = cfg, n_lines, size
        self.in_channels = 2 if cfg.mask_channel else 1

    def build_latent(self, channels: int) -> int:
        """Add the latent head (from ``channels`` encoder features) and the latent map.

        Returns:
            The latent map's channels: the encoder's ``channels`` for a spatial latent without
            ``latent_dim`` (the final state is the latent), else the first decoder level's.
        """
        cfg, low = self.cfg, self.lowest_size
        self.latent_head = LatentHead(cfg, channels, low, self.variational)
        first = cfg.decoder_channels[0]
        map_channels = channels if cfg.latent == "spatial" and cfg.latent_dim is None else first
        self.latent_map = LatentMap(cfg, map_channels, low)
        return map_channels

    def check_input(self, x: Tensor) -> None:
        """Raise ValueError unless x is (B, n_lines, in_channels, size, size)."""
        expected = (self.n_lines, self.in_channels, self.size, self.size)
        if x.dim() != 5 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"model input: expected (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}")

    def reparameterise(self, mu: Tensor, logvar: Tensor | None) -> Tensor:
        """z = mu + eps * exp(logvar / 2) in training mode (VAE), else mu."""
        if logvar is None or not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, x: Tensor) -> ModelOutput:
        """x (B, L, C, H, W) -> :class:`ModelOutput` (logvar None for autoencoders)."""
        mu, logvar = self.encode(x)
        return ModelOutput(self.decode(self.reparameterise(mu, logvar)), mu, logvar)


class LineHead(nn.Module):
    """Output convolution with its own weights for every line: a grouped convolution.

    Args:
        channels: decoder channels C per step.
        n_lines: steps L.
        kernel: odd kernel size.
    """

    def __init__(self, channels: int, n_lines: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(channels * n_lines, n_lines, kernel, padding=kernel // 2,
                              groups=n_lines)

    def forward(self, seq: Tensor) -> Tensor:
        """seq (B, L, C, H, W) -> (B, L, 1, H, W)."""
        b, n, c, h, w = seq.shape
        return self.conv(seq.reshape(b, n * c, h, w)).unsqueeze(2)


class ConvLSTMAutoencoder(AutoencoderBase):
    """ConvLSTM autoencoder over (B, L, C, H, W), C = 1 (+1 with ``mask_channel``).

    Args:
        cfg: architecture.
        n_lines: sequence length L.
        size: map size H = W.
    """

    def __init__(self, cfg: ModelConfig, n_lines: int, size: int):
        super().__init__(cfg, n_lines, size)
        self.stem = (
            nn.Sequential(Conv2d(self.in_channels, cfg.stem_channels, 3, padding=1),
                          activation(cfg.activation))
            if cfg.stem_channels else None
        )
        channels, res = cfg.stem_channels or self.in_channels, size
        self.encoder = nn.ModuleList()
        for i, hidden in enumerate(cfg.hidden):
            res = res // cfg.factor if i else res
            layer = ConvLSTM(
                channels, hidden, cfg.kernel_size, peephole=cfg.peephole, size=(res, res),
                bidirectional=cfg.bidirectional, fuse_gates=cfg.fuse_gates)
            self.encoder.append(layer)
            channels = layer.out_channels
        if cfg.latent_source == "hidden_cell":
            channels *= 2
        map_channels = self.build_latent(channels)
        dec = cfg.decoder_channels
        if cfg.decoder_input == "state" and map_channels != dec[0]:
            raise ConfigError(
                f"model: decoder_input = 'state' needs a latent map of {dec[0]} channels (the "
                f"first decoder layer), the final encoder state has {map_channels}; set latent_dim")
        self.decoder = nn.ModuleList()
        channels = 0 if cfg.decoder_input == "state" else map_channels
        for j, hidden in enumerate(dec):
            res = res * cfg.factor if j else res
            self.decoder.append(ConvLSTM(
                channels, hidden, cfg.kernel_size, peephole=cfg.peephole, size=(res, res),
                fuse_gates=cfg.fuse_gates))
            channels = hidden
        self.head = (
            LineHead(channels, n_lines, cfg.head_kernel) if cfg.head == "per_line"
            else Conv2d(channels, 1, cfg.head_kernel, padding=cfg.head_kernel // 2)
        )

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """x (B, L, C, H, W) -> (mu, logvar or None); see :class:`ModelOutput` for shapes."""
        self.check_input(x)
        seq = x if self.stem is None else per_step(self.stem, x)
        for i, layer in enumerate(self.encoder):
            if i and self.cfg.factor > 1:
                seq = per_step(lambda s: resample(self.cfg, s, up=False), seq)
            seq, (h, c) = layer(seq, outputs=i < len(self.encoder) - 1)
        features = torch.cat([h, c], 1) if self.cfg.latent_source == "hidden_cell" else h
        return self.latent_head(features)

    def decode(self, z: Tensor) -> Tensor:
        """Latent z ((B, D) or (B, D, h, w)) -> reconstruction (B, L, 1, H, W)."""
        latent_map = self.latent_map(z)
        first = self.decoder[0]
        if self.cfg.decoder_input == "state":
            seq, _ = first.forward_repeated(
                None, self.n_lines, state=(latent_map, torch.zeros_like(latent_map)))
        else:
            seq, _ = first.forward_repeated(latent_map, self.n_lines)
        for layer in self.decoder[1:]:
            if self.cfg.factor > 1:
                seq = per_step(lambda s: resample(self.cfg, s, up=True), seq)
            seq, _ = layer(seq)
        if isinstance(self.head, LineHead):
            return self.head(seq)
        return per_step(self.head, seq).contiguous()


class ConvLSTMVAE(ConvLSTMAutoencoder):
    """ConvLSTM variational autoencoder: ``encode`` returns mean and log-variance; the latent
    is sampled in training mode only (the mean at eval). Use :func:`kl_divergence` in the loss."""

    variational = True
