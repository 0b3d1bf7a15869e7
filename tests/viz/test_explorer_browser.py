"""The explorer page in Debian's headless Chromium, driven by Playwright (no downloaded browser)."""

from __future__ import annotations

import csv
import io
import json
import threading
from pathlib import Path

import pytest

from linecube.viz.explore import build_explorer, serve

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed at /usr/bin/chromium "
                "(apt-get install chromium)", allow_module_level=True)

from playwright import sync_api  # noqa: E402  (a test dependency: pip install -e ".[test]")


@pytest.fixture(scope="module")
def site(shared_analysis_dir, tmp_path_factory):
    """The explorer page served on 127.0.0.1; yields (base URL, page data)."""
    page_dir = build_explorer(shared_analysis_dir, tmp_path_factory.mktemp("page"), k=3,
                              labels=shared_analysis_dir.parent / "labels.csv").parent
    text = (page_dir / "data.js").read_text()
    data = json.loads(text[text.index("=") + 1:].rstrip().rstrip(";"))
    server = serve(page_dir, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html", data
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, site):
    """A fresh page (own localStorage) with the explorer loaded; fails on any console error."""
    context = browser.new_context(viewport={"width": 1400, "height": 850}, accept_downloads=True)
    tab = context.new_page()
    errors = []
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(site[0])
    tab.wait_for_function("window.linecubeExplorer !== undefined")
    yield tab
    context.close()
    assert errors == []


def test_loads_without_console_errors(page):
    assert page.text_content("#count") == "12 of 12 galaxies shown"
    assert page.evaluate("document.getElementById('plot').width") > 100


def test_search_finds_a_galaxy(page, site):
    target = site[1]["plateifu"][7]
    page.fill("#search", target.upper())
    page.press("#search", "Enter")
    assert page.is_visible("#panel") and page.text_content("#gal-id") == target
    assert page.get_attribute("#gal-maps", "src") == "galaxies/7.png"
    page.fill("#search", "9999-9999")
    page.press("#search", "Enter")
    assert "no galaxy matches" in page.text_content("#search-status")


def test_hover_and_click_show_thumbnail_and_neighbours(page, site):
    data = site[1]
    x, y = page.evaluate("window.linecubeExplorer.screenPosition(4)")
    page.mouse.move(x, y)
    assert page.is_visible("#tooltip") and data["plateifu"][4] in page.text_content("#tooltip")
    page.mouse.click(x, y)
    assert page.text_content("#gal-id") == data["plateifu"][4]
    items = page.locator("#neighbours li")
    assert items.count() == 3
    for n, j in enumerate(data["neighbours"][4]):
        assert data["plateifu"][j] in items.nth(n).text_content()
    items.nth(0).locator("button").click()
    assert page.text_content("#gal-id") == data["plateifu"][data["neighbours"][4][0]]


def test_screenshot_is_written(page, tmp_path):
    page.evaluate("window.linecubeExplorer.select(0)")
    path = tmp_path / "explorer.png"
    page.screenshot(path=str(path))
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 10_000


def test_script_label_shows_as_text(page, xss_label):
    page.select_option("#filter-column", "class")
    assert xss_label in page.text_content("#filter-values")
    page.evaluate("window.linecubeExplorer.select(9)")
    assert xss_label in page.text_content("#gal-scores")
    assert page.evaluate("window.__xss") is None
    assert page.locator("#filter-values b, #gal-scores b, #legend b").count() == 0


def test_filters_pan_and_zoom(page):
    page.select_option("#filter-column", "bpt_class")
    page.locator("#filter-values input").first.uncheck()
    assert page.text_content("#count") == "9 of 12 galaxies shown"
    page.eval_on_selector("#score-min", "el => { el.value = 50; el.dispatchEvent(new Event('input')); }")
    shown = int(page.text_content("#count").split()[0])
    assert 0 < shown < 9
    before = page.evaluate("window.linecubeExplorer.screenPosition(0)")
    page.mouse.move(700, 400)
    page.mouse.wheel(0, -400)
    page.wait_for_timeout(50)
    after = page.evaluate("window.linecubeExplorer.screenPosition(0)")
    assert after != before


def test_marks_persist_and_export_as_csv(page, site):
    data = site[1]
    page.evaluate("window.linecubeExplorer.select(2)")
    page.check("#mark-interesting")
    page.evaluate("window.linecubeExplorer.select(5)")
    page.check("#mark-checked")
    assert page.text_content("#mark-count") == "1 checked, 1 interesting"
    page.reload()
    page.wait_for_function("window.linecubeExplorer !== undefined")
    assert page.text_content("#mark-count") == "1 checked, 1 interesting"
    with page.expect_download() as info:
        page.click("#export")
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    marked = {r["plateifu"]: (r["checked"], r["interesting"]) for r in rows}
    assert marked == {data["plateifu"][2]: ("0", "1"), data["plateifu"][5]: ("1", "0")}
    page.select_option("#mark-filter", "interesting")
    assert page.text_content("#count") == "1 of 12 galaxies shown"
