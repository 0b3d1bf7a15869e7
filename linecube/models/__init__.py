"""Models: ConvLSTM autoencoders (AE, VAE) and the 2-D convolutional baseline.

Every model maps ``x`` (B, L, 1, H, W) to a :class:`ModelOutput` and has ``encode(x) ->
(mu, logvar or None)`` and ``decode(z) -> recon``.
"""

from __future__ import annotations

from torch import nn

from linecube.models.autoencoder import ConvLSTMAutoencoder, ConvLSTMVAE, ModelOutput, kl_divergence
from linecube.models.baseline import Conv2dAutoencoder
from linecube.models.config import ModelConfig
from linecube.models.convlstm import ConvLSTM, ConvLSTMCell

__all__ = [
    "Conv2dAutoencoder", "ConvLSTM", "ConvLSTMAutoencoder", "ConvLSTMCell", "ConvLSTMVAE",
    "ModelConfig", "ModelOutput", "build_model", "kl_divergence",
]

MODELS = {"ae": ConvLSTMAutoencoder, "vae": ConvLSTMVAE, "conv2d": Conv2dAutoencoder}


def build_model(cfg: ModelConfig, n_lines: int, size: int) -> nn.Module:
    """The model described by ``cfg`` for ``n_lines`` maps of ``size`` x ``size`` pixels.

    Raises:
        ConfigError: the configuration does not fit these maps (e.g. size not divisible by the
            total down-sampling).
    """
    return MODELS[cfg.kind](cfg, n_lines, size)
