import math

import pytest
import torch

from linecube.errors import ConfigError
from linecube.models import (
    Conv2dAutoencoder,
    ConvLSTMAutoencoder,
    ConvLSTMVAE,
    ModelConfig,
    ModelOutput,
    build_model,
    kl_divergence,
)
from linecube.models.autoencoder import AutoencoderBase

REFERENCE = dict(stem_channels=0, hidden=[32, 16], kernel_size=3, downsample=None,
                 latent="spatial", latent_dim=None, head_kernel=1)
PAPER = dict(kind="vae", stem_channels=8, hidden=[8, 12, 18, 24], kernel_size=5, downsample=2,
             latent="vector", latent_dim=6, latent_source="hidden_cell")


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_reference_workload_has_139809_parameters():
    model = build_model(ModelConfig(**REFERENCE), n_lines=19, size=32)
    assert isinstance(model, ConvLSTMAutoencoder) and not isinstance(model, ConvLSTMVAE)
    assert n_params(model) == 139_809
    x = torch.randn(2, 19, 1, 8, 8)
    small = build_model(ModelConfig(**REFERENCE), n_lines=19, size=8)
    out = small(x)
    assert out.recon.shape == x.shape and out.mu.shape == (2, 16, 8, 8) and out.logvar is None


def test_paper_prototype_shapes():
    model = build_model(ModelConfig(**PAPER), n_lines=19, size=16)
    assert isinstance(model, ConvLSTMVAE)
    assert [layer.hidden_channels for layer in model.encoder] == [8, 12, 18, 24]
    assert [layer.hidden_channels for layer in model.decoder] == [24, 18, 12, 8]
    x = torch.randn(3, 19, 1, 16, 16)
    out = model(x)
    assert isinstance(out, ModelOutput)
    assert out.recon.shape == x.shape and out.mu.shape == out.logvar.shape == (3, 6)


@pytest.mark.parametrize("overrides", [
    dict(latent="spatial", latent_dim=4),
    dict(bidirectional=True, peephole=True),
    dict(decoder_input="state", latent_source="hidden_cell"),
    dict(downsample_mode="max", upsample_mode="bilinear", stem_channels=0, head_kernel=3),
])
@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_options_give_documented_shapes(kind, overrides):
    cfg = ModelConfig(kind=kind, hidden=[4, 6], **overrides)
    model = build_model(cfg, n_lines=5, size=8)
    x = torch.randn(2, 5, 1, 8, 8)
    out = model(x)
    assert out.recon.shape == x.shape
    expected = (2, 4, 4, 4) if cfg.latent == "spatial" else (2, 16)
    assert out.mu.shape == expected
    assert (out.logvar is None) == (kind == "ae")
    loss = out.recon.square().mean() + out.mu.square().mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def test_vae_samples_in_training_and_returns_mean_in_eval():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="vae", hidden=[4, 6]), n_lines=4, size=8)
    x = torch.randn(2, 4, 1, 8, 8)
    model.train()
    a, b = model(x), model(x)
    torch.testing.assert_close(a.mu, b.mu)
    assert not torch.allclose(a.recon, b.recon)
    model.eval()
    c, d = model(x), model(x)
    torch.testing.assert_close(c.recon, d.recon)
    mu, logvar = model.encode(x)
    torch.testing.assert_close(model.decode(mu), c.recon)


def test_encode_decode_compose_to_forward_for_ae():
    model = build_model(ModelConfig(hidden=[4, 6]), n_lines=3, size=8).eval()
    x = torch.randn(2, 3, 1, 8, 8)
    mu, logvar = model.encode(x)
    assert logvar is None
    torch.testing.assert_close(model.decode(mu), model(x).recon)


def test_kl_divergence_values():
    mu = torch.zeros(3, 4)
    assert torch.equal(kl_divergence(mu, torch.zeros(3, 4)), torch.zeros(3))
    mu = torch.tensor([[1.0, 2.0]])
    logvar = torch.tensor([[math.log(2.0), 0.0]])
    # 0.5 * sum(var + mu^2 - 1 - logvar)
    expected = 0.5 * ((2.0 + 1.0 - 1.0 - math.log(2.0)) + (1.0 + 4.0 - 1.0))
    torch.testing.assert_close(kl_divergence(mu, logvar), torch.tensor([expected]))
    spatial = kl_divergence(torch.ones(2, 3, 4, 4), torch.zeros(2, 3, 4, 4))
    torch.testing.assert_close(spatial, torch.full((2,), 0.5 * 48))


def test_size_must_fit_the_down_sampling():
    with pytest.raises(ConfigError, match="not divisible"):
        build_model(ModelConfig(hidden=[4, 4, 4]), n_lines=3, size=10)


def test_state_decoder_input_needs_matching_channels():
    cfg = ModelConfig(hidden=[4, 6], latent="spatial", latent_dim=None, decoder_input="state",
                      latent_source="hidden_cell")
    with pytest.raises(ConfigError, match="decoder_input"):
        build_model(cfg, n_lines=3, size=8)


def test_wrong_input_shape_is_named():
    model = build_model(ModelConfig(hidden=[4]), n_lines=3, size=8)
    with pytest.raises(ValueError, match=r"expected \(B, 3, 1, 8, 8\), got \(2, 4, 1, 8, 8\)"):
        model(torch.randn(2, 4, 1, 8, 8))


@pytest.mark.parametrize(("kind", "latent"), [
    (kind, latent) for kind in ("ae", "vae", "conv2d")
    for latent in ("vector", "spatial map", "spatial state")
    if (kind, latent) != ("vae", "spatial state")  # a vae needs latent_dim
])
def test_every_model_builds_its_latent_through_the_shared_base(kind, latent):
    """Latent map channels: the encoder's own for a spatial latent without latent_dim, else the
    first decoder level's; the size and input checks are the same for every kind."""
    options = {"vector": dict(latent="vector", latent_dim=5),
               "spatial map": dict(latent="spatial", latent_dim=5),
               "spatial state": dict(latent="spatial", latent_dim=None)}[latent]
    cfg = ModelConfig(kind=kind, hidden=[4, 6], decoder_hidden=[7, 3], stem_channels=0,
                      **options)
    model = build_model(cfg, n_lines=3, size=8)
    assert isinstance(model, AutoencoderBase)
    assert isinstance(model, Conv2dAutoencoder) == (kind == "conv2d")
    assert model.lowest_size == 4 and model.in_channels == 1
    assert model.latent_map.shape == (6 if latent == "spatial state" else 7, 4, 4)
    assert (model.latent_head.logvar is not None) == (kind == "vae")
    with pytest.raises(ValueError, match=r"expected \(B, 3, 1, 8, 8\), got \(2, 3, 2, 8, 8\)"):
        model(torch.randn(2, 3, 2, 8, 8))


def test_few_adam_steps_reduce_reconstruction_error():
    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=[4, 6], latent_dim=8), n_lines=4, size=8)
    yy, xx = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    blob = torch.exp(-((yy - 3.5) ** 2 + (xx - 3.5) ** 2) / 8)
    x = torch.rand(4, 4, 1, 1, 1) * blob  # line ratios times a shared disc
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = (model(x).recon - x).square().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bf16_autocast_keeps_cell_state_in_float32_and_stays_close():
    torch.manual_seed(0)
    model = build_model(ModelConfig(**REFERENCE), n_lines=4, size=8).eval()
    x = torch.rand(2, 4, 1, 8, 8)
    with torch.no_grad():
        full = model(x).recon
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(x).recon
            seq, (h, c) = model.encoder[0](x)
    assert c.dtype == torch.float32 and h.dtype == torch.bfloat16
    torch.testing.assert_close(half.float(), full, atol=2e-2, rtol=0)


def test_mask_channel_reads_the_validity_mask():
    from linecube.models.autoencoder import model_input

    cfg = ModelConfig(stem_channels=2, hidden=[4], latent_dim=3, mask_channel=True)
    model = build_model(cfg, 5, 8)
    x = torch.rand(2, 5, 8, 8)
    weight = torch.ones(2, 5, 8, 8)
    out = model(model_input(model, x, weight))
    assert out.recon.shape == (2, 5, 1, 8, 8)
    weight[0, 2, :4] = 0  # the same values, now masked: the model sees the difference
    assert not torch.equal(model(model_input(model, x, weight)).mu[0], out.mu[0])
    plain = build_model(ModelConfig(stem_channels=2, hidden=[4], latent_dim=3), 5, 8)
    assert model_input(plain, x, weight).shape == (2, 5, 1, 8, 8)
    with pytest.raises(ValueError, match=r"expected \(B, 5, 2, 8, 8\)"):
        model(x.unsqueeze(2))
    with pytest.raises(ValueError, match="mask_channel is a ConvLSTM option"):
        ModelConfig(kind="conv2d", mask_channel=True)


def test_per_line_head_gives_each_line_its_own_weights():
    from linecube.models.autoencoder import LineHead

    torch.manual_seed(0)
    head = LineHead(channels=3, n_lines=4, kernel=1)
    seq = torch.randn(2, 4, 3, 5, 5)
    out = head(seq)
    assert out.shape == (2, 4, 1, 5, 5)
    weight, bias = head.conv.weight.detach(), head.conv.bias.detach()  # (4, 3, 1, 1), (4,)
    expected = torch.einsum("blchw,lc->blhw", seq, weight[:, :, 0, 0]) + bias[None, :, None, None]
    torch.testing.assert_close(out[:, :, 0], expected)
    # the same decoder state at every step still gives each line its own level
    same = seq[:, :1].expand(-1, 4, -1, -1, -1)
    levels = head(same)[0, :, 0, 2, 2]
    assert len(set(levels.tolist())) == 4
    cfg = ModelConfig(hidden=[4, 6], head="per_line", head_kernel=3)
    model = build_model(cfg, n_lines=5, size=8)
    model(torch.randn(2, 5, 1, 8, 8)).recon.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="head is a ConvLSTM option"):
        ModelConfig(kind="conv2d", head="per_line")
