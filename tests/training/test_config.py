import pytest
import torch

from linecube.errors import ConfigError
from linecube.models import build_model
from linecube.training.config import PRESETS, load_train_config, preset_path


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads_builds_and_runs(name):
    cfg = load_train_config(name)
    model = build_model(cfg.model, n_lines=19, size=64)
    assert sum(p.numel() for p in model.parameters()) > 0
    small = build_model(cfg.model, n_lines=3, size=8)
    x = torch.randn(2, 3, 1, 8, 8)
    assert small(x).recon.shape == x.shape


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_key_is_commented(name):
    for line in preset_path(name).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            assert "#" in line, f"{name}: uncommented key: {line}"


def test_reference_preset_is_the_peer_workload():
    cfg = load_train_config("reference")
    model = build_model(cfg.model, n_lines=19, size=32)
    assert sum(p.numel() for p in model.parameters()) == 139_809
    assert cfg.model.latent_dim is None and cfg.data.batch_size == 8 and cfg.loss.kind == "mse"


def test_paper_preset_matches_the_prototype():
    cfg = load_train_config("paper")
    assert cfg.model.hidden == [8, 12, 18, 24] and cfg.model.kernel_size == 5
    assert cfg.model.latent_dim == 6 and cfg.model.kind == "vae"
    assert (cfg.loss.kind, cfg.loss.beta, cfg.data.batch_size) == ("l1", 0.1, 12)
    assert (cfg.optim.schedule, cfg.optim.step_every, cfg.optim.step_gamma) == ("step", 5, 0.95)
    assert cfg.trainer.max_epochs == 150 and cfg.trainer.early_stopping_patience is None


def test_overrides_and_none(tmp_path):
    cfg = load_train_config("default", {"optim.lr": 0.01, "trainer.early_stopping_patience": "none",
                                        "model.hidden": [4, 4]})
    assert cfg.optim.lr == 0.01 and cfg.trainer.early_stopping_patience is None
    assert cfg.model.hidden == [4, 4]
    path = tmp_path / "c.json"
    path.write_text(cfg.model_dump_json())
    assert load_train_config(path, {"data.seed": 3}).data.seed == 3


def test_precision_32_may_be_given_as_a_number():
    """``-o trainer.precision=32`` reads the TOML integer 32; it means float32."""
    from linecube.config import parse_overrides

    overrides = parse_overrides(["trainer.precision=32"])
    assert load_train_config("paper", overrides).trainer.precision == "32"
    with pytest.raises(ConfigError, match="trainer.precision"):
        load_train_config("paper", {"trainer.precision": 16})


def test_bad_configs_fail_loudly(tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        load_train_config("demo", {"optim.learning_rate": 0.1})
    with pytest.raises(ConfigError, match="neither a config file nor a preset"):
        load_train_config("no-such-preset")
    bad = tmp_path / "bad.toml"
    bad.write_text('[loss]\nkind = "l3"\n')
    with pytest.raises(ConfigError, match="loss.kind"):
        load_train_config(bad)
    with pytest.raises(ConfigError, match="schedule"):
        load_train_config("demo", {"optim.schedule": "none "})
