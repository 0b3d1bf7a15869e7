// linecube explorer: UMAP scatter (canvas) with pan/zoom, hover thumbnails, galaxy panel,
// nearest neighbours, filters, PLATEIFU search and marks kept in localStorage.
// Every string from data.js is inserted with textContent, never as HTML.
(function () {
  "use strict";
  const D = window.LINECUBE_DATA;
  if (!D) throw new Error("linecube explorer: data.js did not define LINECUBE_DATA");
  const N = D.n;
  const $ = (id) => document.getElementById(id);
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }
  const fmt = (v) => (v === null || v === undefined ? "n/a" : Number(v).toPrecision(4));

  // ------------------------------------------------------------------ marks (localStorage)
  const MARK_KEY = "linecube-marks:" + D.analysis;
  const MARKS = ["checked", "interesting"];
  let marks = {};
  const saved = window.localStorage.getItem(MARK_KEY);
  if (saved) {
    try {
      marks = JSON.parse(saved);
    } catch (err) {
      console.warn("linecube explorer: stored marks are unreadable and were not loaded", err);
    }
  }
  const idIndex = new Map(D.plateifu.map((id, i) => [id, i]));
  const isMarked = (i, kind) => Boolean(marks[D.plateifu[i]] && marks[D.plateifu[i]][kind]);
  function setMark(i, kind, value) {
    const id = D.plateifu[i];
    const entry = marks[id] || {};
    entry[kind] = value;
    if (!MARKS.some((m) => entry[m])) delete marks[id]; else marks[id] = entry;
    window.localStorage.setItem(MARK_KEY, JSON.stringify(marks));
    updateMarkCount();
    applyFilters();
  }
  function updateMarkCount() {
    const counts = MARKS.map((m) => Object.values(marks).filter((e) => e[m]).length);
    $("mark-count").textContent = counts[0] + " checked, " + counts[1] + " interesting";
  }
  function csvCell(value) {
    let s = String(value);
    // keep spreadsheets from running text as a formula (numbers such as -0.5 stay numbers)
    if (typeof value === "string" && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function marksCsv() {
    const rows = [["plateifu", "mangaid", "rank", "score_combined", "checked", "interesting"]];
    for (const [id, entry] of Object.entries(marks)) {
      const i = idIndex.get(id);
      rows.push([id, i === undefined ? "" : D.mangaid[i], i === undefined ? "" : D.rank[i],
        i === undefined ? "" : D.scores.score_combined[i],
        entry.checked ? 1 : 0, entry.interesting ? 1 : 0]);
    }
    return rows.map((r) => r.map(csvCell).join(",")).join("\n") + "\n";
  }
  function exportMarks() {
    const blob = new Blob([marksCsv()], { type: "text/csv" });
    const link = el("a");
    link.href = URL.createObjectURL(blob);
    link.download = "linecube-marks.csv";
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  // ------------------------------------------------------------------ colours
  const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89",
    "#35b779", "#6ece58", "#b5de2b", "#fde725"];
  let colourIndex = new Uint16Array(N);  // index into palette
  let palette = VIRIDIS;
  function recolour() {
    const by = $("colour-by").value;
    const legend = $("legend");
    legend.replaceChildren();
    if (by === "score") {
      palette = VIRIDIS;
      for (let i = 0; i < N; i++) colourIndex[i] = Math.min(9, Math.floor((D.score_pct[i] || 0) / 10));
      legend.append(el("div", null, "gradient"), el("div", "combined score percentile 0 - 100"));
    } else {
      const cls = D.classes[by];
      palette = cls.colours;
      for (let i = 0; i < N; i++) colourIndex[i] = cls.codes[i];
      cls.names.forEach((name, c) => {
        const row = el("div");
        const sw = el("span", null, "swatch");
        sw.style.background = cls.colours[c];
        row.append(sw, el("span", name));
        legend.append(row);
      });
    }
    buildDrawOrder();
    requestDraw();
  }

  // ------------------------------------------------------------------ filters
  const visible = new Uint8Array(N).fill(1);
  let shown = N;
  const allowed = {};  // class column -> Set of allowed codes
  for (const col of Object.keys(D.classes)) allowed[col] = new Set(D.classes[col].names.keys());
  function buildFilterValues() {
    const col = $("filter-column").value;
    const box = $("filter-values");
    box.replaceChildren();
    if (!col) return;
    const cls = D.classes[col];
    const counts = new Array(cls.names.length).fill(0);
    for (const c of cls.codes) counts[c]++;
    cls.names.forEach((name, c) => {
      const label = el("label");
      const input = el("input");
      input.type = "checkbox";
      input.checked = allowed[col].has(c);
      input.addEventListener("change", () => {
        if (input.checked) allowed[col].add(c); else allowed[col].delete(c);
        applyFilters();
      });
      const sw = el("span", null, "swatch");
      sw.style.background = cls.colours[c];
      label.append(input, sw, el("span", name), el("span", "(" + counts[c] + ")"));
      box.append(label);
    });
  }
  function applyFilters() {
    const minPct = Number($("score-min").value);
    const markMode = $("mark-filter").value;
    const cols = Object.keys(D.classes);
    shown = 0;
    for (let i = 0; i < N; i++) {
      let ok = (D.score_pct[i] || 0) >= minPct;
      for (let c = 0; ok && c < cols.length; c++) ok = allowed[cols[c]].has(D.classes[cols[c]].codes[i]);
      if (ok && markMode !== "all") {
        const any = MARKS.some((m) => isMarked(i, m));
        ok = markMode === "unmarked" ? !any : isMarked(i, markMode);
      }
      visible[i] = ok ? 1 : 0;
      shown += visible[i];
    }
    $("count").textContent = shown + " of " + N + " galaxies shown";
    requestDraw();
  }

  // ------------------------------------------------------------------ view and drawing
  const canvas = $("plot");
  const ctx = canvas.getContext("2d");
  const view = { s: 1, ox: 0, oy: 0 };
  let width = 0, height = 0;
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < N; i++) {
    if (D.x[i] === null || D.y[i] === null) continue;
    minX = Math.min(minX, D.x[i]); maxX = Math.max(maxX, D.x[i]);
    minY = Math.min(minY, D.y[i]); maxY = Math.max(maxY, D.y[i]);
  }
  if (!(maxX > minX)) { minX -= 1; maxX += 1; }
  if (!(maxY > minY)) { minY -= 1; maxY += 1; }
  const toScreen = (i) => [D.x[i] * view.s + view.ox, -D.y[i] * view.s + view.oy];
  function resize() {
    const box = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    view.ox += (box.width - width) / 2;  // keep the centre of the plot in place
    view.oy += (box.height - height) / 2;
    width = box.width; height = box.height;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (!viewMoved) fitView();  // until the user pans or zooms, always show every point
    requestDraw();
  }
  let viewMoved = false;
  function fitView() {
    view.s = 0.92 * Math.min(width / (maxX - minX), height / (maxY - minY));
    view.ox = width / 2 - view.s * (minX + maxX) / 2;
    view.oy = height / 2 + view.s * (minY + maxY) / 2;
    requestDraw();
  }
  let drawOrder = [];  // point indices grouped by colour, high scores last
  function buildDrawOrder() {
    const groups = palette.map(() => []);
    for (let i = 0; i < N; i++) if (D.x[i] !== null && D.y[i] !== null) groups[colourIndex[i]].push(i);
    if ($("colour-by").value !== "score") groups.sort((a, b) => b.length - a.length);
    drawOrder = groups;
  }
  let pending = false;
  function requestDraw() {
    if (!pending) { pending = true; window.requestAnimationFrame(draw); }
  }
  let hover = -1, selected = -1;
  let lastDrawMs = 0;
  function draw() {
    pending = false;
    const t0 = performance.now();
    ctx.clearRect(0, 0, width, height);
    const zoom = Math.max(1, view.s / (width / (maxX - minX)));
    const r = Math.min(5, (N < 1000 ? 3 : N < 5000 ? 2.2 : 1.6) + Math.log2(zoom) * 0.5);
    for (const group of drawOrder) {
      if (!group.length) continue;
      ctx.fillStyle = palette[colourIndex[group[0]]];
      ctx.beginPath();
      for (const i of group) {
        if (!visible[i]) continue;
        const sx = D.x[i] * view.s + view.ox, sy = -D.y[i] * view.s + view.oy;
        if (sx < -r || sy < -r || sx > width + r || sy > height + r) continue;
        ctx.rect(sx - r, sy - r, 2 * r, 2 * r);
      }
      ctx.fill();
    }
    for (const [id, entry] of Object.entries(marks)) {  // marked galaxies: small outlines
      const i = idIndex.get(id);
      if (i === undefined || !visible[i]) continue;
      ring(i, r + 1.5, entry.interesting ? "#e6a700" : "#777", 1.2);
    }
    if (selected >= 0) {
      for (let n = 0; n < D.k; n++) ring(D.neighbours[selected][n], r + 3, "#ff7f0e", 1.5);
      ring(selected, r + 5, "#d62728", 2.5);
    }
    if (hover >= 0) ring(hover, r + 3, "#000", 1.5);
    lastDrawMs = performance.now() - t0;
  }
  function ring(i, radius, colour, lineWidth) {
    if (D.x[i] === null) return;
    const [sx, sy] = toScreen(i);
    ctx.strokeStyle = colour;
    ctx.lineWidth = lineWidth;
    ctx.beginPath();
    ctx.arc(sx, sy, radius, 0, 2 * Math.PI);
    ctx.stroke();
  }

  // ------------------------------------------------------------------ hit testing (grid in data space)
  const G = 96;
  const cellW = (maxX - minX) / G, cellH = (maxY - minY) / G;
  const grid = Array.from({ length: G * G }, () => []);
  const cellOf = (v, lo, w) => Math.max(0, Math.min(G - 1, Math.floor((v - lo) / w)));
  for (let i = 0; i < N; i++) {
    if (D.x[i] === null || D.y[i] === null) continue;
    grid[cellOf(D.y[i], minY, cellH) * G + cellOf(D.x[i], minX, cellW)].push(i);
  }
  function pick(px, py, radiusPx) {
    const x = (px - view.ox) / view.s, y = -(py - view.oy) / view.s;
    const rx = radiusPx / view.s;
    const c0 = cellOf(x - rx, minX, cellW), c1 = cellOf(x + rx, minX, cellW);
    const r0 = cellOf(y - rx, minY, cellH), r1 = cellOf(y + rx, minY, cellH);
    let best = -1, bestD = rx * rx;
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) {
        for (const i of grid[r * G + c]) {
          if (!visible[i]) continue;
          const d = (D.x[i] - x) ** 2 + (D.y[i] - y) ** 2;
          if (d <= bestD) { bestD = d; best = i; }
        }
      }
    }
    return best;
  }

  // ------------------------------------------------------------------ mouse: pan, zoom, hover, click
  let drag = null;
  const tooltip = $("tooltip");
  canvas.addEventListener("mousedown", (ev) => {
    drag = { x: ev.clientX, y: ev.clientY, ox: view.ox, oy: view.oy, moved: false };
  });
  window.addEventListener("mouseup", (ev) => {
    if (drag && !drag.moved && ev.target === canvas) {
      const box = canvas.getBoundingClientRect();
      const i = pick(ev.clientX - box.left, ev.clientY - box.top, 8);
      if (i >= 0) select(i);
    }
    drag = null;
    canvas.classList.remove("dragging");
  });
  canvas.addEventListener("mousemove", (ev) => {
    const box = canvas.getBoundingClientRect();
    const px = ev.clientX - box.left, py = ev.clientY - box.top;
    if (drag) {
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; canvas.classList.add("dragging"); }
      if (drag.moved) {
        view.ox = drag.ox + dx; view.oy = drag.oy + dy;
        viewMoved = true;
        tooltip.hidden = true;
        requestDraw();
        return;
      }
    }
    const i = pick(px, py, 8);
    if (i !== hover) { hover = i; requestDraw(); }
    if (i < 0) { tooltip.hidden = true; return; }
    setThumb(tooltip.querySelector(".thumb"), i, 96);
    tooltip.querySelector(".tip-id").textContent = D.plateifu[i] + "  (rank " + D.rank[i] + ")";
    tooltip.hidden = false;
    tooltip.style.left = Math.min(px + 14, width - 110) + "px";
    tooltip.style.top = Math.min(py + 14, height - 130) + "px";
  });
  canvas.addEventListener("mouseleave", () => { hover = -1; tooltip.hidden = true; requestDraw(); });
  canvas.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const box = canvas.getBoundingClientRect();
    const px = ev.clientX - box.left, py = ev.clientY - box.top;
    const f = Math.exp(-ev.deltaY * 0.0015);
    view.ox = px - (px - view.ox) * f;
    view.oy = py - (py - view.oy) * f;
    view.s *= f;
    viewMoved = true;
    requestDraw();
  }, { passive: false });

  // ------------------------------------------------------------------ thumbnails
  function setThumb(div, i, size) {
    const t = D.thumbs;
    const perSheet = t.cols * t.cols;
    const slot = i % perSheet;
    div.style.width = size + "px";
    div.style.height = size + "px";
    div.style.backgroundImage = "url(" + JSON.stringify(t.sheets[Math.floor(i / perSheet)]) + ")";
    div.style.backgroundSize = (t.cols * size) + "px auto";
    div.style.backgroundPosition = (-(slot % t.cols) * size) + "px " + (-Math.floor(slot / t.cols) * size) + "px";
  }

  // ------------------------------------------------------------------ galaxy panel
  function select(i) {
    selected = i;
    const panel = $("panel");
    panel.hidden = false;
    $("gal-id").textContent = D.plateifu[i];
    $("gal-meta").textContent = "MaNGA-ID " + D.mangaid[i] + " \u00b7 rank " + D.rank[i] + " of " + N +
      " \u00b7 combined score percentile " + fmt(D.score_pct[i]);
    $("mark-checked").checked = isMarked(i, "checked");
    $("mark-interesting").checked = isMarked(i, "interesting");
    const table = $("gal-scores");
    table.replaceChildren();
    for (const [name, values] of Object.entries(D.scores)) {
      if (!name.startsWith("score_")) continue;
      const pct = D.scores["pct_" + name.slice(6)];
      const tr = el("tr");
      tr.append(el("td", name), el("td", fmt(values[i])), el("td", pct ? "pct " + fmt(pct[i]) : ""));
      table.append(tr);
    }
    for (const [col, cls] of Object.entries(D.classes)) {
      const tr = el("tr");
      tr.append(el("td", col), el("td", cls.names[cls.codes[i]]), el("td", ""));
      table.append(tr);
    }
    $("gal-why").textContent = D.why[i] ? "Highest per-line error (percentile): " + D.why[i] : "";
    $("gal-maps").src = "galaxies/" + i + ".png";
    $("gal-maps-link").href = "galaxies/" + i + ".png";
    const nb = $("neighbours");
    nb.replaceChildren();
    for (let n = 0; n < D.k; n++) {
      const j = D.neighbours[i][n];
      const li = el("li");
      const button = el("button");
      button.type = "button";
      button.dataset.row = String(j);
      const thumb = el("div", null, "thumb");
      setThumb(thumb, j, 40);
      button.append(thumb, el("span", D.plateifu[j]),
        el("span", "d = " + fmt(D.distances[i * D.k + n]) + ", rank " + D.rank[j]));
      button.addEventListener("click", () => select(j));
      li.append(button);
      nb.append(li);
    }
    requestDraw();
  }
  function buildMapHeader() {
    const header = $("map-header");
    header.style.gridTemplateColumns = "repeat(" + (D.lines.length + 1) + ", 1fr)";
    D.lines.forEach((name) => header.append(el("span", name)));
    if (D.panel.bpt) header.append(el("span", "BPT"));
    const names = $("row-names");
    names.style.gridTemplateRows = "repeat(" + D.panel.rows.length + ", 1fr)";
    D.panel.rows.forEach((name) => names.append(el("span", name)));
    const legend = $("bpt-legend");
    if (D.panel.bpt) {
      D.panel.bpt_classes.forEach((name, c) => {
        const item = el("span");
        const sw = el("span", null, "swatch");
        sw.style.background = D.panel.bpt_colours[c];
        item.append(sw, el("span", name));
        legend.append(item);
      });
    }
  }

  // ------------------------------------------------------------------ search
  const byId = new Map(D.plateifu.map((id, i) => [id.toLowerCase(), i]));
  function search(query) {
    const q = query.trim().toLowerCase();
    const status = $("search-status");
    status.textContent = "";
    if (!q) return -1;
    let i = byId.has(q) ? byId.get(q) : -1;
    if (i < 0) i = D.plateifu.findIndex((id) => id.toLowerCase().startsWith(q));
    if (i < 0) { status.textContent = "no galaxy matches \u201c" + query + "\u201d"; return -1; }
    select(i);
    if (D.x[i] !== null) {
      view.ox = width / 2 - D.x[i] * view.s;
      view.oy = height / 2 + D.y[i] * view.s;
      viewMoved = true;
    }
    requestDraw();
    return i;
  }

  // ------------------------------------------------------------------ wiring
  function init() {
    document.title = D.title;
    $("title").textContent = D.title;
    const datalist = $("ids");
    if (N <= 20000) D.plateifu.forEach((id) => { const o = el("option"); o.value = id; datalist.append(o); });
    const colourBy = $("colour-by");
    const opt = (value, text) => { const o = el("option", text); o.value = value; return o; };
    colourBy.append(opt("score", "combined score"));
    const filterCol = $("filter-column");
    for (const col of Object.keys(D.classes)) {
      colourBy.append(opt(col, col));
      filterCol.append(opt(col, col));
    }
    colourBy.addEventListener("change", recolour);
    filterCol.addEventListener("change", buildFilterValues);
    $("score-min").addEventListener("input", () => {
      $("score-min-value").textContent = $("score-min").value;
      applyFilters();
    });
    $("mark-filter").addEventListener("change", applyFilters);
    $("export").addEventListener("click", exportMarks);
    $("reset-view").addEventListener("click", () => { viewMoved = false; fitView(); });
    $("close-panel").addEventListener("click", () => { $("panel").hidden = true; selected = -1; requestDraw(); });
    document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") $("close-panel").click(); });
    $("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); search($("search").value); });
    for (const kind of MARKS) {
      $("mark-" + kind).addEventListener("change", (ev) => { if (selected >= 0) setMark(selected, kind, ev.target.checked); });
    }
    buildMapHeader();
    buildFilterValues();
    updateMarkCount();
    new ResizeObserver(resize).observe($("plot-area"));
    resize();
    recolour();
    applyFilters();
  }
  init();

  // A small API for scripts and tests.
  window.linecubeExplorer = {
    select, search, marksCsv,
    screenPosition: (i) => {
      const box = canvas.getBoundingClientRect();
      const [sx, sy] = toScreen(i);
      return [box.left + sx, box.top + sy];
    },
    zoom: (factor) => {
      view.ox = width / 2 - (width / 2 - view.ox) * factor;
      view.oy = height / 2 - (height / 2 - view.oy) * factor;
      view.s *= factor;
      draw();
      return lastDrawMs;
    },
    shown: () => shown,
  };
})();
