import numpy as np
import pytest
from manga_fixtures import fake_maps_arrays

from linecube.config import validate
from linecube.errors import ConfigError, InputFileError
from linecube.io.maps import read_maps
from linecube.io.mmu import write_mmu
from linecube.preprocess import PreprocessConfig, invert, prepare_file, preprocess


def test_config_rejects_unknown_keys_lines_and_bits():
    with pytest.raises(ConfigError, match="unknown key"):
        validate(PreprocessConfig, {"sise": 64})
    with pytest.raises(ConfigError, match="unknown emission line 'Ha'"):
        validate(PreprocessConfig, {"lines": ["Ha"]})
    with pytest.raises(ConfigError, match="unknown mask bit"):
        validate(PreprocessConfig, {"mask": ["NOPE"]})
    with pytest.raises(ConfigError, match="norm_line 'OII-3727' is not among the lines"):
        validate(PreprocessConfig, {"norm_line": "OII-3727"})
    cfg = PreprocessConfig()
    assert cfg.size == 64 and len(cfg.line_names) == 19
    assert PreprocessConfig(**cfg.model_dump()) == cfg


@pytest.mark.parametrize("stretch", ["asinh", "log", "linear"])
def test_round_trip_file_to_tensor_to_flux(maps_file, stretch):
    cfg = PreprocessConfig(lines="strong", size=16, stretch=stretch)
    path = maps_file()
    gal = read_maps(path, lines="strong")
    prep, = prepare_file(path, cfg)
    assert prep.x.shape == prep.weight.shape == prep.ivar.shape == (7, 16, 16)
    assert prep.x.dtype == np.float32 and prep.weight.dtype == np.uint8
    oy, ox = prep.row["offset_y"], prep.row["offset_x"]
    assert (oy, ox) == (6 - 8, 6 - 8)
    flux = invert(prep.x, prep.row, cfg)
    native = np.zeros_like(flux)
    native[:, -oy:-oy + 12, -ox:-ox + 12] = gal.flux
    w = prep.weight.astype(bool)
    assert w.sum() == gal.good.sum()
    np.testing.assert_allclose(flux[w], native[w], rtol=2e-6, atol=1e-6 * prep.row["scale"])
    assert (prep.x[~w] == 0).all() and (prep.ivar[~w] == 0).all() and (prep.ivar[w] > 0).all()


def test_one_scale_keeps_line_ratios(maps_file):
    cfg = PreprocessConfig(lines="strong", size=12, stretch="linear")
    prep, = prepare_file(maps_file(), cfg)
    gal = read_maps(maps_file(name="again.fits"), lines="strong")
    ha, nii = gal.lines.index("Ha-6564"), gal.lines.index("NII-6585")
    good = gal.good[ha] & gal.good[nii]
    np.testing.assert_allclose(prep.x[nii][good] / prep.x[ha][good],
                               gal.flux[nii][good] / gal.flux[ha][good], rtol=1e-5)
    assert prep.row["scale"] == pytest.approx(np.percentile(gal.flux[gal.good], 99))


def test_ivar_carried_into_stretched_units(maps_file):
    cfg = PreprocessConfig(lines=["Ha-6564"], size=12, stretch="asinh", softening=0.1)
    prep, = prepare_file(maps_file(), cfg)
    gal = read_maps(maps_file(name="b.fits"), lines=["Ha-6564"])
    s, a = prep.row["scale"], 0.1
    u = gal.flux[0, 6, 6] / s
    slope = 1 / (np.arcsinh(1 / a) * np.sqrt(a * a + u * u)) / s
    assert prep.ivar[0, 6, 6] == pytest.approx(gal.ivar[0, 6, 6] / slope**2, rel=1e-5)


def test_pad_centres_the_ifu_and_crop_reports_loss(maps_file):
    prep, = prepare_file(maps_file(n=12), PreprocessConfig(lines="strong", size=8))
    assert prep.row["lost_fraction"] > 0 and prep.row["native_h"] == 12
    gal = read_maps(maps_file(name="c.fits"), lines="strong")
    np.testing.assert_array_equal(prep.weight.astype(bool), gal.good[:, 2:10, 2:10])
    big, = prepare_file(maps_file(name="d.fits"), PreprocessConfig(lines="strong", size=20))
    assert big.row["lost_fraction"] == 0
    assert big.weight[:, 10, 10].all() and not big.weight[:, :4].any()


def test_resampling_conserves_flux(maps_file):
    arrays = fake_maps_arrays()
    arrays["EMLINE_GFLUX_MASK"][:] = 0  # every spaxel good
    arrays["EMLINE_GFLUX_IVAR"][:] = 4.0
    cfg = PreprocessConfig(lines=["Ha-6564"], size=8, pixel_scale=1.0, stretch="linear")
    prep, = prepare_file(maps_file(maps=arrays), cfg)
    flux = invert(prep.x, prep.row, cfg)[0]
    # 1" output pixels are centred on native pixel centres: output 2..6 covers native
    # [1, 11] in both axes, i.e. pixels 2..10 fully and pixels 1 and 11 by half.
    w = np.zeros(12)
    w[1], w[2:11], w[11] = 0.5, 1.0, 0.5
    native = arrays["EMLINE_GFLUX"][23].astype(np.float64)
    assert flux[2:7, 2:7].sum() == pytest.approx(w @ native @ w, rel=1e-5)
    assert prep.weight[0, 1:7, 1:7].all() and not prep.weight[0, 0].any()
    # overlaps 0.5, 1, 0.5 per axis: variance (0.25 + 1 + 0.25)**2 / 4 for inputs of ivar 4
    assert prep.ivar[0, 3, 3] / prep.row["scale"] ** 2 == pytest.approx(1 / 0.5625, rel=1e-5)


def test_mmu_and_maps_give_the_same_tensor(maps_file, tmp_path):
    cfg = PreprocessConfig(lines="strong", size=16)
    path = maps_file()
    from_maps, = prepare_file(path, cfg)
    h5 = tmp_path / "a.hdf5"
    write_mmu(h5, [read_maps(path, lines="dr17-optical")])
    from_mmu, = prepare_file(h5, cfg)
    np.testing.assert_array_equal(from_mmu.weight, from_maps.weight)
    np.testing.assert_allclose(from_mmu.x, from_maps.x, rtol=1e-6)
    assert from_mmu.row["dapqual"] == -1 and from_maps.row["dapqual"] == 0


def test_prepare_file_rejections(maps_file, tmp_path):
    with pytest.raises(InputFileError, match="unknown file type"):
        prepare_file(tmp_path / "x.txt", PreprocessConfig())
    arrays = fake_maps_arrays()
    arrays["EMLINE_GFLUX"][:] = 0.0
    path = maps_file(maps=arrays)
    with pytest.raises(InputFileError, match="no positive flux") as err:
        prepare_file(path, PreprocessConfig(lines="strong"))
    assert err.value.path == str(path)
    good = read_maps(maps_file(name="g.fits"), lines="dr17-optical")
    bad = read_maps(path, lines="dr17-optical")
    bad.plateifu = "9999-1901"
    h5 = tmp_path / "two.h5"
    write_mmu(h5, [good, bad])
    rejections = []
    got = prepare_file(h5, PreprocessConfig(lines="strong"), rejections)
    assert [p.row["plateifu"] for p in got] == ["8485-1901"]
    assert rejections[0][0] == f"{h5}#9999-1901" and "no positive flux" in rejections[0][1]


def test_row_metadata(maps_file):
    prep, = prepare_file(maps_file(), PreprocessConfig(lines="strong", size=16))
    row = prep.row
    for key in ("plateifu", "mangaid", "ra", "dec", "z", "reff", "psf_fwhm", "ifudesign",
                "daptype", "dapqual", "drp3qual", "ebvgal", "release", "source", "scale",
                "offset_y", "offset_x", "mask_fraction"):
        assert key in row
    assert row["mask_fraction"] == pytest.approx(1 - prep.weight.mean())
    assert row["release"] == "dr17" and row["plateifu"] == "8485-1901"


def test_lines_must_match_the_config(maps_file):
    gal = read_maps(maps_file(), lines="strong")
    with pytest.raises(InputFileError, match="differ from the configured"):
        preprocess(gal, PreprocessConfig())


def test_documented_config_example_loads(tmp_path):
    """The TOML block of docs/data.md is a valid PreprocessConfig."""
    from pathlib import Path

    from linecube.config import load_config

    text = (Path(__file__).resolve().parents[2] / "docs" / "data.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "pre.toml"
    path.write_text(block)
    cfg = load_config(path, PreprocessConfig)
    assert cfg.norm_line == "Ha-6564" and cfg.size == 64 and cfg.pixel_scale is None
