import pytest
import torch

from linecube.errors import ConfigError
from linecube.models import Conv2dAutoencoder, ModelConfig, build_model


@pytest.mark.parametrize("latent", ["vector", "spatial"])
def test_baseline_has_same_latent_size_as_convlstm(latent):
    cfg = ModelConfig(hidden=[8, 12], latent=latent, latent_dim=5)
    base = build_model(cfg.model_copy(update={"kind": "conv2d"}), n_lines=6, size=8)
    ours = build_model(cfg, n_lines=6, size=8)
    assert isinstance(base, Conv2dAutoencoder)
    x = torch.randn(2, 6, 1, 8, 8)
    out = base(x)
    assert out.recon.shape == x.shape and out.logvar is None
    assert out.mu.shape == ours(x).mu.shape
    out.recon.sum().backward()
    assert all(p.grad is not None for p in base.parameters())


def test_baseline_reads_lines_as_channels():
    torch.manual_seed(0)
    base = build_model(ModelConfig(kind="conv2d", hidden=[4], downsample=None, latent="spatial",
                                   latent_dim=None), n_lines=3, size=4).eval()
    first = base.encoder[0][0]
    assert first.in_channels == 3 and base.head.out_channels == 3
    x = torch.randn(1, 3, 1, 4, 4)
    torch.testing.assert_close(base.encode(x)[0], base.encoder[0](x[:, :, 0]))


def test_baseline_rejects_cell_state_latent():
    with pytest.raises(ConfigError, match="latent_source"):
        from linecube.config import validate
        validate(ModelConfig, {"kind": "conv2d", "latent_source": "hidden_cell"})
