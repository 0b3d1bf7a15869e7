"""Flags generated from a typed config, the settings they give, and the verbs built on them."""

import argparse
import subprocess
import sys
from typing import Any, Literal

import pytest
from pydantic import Field

from linecube.cli import build_parser, main
from linecube.cli.common import add_config_arguments, config_from_args, flag_name
from linecube.config import StrictModel
from linecube.errors import ConfigError


class Demo(StrictModel):
    count: int = Field(3, gt=0, description="how many")
    scale: float = Field(0.5, description="a scale")
    verbose: bool = Field(False, description="talk more")
    mode: Literal["fast", "slow"] = Field("fast", description="speed")
    names: list[str] = Field(default_factory=lambda: ["a", "b"], description="names")
    limit: int | None = Field(None, description="a cap (default: none)")
    extra: dict[str, Any] = Field(default_factory=dict, description="passed through")


def parse(argv, **kwargs):
    parser = argparse.ArgumentParser(prog="demo")
    add_config_arguments(parser, Demo, **kwargs)
    return parser.parse_args(argv)


def settings(argv, **kwargs):
    extra_field = kwargs.pop("extra_field", None)
    return config_from_args(Demo, parse(argv, **kwargs), extra_field=extra_field)


def test_flag_names_types_and_help(capsys):
    assert flag_name("top_k") == "--top-k"
    with pytest.raises(SystemExit):
        parse(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for expected in ("--config FILE", "-o KEY=VALUE, --override KEY=VALUE",
                     "--count COUNT how many (default: 3)", "--scale SCALE a scale (default: 0.5)",
                     "--verbose, --no-verbose talk more (default: false)",
                     "--mode {fast,slow} speed (default: fast)",
                     "--names NAMES [NAMES ...] names (default: a b)",
                     "--limit LIMIT a cap (default: none)"):
        assert expected in text, expected
    assert "--extra" not in text  # a mapping is set in the file or with -o
    assert "(default: none) (default" not in text  # no default appended to a None default


def test_parsed_values_land_in_the_config():
    assert settings([]) == Demo()
    cfg = settings(["--count", "5", "--scale", "2.5", "--verbose", "--mode", "slow",
                    "--names", "x", "y", "--limit", "7"])
    assert cfg == Demo(count=5, scale=2.5, verbose=True, mode="slow", names=["x", "y"], limit=7)
    assert settings(["--no-verbose"]).verbose is False


def test_wrong_types_and_choices_stop_at_parsing(capsys):
    for argv in (["--mode", "medium"], ["--count", "many"], ["--names"]):
        with pytest.raises(SystemExit):
            parse(argv)
    assert "invalid choice: 'medium'" in capsys.readouterr().err


def test_overrides_set_fields_and_win_over_flags():
    cfg = settings(["--count", "5", "-o", "count=6", "-o", 'names=["p"]', "--override",
                    "extra.seed=1"])
    assert (cfg.count, cfg.names, cfg.extra) == (6, ["p"], {"seed": 1})


def test_unknown_or_invalid_settings_name_what_set_them():
    with pytest.raises(ConfigError, match=r"^-o: key 'cuont': unknown key$"):
        settings(["-o", "cuont=2"])
    with pytest.raises(ConfigError, match=r"^--count: key 'count': Input should be greater"):
        settings(["--count", "0"])
    with pytest.raises(ConfigError, match=r"^-o: key 'mode': Input should be 'fast' or 'slow'"):
        settings(["-o", "mode=medium"])


def test_the_extra_field_takes_unknown_override_keys():
    cfg = settings(["-o", "densmap=true", "-o", "count=4"], extra_field="extra")
    assert cfg.extra == {"densmap": True} and cfg.count == 4


def test_file_then_flags_then_overrides(tmp_path):
    path = tmp_path / "demo.toml"
    path.write_text('count = 4\nscale = 9.0\nmode = "slow"\n')
    cfg = settings(["--config", str(path), "--count", "5", "-o", "mode=fast"])
    assert (cfg.count, cfg.scale, cfg.mode) == (5, 9.0, "fast")
    path.write_text("count = 4\nbogus = 1\n")
    with pytest.raises(ConfigError, match=rf"^{path}: key 'bogus': unknown key$"):
        settings(["--config", str(path), "--count", "5"])


def test_aliases_and_override_aliases():
    cfg = settings(["--name", "q", "--option", "count=2"], aliases={"names": ("--name",)},
                   override_aliases=("--option",))
    assert cfg.names == ["q"] and cfg.count == 2


def verb_settings(argv):
    """The parsed arguments and settings of a verb's command line."""
    from linecube.analysis.bpt import BptConfig
    from linecube.analysis.embed import EmbedConfig
    from linecube.analysis.evaluate import EvaluateConfig
    from linecube.analysis.scores import ScoreConfig
    from linecube.analysis.similar import SimilarConfig
    from linecube.analysis.umap import UmapConfig

    models = {"evaluate": EvaluateConfig, "score": ScoreConfig, "umap": UmapConfig,
              "bpt": BptConfig, "embed": EmbedConfig, "similar": SimilarConfig}
    args = build_parser().parse_args(argv)
    extra = "extra" if argv[0] == "umap" else None
    return args, config_from_args(models[argv[0]], args, extra_field=extra)


def test_every_earlier_flag_of_the_analysis_verbs_still_works():
    _, cfg = verb_settings(
        ["evaluate", "a", "--labels", "l.csv", "--label-column", "class", "--positive", "p",
         "--per-class", "--unmatched", "drop", "--scores", "score_recon", "--compare", "pca",
         "x=dir", "--top-k", "3", "--n-bootstrap", "5", "--purity-k", "2",
         "--pca-components", "2", "--add-columns", "--sample", "all", "--seed", "1",
         "--pixel-truth", "t.fits"])
    assert cfg.model_dump(exclude={"fractions", "normal_classes"}) == {
        "label_column": "class", "positive": "p", "per_class": True, "unmatched": "drop",
        "scores": ["score_recon"], "compare": ["pca", "x=dir"], "top_k": 3, "n_bootstrap": 5,
        "purity_k": 2, "pca_components": 2, "add_columns": True, "sample": "all", "seed": 1,
        "pixel_truth": "t.fits"}
    assert verb_settings(["evaluate", "a", "--labels", "l", "--model", "m"])[1].compare == ["m"]
    args, cfg = verb_settings(["score", "a", "--detectors", "knn", "lof", "--k", "4",
                               "--n-estimators", "9", "--combine", "recon", "--threshold-pct",
                               "95", "--seed", "2", "--top", "3"])
    assert (cfg.detectors, cfg.k, cfg.n_estimators, cfg.combine, cfg.threshold_pct, cfg.seed,
            args.top) == (["knn", "lof"], 4, 9, ["recon"], 95.0, 2, 3)
    _, cfg = verb_settings(
        ["umap", "a", "--n-components", "3", "--n-neighbors", "5", "--min-dist", "0.2",
         "--spread", "2", "--metric", "cosine", "--n-epochs", "20", "--learning-rate", "0.5",
         "--init", "random", "--set-op-mix-ratio", "0.5", "--local-connectivity", "2",
         "--repulsion-strength", "2", "--negative-sample-rate", "3", "--no-standardise",
         "--seed", "1", "-o", "densmap=true", "--option", "low_memory=false"])
    assert cfg.model_dump() == {
        "n_components": 3, "n_neighbors": 5, "min_dist": 0.2, "spread": 2.0,
        "metric": "cosine", "n_epochs": 20, "learning_rate": 0.5, "init": "random",
        "set_op_mix_ratio": 0.5, "local_connectivity": 2.0, "repulsion_strength": 2.0,
        "negative_sample_rate": 3, "standardise": False, "seed": 1,
        "extra": {"densmap": True, "low_memory": False}}
    args, cfg = verb_settings(["bpt", "a", "--store", "s", "--no-progress", "--sn-min", "2",
                               "--aperture-arcsec", "1.5"])
    assert (cfg.sn_min, cfg.aperture_arcsec, args.store, args.no_progress) == (2, 1.5, "s", True)
    args, cfg = verb_settings(["embed", "--model", "m", "--store", "s", "--out", "o",
                               "--batch-size", "4", "--device", "cpu", "--save-recon",
                               "--error", "mse", "--calibration", "c.json", "--no-progress"])
    assert cfg.model_dump() == {"batch_size": 4, "device": "cpu", "save_recon": True,
                                "error": "mse", "residual": "shape"}
    assert args.calibration == "c.json"
    _, cfg = verb_settings(["embed", "--model", "m", "--store", "s", "--out", "o",
                            "--residual", "flux"])
    assert cfg.residual == "flux"
    args, cfg = verb_settings(["similar", "a", "8485-1901", "--k", "3", "--metric", "cosine",
                               "--backend", "brute", "--csv", "n.csv"])
    assert cfg.model_dump() == {"k": 3, "metric": "cosine", "backend": "brute"}


def test_simulate_takes_set_and_o_together():
    args = build_parser().parse_args(["simulate", "--n", "1", "--out", "s", "--set", "a=1",
                                      "b=2", "-o", "c=3"])
    assert args.override == ["a=1", "b=2", "c=3"]


def test_a_bad_setting_of_a_verb_is_one_line_naming_the_flag(tmp_path, capsys):
    assert main(["similar", str(tmp_path), "8485-1901", "--k", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("linecube similar: error: --k: key 'k': Input should be greater")
    assert main(["score", str(tmp_path), "-o", "neighbours=5"]) == 2
    assert "linecube score: error: -o: key 'neighbours': unknown key" in capsys.readouterr().err


def test_verb_arguments_load_only_for_the_verb_that_runs():
    code = ("import sys; from linecube.cli import build_parser; p = build_parser(); "
            "p.format_help(); print('linecube.analysis.evaluate' in sys.modules); "
            "p.parse_args(['score', 'a']); print('linecube.analysis.scores' in sys.modules, "
            "'linecube.analysis.evaluate' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True", "False"]


def test_report_top_is_checked_by_the_library_with_the_cli_showing_the_same_error(tmp_path,
                                                                                 capsys):
    from linecube.viz.report import build_report

    with pytest.raises(ConfigError, match=r"^top must be >= 0, got -1$"):
        build_report(tmp_path / "analysis", tmp_path / "r", top=-1)
    assert main(["report", str(tmp_path / "analysis"), "--out", str(tmp_path / "r"),
                 "--top", "-1"]) == 2
    assert capsys.readouterr().err == "linecube report: error: top must be >= 0, got -1\n"
    assert not (tmp_path / "r").exists()
