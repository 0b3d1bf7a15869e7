"""Explorer speed with many galaxies: build time, page load, redraw, hover and filter latency.

Peers measured in the same run: a Matplotlib (Agg) redraw of the same scatter (what an
interactive Matplotlib/ipympl figure does on every pan or zoom step), and the same points as
SVG circles in the same Chromium (frame interval while zooming, as in SVG-based plots).

    python benchmarks/bench_explorer.py --n 10000

Needs Debian's chromium at /usr/bin/chromium and Playwright for Python.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Frame interval while zooming: zoom one step, wait for the next animation frame, repeat.
FRAME_LOOP = """async (steps) => {
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    window.__zoomStep(s % 2 ? 1 / 1.1 : 1.1);
    await new Promise((r) => requestAnimationFrame(r));
  }
  return (performance.now() - t0) / steps;
}"""

SVG_PAGE = """<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head>
<body style="margin:0"><svg id="s" width="1000" height="800"><g id="g"></g></svg><script>
const D = window.LINECUBE_DATA, g = document.getElementById("g"), ns = "http://www.w3.org/2000/svg";
for (let i = 0; i < D.n; i++) { const c = document.createElementNS(ns, "circle");
  c.setAttribute("cx", D.x[i] * 100 + 500); c.setAttribute("cy", -D.y[i] * 100 + 400);
  c.setAttribute("r", 2); c.setAttribute("fill", "#3b528b"); g.appendChild(c); }
let s = 1; window.__zoomStep = (f) => { s *= f;
  g.setAttribute("transform", `translate(500 400) scale(${s}) translate(-500 -400)`); };
</script></body></html>"""


def load_fixture():
    """``make_analysis_dir`` of the viz tests (one synthetic-data builder for tests and here)."""
    spec = importlib.util.spec_from_file_location("viz_fixture", ROOT / "tests/viz/conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_analysis_dir


def matplotlib_redraw_ms(x, y, c, repeats: int = 5) -> float:
    """Median time of one Agg redraw of a scatter of the points (1000 x 800 px)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 8), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(x, y, c=c, s=4, cmap="viridis")
    times = []
    for i in range(repeats):
        ax.set_xlim(ax.get_xlim()[0] * 1.01, ax.get_xlim()[1] * 1.01 + i * 1e-3)
        t0 = time.perf_counter()
        canvas.draw()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="galaxies")
    parser.add_argument("--size", type=int, default=16, help="map size (pixels)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from linecube.viz.explore import build_explorer, serve

    with tempfile.TemporaryDirectory(prefix="bench-explorer-") as tmp:
        tmp = Path(tmp)
        analysis = load_fixture()(tmp, n=args.n, size=args.size, seed=args.seed)
        t0 = time.perf_counter()
        page_dir = build_explorer(analysis, tmp / "page").parent
        build_s = time.perf_counter() - t0
        data_mb = (page_dir / "data.js").stat().st_size / 1e6
        (page_dir / "svg.html").write_text(SVG_PAGE.replace(
            "<body", '<script src="data.js"></script><body'))
        server = serve(page_dir, 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}"
        text = (page_dir / "data.js").read_text()
        data = json.loads(text[text.index("=") + 1:].rstrip().rstrip(";"))
        results = {"n": args.n, "build_s": round(build_s, 2), "data_js_mb": round(data_mb, 2)}
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 850})
                t0 = time.perf_counter()
                page.goto(base + "/index.html")
                page.wait_for_function("window.linecubeExplorer !== undefined")
                results["load_ms"] = round((time.perf_counter() - t0) * 1000)
                draws = [page.evaluate("window.linecubeExplorer.zoom(1.05)") for _ in range(30)]
                results["canvas_draw_ms"] = round(statistics.median(draws), 2)
                page.evaluate("window.__zoomStep = (f) => window.linecubeExplorer.zoom(f)")
                results["canvas_frame_ms"] = round(page.evaluate(FRAME_LOOP, 30), 2)
                results["hover_ms"] = round(page.evaluate("""() => {
                    const c = document.getElementById('plot'), b = c.getBoundingClientRect();
                    const t0 = performance.now();
                    for (let i = 0; i < 500; i++) c.dispatchEvent(new MouseEvent('mousemove',
                        {clientX: b.left + (i * 37) % b.width, clientY: b.top + (i * 53) % b.height}));
                    return (performance.now() - t0) / 500; }"""), 3)
                results["filter_ms"] = round(page.evaluate("""() => {
                    const el = document.getElementById('score-min'), t0 = performance.now();
                    for (let v = 0; v < 20; v++) { el.value = v * 5; el.dispatchEvent(new Event('input')); }
                    return (performance.now() - t0) / 20; }"""), 2)
                svg = browser.new_page(viewport={"width": 1400, "height": 850})
                svg.goto(base + "/svg.html")
                svg.wait_for_function("window.__zoomStep !== undefined")
                results["svg_frame_ms"] = round(svg.evaluate(FRAME_LOOP, 30), 2)
                browser.close()
        finally:
            server.shutdown()
            server.server_close()
        results["matplotlib_redraw_ms"] = round(
            matplotlib_redraw_ms(data["x"], data["y"], data["score_pct"]), 1)
        results["matplotlib_over_canvas_frame"] = round(
            results["matplotlib_redraw_ms"] / results["canvas_frame_ms"], 1)
        results["svg_over_canvas_frame"] = round(
            results["svg_frame_ms"] / results["canvas_frame_ms"], 2)
        # Printed before the temporary files (10,000s of them) are removed, which can be slow.
        print(json.dumps(results, indent=2), flush=True)


if __name__ == "__main__":
    main()
