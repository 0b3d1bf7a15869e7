import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from linecube.errors import CompatibilityError, InputFileError
from linecube.models import build_model
from linecube.store import StoreMeta
from linecube.training.config import TrainConfig
from linecube.training.modelfile import check_compatible, load_model, save_model, sidecar_path

CFG = TrainConfig.model_validate({"model": {"kind": "vae", "hidden": [4, 6], "stem_channels": 2,
                                            "latent_dim": 3}})
META = StoreMeta(lines=["Hb-4862", "OIII-5008", "Ha-6564"], size=8,
                 preprocess={"stretch": "asinh", "norm": "p98"})


def _saved(tmp_path):
    torch.manual_seed(0)
    model = build_model(CFG.model, 3, 8)
    path = save_model(tmp_path / "model.safetensors", model, CFG, META)
    return model.eval(), path


def test_round_trip_gives_the_same_function(tmp_path):
    model, path = _saved(tmp_path)
    loaded = load_model(path)
    assert loaded.config == CFG and loaded.store_meta == META and not loaded.model.training
    x = torch.randn(2, 3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x).recon, loaded.model(x).recon)
    readable = json.loads(sidecar_path(path).read_text())
    assert readable["train_config"]["model"]["hidden"] == [4, 6]
    assert readable["store_meta"]["lines"] == META.lines


class _Payload:
    def __reduce__(self):
        import pathlib
        return (pathlib.Path.touch, (pathlib.Path(_Payload.marker),))


def test_pickles_are_refused_and_never_run(tmp_path):
    model, path = _saved(tmp_path)
    _Payload.marker = str(tmp_path / "pwned")
    torch.save({"state_dict": model.state_dict(), "x": _Payload()}, path)  # torch zip pickle
    with pytest.raises(InputFileError, match="pickle"):
        load_model(path)
    path.write_bytes(pickle.dumps(_Payload()))  # raw pickle
    with pytest.raises(InputFileError, match="pickle"):
        load_model(path)
    assert not (tmp_path / "pwned").exists()


def test_foreign_or_tampered_files_are_refused(tmp_path):
    model, path = _saved(tmp_path)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, other)
    with pytest.raises(InputFileError, match="not a linecube model"):
        load_model(other)
    with pytest.raises(InputFileError, match="not found"):
        load_model(tmp_path / "missing.safetensors")
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data[:-16]))  # truncated weights
    with pytest.raises(InputFileError, match="model.safetensors"):
        load_model(path)
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(InputFileError, match="not a safetensors"):
        load_model(tmp_path / "junk.safetensors")


def test_check_compatible_names_every_difference():
    check_compatible(META, META.model_copy())
    other = StoreMeta(lines=["Hb-4862", "Ha-6564", "NII-6585"], size=16,
                      preprocess={"stretch": "asinh", "norm": "none"})
    with pytest.raises(CompatibilityError) as err:
        check_compatible(META, other)
    msg = str(err.value)
    assert "OIII-5008" in msg and "NII-6585" in msg and "size" in msg and "'norm'" in msg
    reordered = META.model_copy(update={"lines": list(reversed(META.lines))})
    with pytest.raises(CompatibilityError, match="another order"):
        check_compatible(META, reordered)
