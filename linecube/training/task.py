"""The LightningModule: masked reconstruction loss, VAE KL with β and warm-up, optimiser, schedule."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from linecube.errors import LinecubeError
from linecube.models import build_model
from linecube.models.autoencoder import kl_divergence, model_input
from linecube.training.config import LossConfig, TrainConfig


class NonFiniteLossError(LinecubeError):
    """The training loss became NaN or infinite."""


def masked_loss(recon: torch.Tensor, x: torch.Tensor, weight: torch.Tensor,
                ivar: torch.Tensor | None = None, kind: str = "mse",
                huber_delta: float = 1.0) -> torch.Tensor:
    """Weighted mean of a per-spaxel reconstruction loss over valid spaxels.

    With ``ivar`` given, each spaxel is weighted by its inverse variance (MSE) or its inverse
    standard deviation (L1, Huber), so that the loss is a (scaled) negative log-likelihood
    under Gaussian (Laplace) noise; the weights are normalised, so the value stays comparable
    to the unweighted loss.

    Args:
        recon: (B, L, H, W) reconstruction.
        x: (B, L, H, W) target.
        weight: (B, L, H, W) validity weights (0 = ignore).
        ivar: (B, L, H, W) inverse variance of ``x``, or None for no inverse-variance weighting.
        kind: ``"l1"``, ``"mse"`` or ``"huber"``.
        huber_delta: Huber transition point (normalised units).

    Returns:
        Scalar loss (0 when no spaxel is valid).
    """
    diff = recon.float() - x.float()
    if kind == "l1":
        per = diff.abs()
    elif kind == "mse":
        per = diff.square()
    elif kind == "huber":
        per = F.huber_loss(diff, torch.zeros_like(diff), reduction="none", delta=huber_delta)
    else:
        raise ValueError(f"unknown loss kind {kind!r}")
    w = weight.float()
    if ivar is not None:
        ivar = ivar.float().clamp_min(0)
        w = w * (ivar if kind == "mse" else ivar.sqrt())
    per = torch.where(w > 0, per, torch.zeros_like(per))
    return (w * per).sum() / w.sum().clamp_min(torch.finfo(torch.float32).tiny)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The torch seed of one epoch on one rank (makes resumed runs exact)."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


class AutoencoderTask(L.LightningModule):
    """Trains any linecube model (``ae``, ``vae``, ``conv2d``) on store batches.

    Batches are dicts with ``x``, ``weight``, ``ivar`` of shape (B, L, H, W). The objective is
    ``masked_loss + β · w(epoch) · KL`` where the KL (VAE only) is averaged over the batch and
    the latent elements, and ``w`` rises linearly from 0 to 1 over ``loss.kl_warmup_epochs``.
    Validation reports the objective with the full β (``val_loss``) and, whatever the training
    loss, the masked L1 and MSE of the reconstruction (``val_l1``, ``val_mse``) so that presets
    can be compared.

    Args:
        config: the run's configuration.
        n_lines: number of lines L (sequence length).
        size: map size H = W.
    """

    def __init__(self, config: TrainConfig, n_lines: int, size: int):
        super().__init__()
        self.config = config
        self.model = build_model(config.model, n_lines, size)
        if config.trainer.compile:
            self.model.compile()

    def forward(self, x: torch.Tensor, weight: torch.Tensor):
        """``x``, ``weight`` (B, L, H, W) -> the model's ``ModelOutput`` (recon (B, L, 1, H, W),
        mu, logvar)."""
        return self.model(model_input(self.model, x, weight))

    def kl_weight(self, batch_idx: int | None) -> float:
        """β times the warm-up factor at this point of training (full β when ``batch_idx`` is None)."""
        loss = self.config.loss
        if batch_idx is None or loss.kl_warmup_epochs == 0:
            return loss.beta
        n_batches = max(1, int(self.trainer.num_training_batches))
        progress = (self.current_epoch + batch_idx / n_batches) / loss.kl_warmup_epochs
        return loss.beta * min(1.0, progress)

    def _losses(self, batch: dict[str, torch.Tensor], kl_weight: float) -> dict[str, torch.Tensor]:
        cfg: LossConfig = self.config.loss
        out = self(batch["x"], batch["weight"])
        recon = out.recon.squeeze(2)
        ivar = batch["ivar"] if cfg.ivar_weighting else None
        terms = {"recon": masked_loss(recon, batch["x"], batch["weight"], ivar, cfg.kind,
                                      cfg.huber_delta)}
        loss = terms["recon"]
        if out.logvar is not None:
            kl = kl_divergence(out.mu.float(), out.logvar.float()).mean() / out.mu[0].numel()
            terms["kl"] = kl
            loss = loss + kl_weight * kl
        terms["loss"] = loss
        terms["_recon_tensor"] = recon
        return terms

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        terms = self._losses(batch, self.kl_weight(batch_idx))
        bad = not bool(torch.isfinite(terms["loss"]))
        if self.trainer.strategy.reduce_boolean_decision(bad, all=False):
            raise NonFiniteLossError(
                f"the training loss became {terms['loss'].item()} at epoch {self.current_epoch}, "
                f"batch {batch_idx}; the run is stopped and the last good checkpoint is kept. "
                "Lower optim.lr, set optim.grad_clip, or check the store for non-finite values")
        n = batch["x"].shape[0]
        self.log("train_loss", terms["loss"], prog_bar=True, on_epoch=True, batch_size=n)
        self.log("train_recon", terms["recon"], batch_size=n)
        if "kl" in terms:
            self.log("train_kl", terms["kl"], batch_size=n)
        return terms["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        terms = self._losses(batch, self.kl_weight(None))
        recon, n = terms["_recon_tensor"], batch["x"].shape[0]
        metrics = {"val_recon": terms["recon"],
                   "val_l1": masked_loss(recon, batch["x"], batch["weight"], kind="l1"),
                   "val_mse": masked_loss(recon, batch["x"], batch["weight"], kind="mse")}
        if "kl" in terms:
            metrics["val_kl"] = terms["kl"]
        self.log_dict(metrics, prog_bar=False, batch_size=n, sync_dist=True)
        self.log("val_loss", terms["loss"], prog_bar=True, batch_size=n, sync_dist=True)

    def on_train_batch_start(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        # Reseed at the first batch of every epoch (Lightning skips on_train_epoch_start when it
        # resumes from an end-of-epoch checkpoint), so the noise of an epoch never depends on
        # whether the run was interrupted.
        if batch_idx == 0:
            torch.manual_seed(epoch_seed(self.config.trainer.seed, self.current_epoch,
                                         self.global_rank))

    def configure_optimizers(self):
        opt_cfg = self.config.optim
        optimizer = torch.optim.Adam(self.parameters(), lr=opt_cfg.lr,
                                     weight_decay=opt_cfg.weight_decay)
        if opt_cfg.schedule == "none":
            return optimizer
        if opt_cfg.schedule == "step":
            scheduler = torch.optim.lr_scheduler.StepLR(
                optimizer, step_size=opt_cfg.step_every, gamma=opt_cfg.step_gamma)
        elif opt_cfg.schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=self.config.trainer.max_epochs, eta_min=opt_cfg.min_lr)
        else:
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, factor=opt_cfg.plateau_factor, patience=opt_cfg.plateau_patience,
                min_lr=opt_cfg.min_lr)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "epoch",
                                 "monitor": "val_loss", "strict": False}}
