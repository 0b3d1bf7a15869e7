import pytest

from linecube.config import load_config, validate
from linecube.errors import ConfigError
from linecube.models import ModelConfig


def test_defaults_and_mirrored_decoder():
    cfg = ModelConfig(hidden=[8, 16, 32])
    assert cfg.kind == "ae" and cfg.decoder_channels == [32, 16, 8]
    assert cfg.check_size(32) == 8
    assert ModelConfig(downsample=None, hidden=[4, 4]).check_size(7) == 7


def test_unknown_key_is_rejected_by_name():
    with pytest.raises(ConfigError, match="'hiden': unknown key"):
        validate(ModelConfig, {"hiden": [4]})


@pytest.mark.parametrize("bad, match", [
    ({"kind": "vae", "latent": "spatial", "latent_dim": None}, "vae needs latent_dim"),
    ({"latent_dim": None}, "needs latent_dim"),
    ({"kernel_size": 4}, "odd"),
    ({"hidden": [4, 8], "decoder_hidden": [4]}, "as many layers"),
    ({"hidden": [0]}, "positive"),
    ({"kind": "gan"}, "kind"),
])
def test_invalid_settings_raise(bad, match):
    with pytest.raises(ConfigError, match=match):
        validate(ModelConfig, bad)


def test_load_from_toml_with_override(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('kind = "vae"\nhidden = [8, 12, 18, 24]\nkernel_size = 5\nlatent_dim = 6\n')
    cfg = load_config(path, ModelConfig, {"peephole": True})
    assert cfg.kind == "vae" and cfg.hidden == [8, 12, 18, 24] and cfg.peephole
