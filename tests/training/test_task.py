import pytest
import torch

from linecube.training.config import TrainConfig
from linecube.training.task import AutoencoderTask, epoch_seed, masked_loss


def _data():
    x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])  # (1, 1, 2, 2)
    recon = torch.tensor([[[[1.0, 1.0], [0.0, 13.0]]]])  # errors 1, 0, -2, 10
    weight = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])  # last spaxel masked
    ivar = torch.tensor([[[[4.0, 1.0], [1.0, 9.0]]]])
    return recon, x, weight, ivar


def test_masked_losses_by_hand():
    recon, x, weight, ivar = _data()
    assert masked_loss(recon, x, weight, kind="l1").item() == pytest.approx(3 / 3)
    assert masked_loss(recon, x, weight, kind="mse").item() == pytest.approx(5 / 3)
    huber = (0.5 + 0 + (2 - 0.5)) / 3  # delta 1: 0.5 e^2 if |e| < 1 else |e| - 0.5
    assert masked_loss(recon, x, weight, kind="huber").item() == pytest.approx(huber)
    # inverse-variance weights: ivar for MSE, sqrt(ivar) for L1; masked spaxels never count
    assert masked_loss(recon, x, weight, ivar, "mse").item() == pytest.approx((4 + 4) / 6)
    assert masked_loss(recon, x, weight, ivar, "l1").item() == pytest.approx((2 + 2) / 4)


def test_masked_spaxels_may_hold_nan_and_empty_masks_give_zero():
    recon, x, weight, _ = _data()
    x[0, 0, 1, 1] = float("nan")
    assert torch.isfinite(masked_loss(recon, x, weight, kind="mse"))
    assert masked_loss(recon, x, torch.zeros_like(weight)).item() == 0.0


def test_kl_warmup_and_validation_beta():
    cfg = TrainConfig.model_validate({"model": {"kind": "vae", "hidden": [4], "latent_dim": 2,
                                                "stem_channels": 0},
                                      "loss": {"beta": 0.5, "kl_warmup_epochs": 2}})
    task = AutoencoderTask(cfg, n_lines=2, size=4)

    class FakeTrainer:
        num_training_batches = 4
        current_epoch = 1
    task.trainer = FakeTrainer()
    assert task.kl_weight(2) == pytest.approx(0.5 * (1 + 2 / 4) / 2)
    assert task.kl_weight(None) == 0.5
    batch = {"x": torch.randn(3, 2, 4, 4), "weight": torch.ones(3, 2, 4, 4),
             "ivar": torch.ones(3, 2, 4, 4)}
    task.eval()
    terms = task._losses(batch, 0.5)
    assert terms["loss"].item() == pytest.approx((terms["recon"] + 0.5 * terms["kl"]).item())


def test_epoch_seed_differs_by_epoch_and_rank():
    seeds = {epoch_seed(0, e, r) for e in range(3) for r in range(2)}
    assert len(seeds) == 6 and epoch_seed(0, 1, 0) == epoch_seed(0, 1, 0)


@pytest.mark.parametrize("schedule,cls", [
    ("step", torch.optim.lr_scheduler.StepLR),
    ("cosine", torch.optim.lr_scheduler.CosineAnnealingLR),
    ("plateau", torch.optim.lr_scheduler.ReduceLROnPlateau),
])
def test_schedules(schedule, cls):
    cfg = TrainConfig.model_validate({"model": {"kind": "ae", "hidden": [4], "latent_dim": 2},
                                      "optim": {"schedule": schedule, "lr": 0.01,
                                                "weight_decay": 1e-4}})
    out = AutoencoderTask(cfg, n_lines=2, size=4).configure_optimizers()
    assert isinstance(out["lr_scheduler"]["scheduler"], cls)
    assert out["optimizer"].param_groups[0]["weight_decay"] == 1e-4
    none = cfg.model_copy(update={"optim": cfg.optim.model_copy(update={"schedule": "none"})})
    assert isinstance(AutoencoderTask(none, 2, 4).configure_optimizers(), torch.optim.Adam)


@pytest.mark.slow
@pytest.mark.parametrize("bf16", [False, True])
def test_compile_switch_trains_as_eager(bf16):
    """``trainer.compile = true`` (the whole model through torch.compile, fused gates inside)
    gives the losses of eager training, in float32 and under bf16 autocast."""
    losses = []
    for compile_ in (False, True):
        torch.manual_seed(0)
        cfg = TrainConfig.model_validate({
            "model": {"kind": "ae", "hidden": [4, 8], "latent_dim": 6, "stem_channels": 2,
                      "fuse_gates": True},
            "trainer": {"compile": compile_}})
        task = AutoencoderTask(cfg, n_lines=3, size=8)
        assert (task.model._compiled_call_impl is not None) == compile_
        batch = {"x": torch.randn(2, 3, 8, 8), "weight": torch.ones(2, 3, 8, 8),
                 "ivar": torch.ones(2, 3, 8, 8)}
        opt = torch.optim.Adam(task.parameters(), 1e-2)
        run = []
        for _ in range(3):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = task._losses(batch, 0.0)["loss"]
            loss.backward()
            opt.step()
            run.append(loss.item())
        losses.append(run)
    assert losses[0][-1] < losses[0][0]
    assert losses[1] == pytest.approx(losses[0], rel=1e-3 if bf16 else 1e-5)
