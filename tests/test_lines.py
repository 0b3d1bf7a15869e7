import pytest

from linecube.errors import ConfigError
from linecube.lines import DR15_LINES, DR17_LINES, PRESETS, TIED_LINES, resolve_lines


def test_catalogue_sizes_and_header_order():
    assert len(DR17_LINES) == 35 and len(DR15_LINES) == 22
    assert [ln.name for ln in DR17_LINES].index("Ha-6564") == 23  # C24 in DR17
    assert [ln.name for ln in DR15_LINES].index("Ha-6564") == 18  # 0-based 18 in DR15


def test_presets():
    assert len(PRESETS["mantha19"]) == 19
    assert len(PRESETS["dr17-optical"]) == 25
    assert "Hthe-3798" not in PRESETS["dr17-optical"]
    assert resolve_lines() == resolve_lines("mantha19")
    assert resolve_lines("strong")[0] == "Hb-4862"


# The DR17 DAP line list (ELPMPL11 .par file, docs/datamodel.rst): every flux tie.
DAP_DR17_TIES = {
    "NeIII-3968": ("NeIII-3869", 0.30),
    "OIII-4960": ("OIII-5008", 0.35),
    "OI-6365": ("OI-6302", 0.32),
    "NII-6549": ("NII-6585", 0.34),
    "SIII-9071": ("SIII-9533", 0.41),
}


def test_ties():
    ties = {ln.name: (ln.tied_to, ln.tie_ratio) for ln in DR17_LINES if ln.tied_to}
    assert ties == DAP_DR17_TIES
    assert set(TIED_LINES) == set(DAP_DR17_TIES)
    dr15 = {ln.name: ln for ln in DR15_LINES}
    assert dr15["NeIII-3968"].tied_to is None and dr15["OI-6365"].tie_ratio == 0.328


def test_custom_list_sorted_by_wavelength():
    assert resolve_lines(["Ha-6564", "Hb-4862"]) == ("Hb-4862", "Ha-6564")


def test_unknown_line_lists_valid_names():
    with pytest.raises(ConfigError, match="Halpha.*valid DAP channel names.*Ha-6564"):
        resolve_lines(["Halpha"])
    with pytest.raises(ConfigError, match="unknown line preset"):
        resolve_lines("nope")
    with pytest.raises(ConfigError, match="repeats"):
        resolve_lines(["Ha-6564", "Ha-6564"])
