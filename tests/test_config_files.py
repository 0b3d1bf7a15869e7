import pytest

from linecube.config import StrictModel, load_config, parse_overrides
from linecube.errors import ConfigError


class Inner(StrictModel):
    size: int = 64


class Demo(StrictModel):
    name: str
    inner: Inner = Inner()


def test_toml_and_yaml(tmp_path):
    (tmp_path / "a.toml").write_text('name = "x"\n[inner]\nsize = 32\n')
    (tmp_path / "a.yaml").write_text("name: x\ninner:\n  size: 32\n")
    assert load_config(tmp_path / "a.toml", Demo).inner.size == 32
    assert load_config(tmp_path / "a.yaml", Demo) == load_config(tmp_path / "a.toml", Demo)


def test_unknown_key_named_with_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\n[inner]\nsise = 32\n')
    with pytest.raises(ConfigError, match=r"bad.toml: key 'inner.sise': unknown key"):
        load_config(path, Demo)


def test_missing_file_and_overrides(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "none.toml", Demo)
    path = tmp_path / "a.toml"
    path.write_text('name = "x"\n')
    cfg = load_config(path, Demo, parse_overrides(["inner.size=16", "name=y"]))
    assert cfg.inner.size == 16 and cfg.name == "y"


def test_each_key_is_blamed_on_what_set_it(tmp_path):
    from pydantic import ValidationError

    from linecube.config import format_validation_error

    try:
        Demo.model_validate({"name": 1, "inner": {"size": "x"}, "other": 2})
    except ValidationError as exc:
        text = format_validation_error(exc, "file.toml", sources={
            "inner": "-o", "inner.size": "--size", "name": "--name"})
    assert text.splitlines() == ["--name: key 'name': Input should be a valid string",
                                 "--size: key 'inner.size': Input should be a valid integer, "
                                 "unable to parse string as an integer",
                                 "file.toml: key 'other': unknown key"]
