"""Builders of tiny stores and a tiny model for the analysis tests (shared by conftest.py)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from linecube.models import ModelOutput
from linecube.preprocess import PreprocessConfig
from linecube.preprocess.transform import stretch
from linecube.store import Store, StoreMeta

LINES = ["Hb-4862", "OIII-5008", "OI-6302", "Ha-6564", "NII-6585", "SII-6718", "SII-6732"]
# Physical flux ratios to Ha of a star-forming and a Seyfert-like spectrum.
SF_RATIOS = {
    "Hb-4862": 0.35,
    "OIII-5008": 0.3,
    "OI-6302": 0.02,
    "Ha-6564": 1.0,
    "NII-6585": 0.3,
    "SII-6718": 0.15,
    "SII-6732": 0.1,
}
SEYFERT_RATIOS = {
    "Hb-4862": 0.35,
    "OIII-5008": 3.5,
    "OI-6302": 0.2,
    "Ha-6564": 1.0,
    "NII-6585": 1.2,
    "SII-6718": 0.4,
    "SII-6732": 0.35,
}


def make_store(path, n=24, size=8, seed=0, seyferts=(0,), ivar_physical=1e4):
    """A store of ``n`` galaxies (7 BPT lines, size x size), Seyfert-like at ``seyferts``.

    Flux is ~100 * ratio * (a Gaussian profile), ratios and profile width varying by ~10 % per
    galaxy, so every BPT line has S/N well above 3 in the centre; the first row and column
    are masked.
    """
    cfg = PreprocessConfig(lines="strong", size=size)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - size // 2
    good = (np.abs(yy) < size // 2) & (np.abs(xx) < size // 2)
    rows, xs, ws, ivs = [], [], [], []
    for i in range(n):
        ratios = SEYFERT_RATIOS if i in seyferts else SF_RATIOS
        amplitude = 100 * rng.uniform(0.9, 1.1)
        profile = np.exp(-(yy**2 + xx**2) / (2 * (size / 4 * rng.uniform(0.9, 1.1)) ** 2))
        flux = np.stack(
            [amplitude * ratios[ln] * np.exp(rng.normal(0, 0.1)) * profile for ln in LINES]
        )
        scale = float(np.percentile(flux, 99))
        u = flux / scale
        x = stretch(u, cfg.stretch, cfg.softening).astype(np.float32)
        slope = 1.0 / (np.arcsinh(1 / cfg.softening) * np.sqrt(cfg.softening**2 + u**2))
        ivar = (ivar_physical * scale**2 / slope**2).astype(np.float32)
        w = np.broadcast_to(good, x.shape).astype(np.uint8)
        xs.append(np.where(w, x, 0))
        ws.append(w)
        ivs.append(np.where(w, ivar, 0))
        rows.append(
            {"plateifu": f"{8000 + i}-{1901 + i}", "mangaid": f"1-{1000 + i}", "scale": scale}
        )
    store = Store.create(path, StoreMeta(lines=LINES, size=size, preprocess=cfg.model_dump()))
    store.append({"x": np.stack(xs), "weight": np.stack(ws), "ivar": np.stack(ivs)}, rows)
    return Store.open(path)


class TinyModel(nn.Module):
    """A stand-in autoencoder with the linecube model interface (vector or VAE latent)."""

    def __init__(self, n_lines=7, size=8, dim=3, vae=False):
        super().__init__()
        torch.manual_seed(0)
        self.enc = nn.Linear(n_lines * size * size, dim)
        self.dec = nn.Linear(dim, n_lines * size * size)
        self.logvar = nn.Linear(n_lines * size * size, dim) if vae else None
        self.shape = (n_lines, 1, size, size)

    def encode(self, x):
        flat = x.flatten(1)
        return self.enc(flat), None if self.logvar is None else self.logvar(flat)

    def forward(self, x):
        mu, logvar = self.encode(x)
        return ModelOutput(self.dec(mu).reshape(len(x), *self.shape), mu, logvar)
