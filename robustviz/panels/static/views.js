// robustviz linked views: hand-written SVG/canvas, no dependencies, no network.
// One ES module serves both the anywidget front end (a kernel computes the payloads) and the static report
// (`staticModel` answers from payloads embedded in the page). Every string from the cube reaches the DOM through
// textContent or setAttribute, never innerHTML.

const SVGNS = "http://www.w3.org/2000/svg";
// Selection fields each payload depends on; the same table as robustviz/panels/payloads.py PAYLOAD_FIELDS.
export const PAYLOAD_FIELDS = {
  heatmap: ["variable", "model", "method"],
  cell: ["variable", "model", "method", "perturbation", "severity"],
  curves: ["variable", "method", "scope_perturbation"],
  scatter: ["explanation", "scope_perturbation", "severity_range"],
  gallery: ["model", "perturbation", "sample"],
  spectral: [],
  fisher: ["severity"],
};
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf"];
const CSS = `
.rv-root{position:relative;font:12px/1.35 system-ui,sans-serif;color:#222;max-width:1200px}
.rv-bar{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:4px 0}
.rv-bar label{display:flex;gap:4px;align-items:center}
.rv-grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:10px}
.rv-view{border:1px solid #ddd;border-radius:4px;padding:6px;overflow:auto}
.rv-view h4{margin:0 0 4px 0;font-size:13px}
.rv-wide{grid-column:1/-1}
.rv-note{color:#666}.rv-error{color:#b00}
.rv-tooltip{position:absolute;pointer-events:none;background:#fffff0;border:1px solid #999;padding:3px 6px;
  white-space:pre;font-size:11px;z-index:10;display:none}
.rv-legend-item{cursor:pointer;margin-right:8px;display:inline-block}
.rv-legend-item.rv-hidden{opacity:.35;text-decoration:line-through}
.rv-gallery td{text-align:center;padding:1px 3px}
.rv-gallery canvas,.rv-gallery img{width:72px;height:72px;image-rendering:pixelated}
.rv-example{margin-right:4px}.rv-example.rv-current,.rv-tool.rv-current{font-weight:bold}
svg text{font-size:10px}
`;

// -- small helpers ---------------------------------------------------------------------------------------------
function node(tag, attrs = {}, text) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = String(text);
  return element;
}
function svgNode(tag, attrs = {}, text) {
  const element = document.createElementNS(SVGNS, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = String(text);
  return element;
}
function fmt(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return "missing";
  const magnitude = Math.abs(value);
  return magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e4) ? value.toExponential(2) : value.toFixed(digits);
}
function colourAt(table, t) {
  const n = table.length / 6;
  const x = Math.min(Math.max(t, 0), 1) * (n - 1);
  const i = Math.min(Math.floor(x), n - 2), f = x - i;
  const channel = (k, c) => parseInt(table.substr(6 * k + 2 * c, 2), 16);
  const rgb = [0, 1, 2].map((c) => Math.round(channel(i, c) * (1 - f) + channel(i + 1, c) * f));
  return rgb;
}
function css(rgb) { return `rgb(${rgb[0]},${rgb[1]},${rgb[2]})`; }
function extent(values) {
  const finite = values.filter((v) => v !== null && Number.isFinite(v));
  if (!finite.length) return [0, 1];
  let low = Math.min(...finite), high = Math.max(...finite);
  if (low === high) { low -= 0.5; high += 0.5; }
  return [low, high];
}
function scale(domain, range) {
  return (v) => range[0] + (v - domain[0]) / (domain[1] - domain[0]) * (range[1] - range[0]);
}
function same(a, b) { return JSON.stringify(a) === JSON.stringify(b); }
// even-odd rule: a horizontal ray from (px, py) crosses the outline an odd number of times iff the point is inside
function insidePolygon(px, py, outline) {
  let inside = false;
  for (let i = 0, j = outline.length - 1; i < outline.length; j = i++) {
    const [xi, yi] = outline[i], [xj, yj] = outline[j];
    if ((yi > py) !== (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

export function keyOf(kind, state, meta) {
  const info = (meta && meta.variables && meta.variables[state.variable]) || {};
  const values = PAYLOAD_FIELDS[kind].map((field) => {
    if (field === "method" && !info.has_method) return null;
    if (field === "scope_perturbation") return state.scope === "selected" ? state.perturbation : null;
    if (field === "severity_range") return state.severity_range && state.severity_range.length ? state.severity_range : null;
    return state[field] === undefined ? null : state[field];
  });
  return JSON.stringify(values);
}

// -- the static report's stand-in for an anywidget model ---------------------------------------------------------
export function staticModel(bundle) {
  const state = Object.assign({}, bundle.state);
  const pending = {};
  const handlers = {};
  const absent = (what) => ({ error: `${what} is not in this report (it embeds a subset; open the cube with ` +
    "robustviz.panels.explore for everything)" });
  const cell = () => {  // cut one cell out of the (perturbation, severity, sample) table of its variable
    const meta = state.meta, info = meta.variables[state.variable] || {};
    const method = info.has_method ? state.method : null;
    const table = bundle.cells[JSON.stringify([state.variable, state.model, method])];
    const p = meta.perturbations.findIndex((v) => same(v, state.perturbation));
    const s = meta.severities.findIndex((v) => same(v, state.severity));
    if (!table || p < 0 || s < 0) return absent("this cell");
    const clean = Math.max(0, meta.severities.indexOf(0));
    const perturbed = table[p][s];
    return { variable: state.variable, model: state.model, method, perturbation: state.perturbation,
      severity: state.severity, samples: bundle.samples, clean: table[p][clean], perturbed,
      n_total: bundle.n_samples, n_defined: perturbed.filter((v) => v !== null).length };
  };
  const resolve = (value) => (typeof value === "number" ? bundle.pool[value] : value);
  const payload = (kind) => {
    if (kind === "cell") return cell();
    const table = bundle.payloads[kind] || {};
    const key = keyOf(kind, state, state.meta);
    if (!(key in table)) return absent(kind === "gallery" ? `sample ${state.sample} under this perturbation` : kind);
    const found = table[key];
    if (kind !== "gallery" || !found.available) return found;
    return Object.assign({}, found, { images: found.images.map(resolve), maps: found.maps.map((row) => ({
      method: row.method, severities: row.severities.map((e) => ({ scale: e.scale, png: resolve(e.png) })) })) });
  };
  const emit = (name) => (handlers["change:" + name] || []).forEach((f) => f());
  return {
    get(name) { return name in PAYLOAD_FIELDS ? payload(name) : state[name]; },
    set(name, value) { pending[name] = value; },
    save_changes() {
      const before = {};
      for (const kind in PAYLOAD_FIELDS) before[kind] = keyOf(kind, state, state.meta);
      const changed = Object.keys(pending).filter((k) => !same(state[k], pending[k]));
      for (const k of changed) state[k] = pending[k];
      for (const k of Object.keys(pending)) delete pending[k];
      changed.forEach(emit);
      for (const kind in PAYLOAD_FIELDS) if (keyOf(kind, state, state.meta) !== before[kind]) emit(kind);
    },
    on(event, handler) { (handlers[event] = handlers[event] || []).push(handler); },
    off(event, handler) { handlers[event] = (handlers[event] || []).filter((f) => f !== handler); },
  };
}

// -- the views ------------------------------------------------------------------------------------------------
function render({ model, el }) {
  let instance = (render.count = (render.count || 0) + 1);
  el.replaceChildren();
  const root = node("div", { class: "rv-root" });
  root.appendChild(node("style", {}, CSS));
  el.appendChild(root);
  const tooltip = node("div", { class: "rv-tooltip" });
  const hidden = new Set();  // legend entries hidden in the severity curves (a view-local choice)
  const get = (name) => model.get(name);
  const meta = () => get("meta") || {};
  const choose = (fields) => {
    for (const [name, value] of Object.entries(fields)) model.set(name, value);
    model.save_changes();
  };
  // tooltips: one set of listeners on the root (thousands of points, no per-point listeners)
  const tips = new WeakMap();
  const tipOf = (target) => {
    for (let e = target; e && e !== root; e = e.parentNode) if (tips.has(e)) return e;
    return null;
  };
  function tip(target, lines) { tips.set(target, lines); }
  root.addEventListener("mouseover", (event) => {
    const target = tipOf(event.target);
    if (!target) return;
    tooltip.textContent = tips.get(target)();
    tooltip.style.display = "block";
    tooltip.setAttribute("data-visible", "true");
  });
  root.addEventListener("mousemove", (event) => {
    if (tooltip.style.display !== "block") return;
    const box = root.getBoundingClientRect();
    tooltip.style.left = `${event.clientX - box.left + 12}px`;
    tooltip.style.top = `${event.clientY - box.top + 12}px`;
  });
  root.addEventListener("mouseout", (event) => {
    const target = tipOf(event.target);
    if (target && !(event.relatedTarget && target.contains(event.relatedTarget))) {
      tooltip.style.display = "none";
      tooltip.setAttribute("data-visible", "false");
    }
  });

  const bar = node("div", { class: "rv-bar" });
  const selection = node("div", { class: "rv-selection rv-note" });
  const status = node("div", { class: "rv-status rv-note" });
  const grid = node("div", { class: "rv-grid" });
  root.append(bar, selection, status, grid, tooltip);
  const views = {};
  for (const [name, title, wide] of [["heatmap", "Cube explorer", false], ["cell", "Per-sample view", false],
    ["curves", "Severity curves", false], ["scatter", "Three criteria", false], ["gallery", "Sample gallery", true],
    ["spectral", "Spectral (I-ASIDE)", false], ["fisher", "Fisher λmax", false]]) {
    const box = node("div", { class: `rv-view rv-view-${name}` + (wide ? " rv-wide" : "") });
    box.appendChild(node("h4", {}, title));
    const body = node("div", { class: "rv-body" });
    box.appendChild(body);
    grid.appendChild(box);
    views[name] = { box, body };
  }

  function problem(body, payload) {
    if (!payload) { body.appendChild(node("div", { class: "rv-note" }, "loading…")); return true; }
    if (payload.error) { body.appendChild(node("div", { class: "rv-error" }, payload.error)); return true; }
    if (payload.available === false) { body.appendChild(node("div", { class: "rv-note" }, payload.reason)); return true; }
    return false;
  }
  const filterModels = () => { const f = get("filter_models") || []; return f.length ? new Set(f) : null; };

  // controls
  let controls = [];
  function drawBar() {
    bar.replaceChildren();
    controls = [];
    const m = meta();
    const select = (field, label, values, current, disabled = false) => {
      controls.push([field, values]);
      const wrap = node("label", {}, label);
      const input = node("select", { class: `rv-control rv-control-${field}`, "data-field": field });
      values.forEach((value, index) => {
        const option = node("option", { value: String(index) }, value === null ? "(all)" : value);
        if (same(value, current)) option.selected = true;
        input.appendChild(option);
      });
      input.disabled = disabled;
      input.addEventListener("change", () => choose({ [field]: values[Number(input.value)] }));
      wrap.appendChild(input);
      bar.appendChild(wrap);
    };
    const info = (m.variables || {})[get("variable")] || {};
    select("variable", "variable", Object.keys(m.variables || {}), get("variable"));
    select("model", "model", m.models || [], get("model"));
    select("method", "method", m.methods || [], get("method"), !info.has_method);
    select("perturbation", "perturbation", m.perturbations || [], get("perturbation"));
    select("severity", "severity", m.severities || [], get("severity"));
    select("explanation", "scatter metric", m.explanation_variables || [], get("explanation"));
    select("scope", "curves/scatter over", ["all", "selected"], get("scope"));
    select("scale", "map scale", ["per-method", "shared", "per-map"], get("scale"));
    syncBar();
    status.textContent = get("status") || "";
  }
  // the selection moved: set the dropdowns and the selection line (no rebuild)
  function syncBar() {
    for (const [field, values] of controls) {
      const input = bar.querySelector(`select[data-field="${field}"]`);
      const current = JSON.stringify(get(field));
      const index = values.findIndex((value) => JSON.stringify(value) === current);
      if (input && index >= 0 && input.value !== String(index)) input.value = String(index);
    }
    const info = (meta().variables || {})[get("variable")] || {};
    const range = get("severity_range") || [];
    const s = [get("model"), info.has_method ? get("method") : null, get("perturbation"),
      `severity ${get("severity")}`, `sample ${get("sample")}`,
      range.length ? `scatter over severities ${range[0]}–${range[1]}` : null].filter((v) => v !== null);
    selection.textContent = "selection: " + s.join(" · ");
    const filter = get("filter_models") || [];
    if (filter.length) {
      const clear = node("button", { class: "rv-clear-filter" }, `showing ${filter.length} model(s) — clear`);
      clear.addEventListener("click", () => choose({ filter_models: [] }));
      selection.append(" ", clear);
    }
  }

  // selection marks: moving the selection restyles the marked cells instead of redrawing a view
  let heatmapCells = [], fisherCells = [];
  function mark(cells, chosen, width) {
    for (const [rect, ...key] of cells) {
      const on = chosen(...key);
      if (on === rect.classList.contains("rv-selected")) continue;
      rect.classList.toggle("rv-selected", on);
      if (on) { rect.setAttribute("stroke", "#e00"); rect.setAttribute("stroke-width", width); }
      else { rect.removeAttribute("stroke"); rect.removeAttribute("stroke-width"); }
    }
  }
  function markHeatmap() {
    const p0 = JSON.stringify(get("perturbation")), s0 = JSON.stringify(get("severity"));
    mark(heatmapCells, (p, s) => JSON.stringify(p) === p0 && JSON.stringify(s) === s0, 2.5);
  }
  function markFisher() {
    const m0 = JSON.stringify(get("model")), p0 = JSON.stringify(get("perturbation"));
    mark(fisherCells, (model, p) => JSON.stringify(model) === m0 && JSON.stringify(p) === p0, 2);
  }

  function drawHeatmap() {
    const { body } = views.heatmap;
    body.replaceChildren();
    heatmapCells = [];
    const payload = get("heatmap");
    if (problem(body, payload)) return;
    const m = meta();
    const rows = m.perturbations, cols = m.severities;
    const cw = 46, ch = Math.max(12, Math.min(20, 420 / rows.length)), left = 130, top = 18;
    const svg = svgNode("svg", { width: left + cw * cols.length + 70, height: top + ch * rows.length + 30 });
    const flat = payload.mean.flat();
    const [low, high] = extent(flat);
    const lower = payload.direction === "lower";
    const pattern = `rv-missing-${instance}`;
    const defs = svgNode("defs");
    const hatch = svgNode("pattern", { id: pattern, width: 6, height: 6, patternUnits: "userSpaceOnUse",
      patternTransform: "rotate(45)" });
    hatch.append(svgNode("rect", { width: 6, height: 6, fill: "#f4f4f4" }),
      svgNode("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#bbb", "stroke-width": 2 }));
    defs.appendChild(hatch);
    svg.appendChild(defs);
    cols.forEach((s, j) => svg.appendChild(svgNode("text", { x: left + j * cw + cw / 2, y: top - 5,
      "text-anchor": "middle" }, s)));
    rows.forEach((p, i) => {
      svg.appendChild(svgNode("text", { x: left - 4, y: top + i * ch + ch * 0.7, "text-anchor": "end" }, p));
      cols.forEach((s, j) => {
        const value = payload.mean[i][j];
        const missing = value === null;
        const t = (value - low) / (high - low);
        const rect = svgNode("rect", { x: left + j * cw, y: top + i * ch, width: cw - 1, height: ch - 1,
          class: "rv-cell" + (missing ? " rv-missing" : ""), "data-perturbation": p, "data-severity": s,
          fill: missing ? `url(#${pattern})` : css(colourAt(m.colour_maps.viridis, lower ? 1 - t : t)),
          style: "cursor:pointer" });
        heatmapCells.push([rect, p, s]);
        tip(rect, () => `${p}, severity ${s}\n${payload.variable}: ${missing ? "missing (not computed yet or undefined)"
          : fmt(value)}\n95% CI ${fmt(payload.low[i][j])} – ${fmt(payload.high[i][j])}\nn = ${payload.n[i][j]}`);
        rect.addEventListener("click", () => choose({ perturbation: p, severity: s }));
        svg.appendChild(rect);
      });
    });
    const legendX = left + cw * cols.length + 10;
    for (let k = 0; k < 20; k++) {
      const t = 1 - k / 19;
      svg.appendChild(svgNode("rect", { x: legendX, y: top + k * 8, width: 12, height: 8,
        fill: css(colourAt(m.colour_maps.viridis, lower ? 1 - t : t)) }));
    }
    svg.appendChild(svgNode("text", { x: legendX + 15, y: top + 8 }, fmt(high, 2)));
    svg.appendChild(svgNode("text", { x: legendX + 15, y: top + 160 }, fmt(low, 2)));
    svg.appendChild(svgNode("text", { x: legendX, y: top + 175 },
      payload.direction === "none" ? "" : `bright = better`));
    markHeatmap();
    body.appendChild(node("div", { class: "rv-note" }, `${payload.variable} — ${payload.model}` +
      (payload.method !== null ? ` — ${payload.method}` : "") + ": mean over samples; click a cell"));
    body.appendChild(svg);
  }

  function drawCell() {
    const { body, box } = views.cell;
    body.replaceChildren();
    const payload = get("cell");
    if (problem(body, payload)) return;
    box.setAttribute("data-key", JSON.stringify([payload.perturbation, payload.severity]));
    const pairs = payload.samples.map((sample, k) => [sample, payload.clean[k], payload.perturbed[k]]);
    const defined = pairs.filter(([, c, p]) => c !== null && p !== null);
    const mean = (values) => values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
    const title = node("div", { class: "rv-cell-title" }, `${payload.variable}: ${payload.model}` +
      (payload.method !== null ? `, ${payload.method}` : "") + ` — ${payload.perturbation}, severity ` +
      `${payload.severity}: mean ${fmt(mean(payload.perturbed.filter((v) => v !== null)))} over ` +
      `${payload.n_defined} defined of ${payload.samples.length} shown (${payload.n_total} in the cube)`);
    body.appendChild(title);
    const width = 420, height = 260, pad = 40;
    const [low, high] = extent(defined.flatMap(([, c, p]) => [c, p]));
    const x = scale([low, high], [pad, width - 10]), y = scale([low, high], [height - pad, 10]);
    const svg = svgNode("svg", { width, height, class: "rv-cell-plot" });
    svg.appendChild(svgNode("line", { x1: x(low), y1: y(low), x2: x(high), y2: y(high), stroke: "#999",
      "stroke-dasharray": "4 3" }));
    svg.appendChild(svgNode("text", { x: width / 2, y: height - 8, "text-anchor": "middle" }, "clean (severity 0)"));
    svg.appendChild(svgNode("text", { x: 10, y: height / 2, transform: `rotate(-90 10 ${height / 2})`,
      "text-anchor": "middle" }, `severity ${payload.severity}`));
    svg.appendChild(svgNode("text", { x: pad, y: height - pad + 14 }, fmt(low, 2)));
    svg.appendChild(svgNode("text", { x: width - 10, y: height - pad + 14, "text-anchor": "end" }, fmt(high, 2)));
    const spread = (high - low) * 0.012;
    // up to max_points circles: cloned from one template, one click listener on the plot
    const template = svgNode("circle", { r: 3, class: "rv-sample", fill: "#1f77b4", "fill-opacity": 0.6,
      style: "cursor:pointer" });
    const points = document.createDocumentFragment();
    const sampleOf = new WeakMap();
    samplePoints = new Map();
    for (const [sample, c, p] of defined) {
      const jitter = spread * (((sample * 7919) % 13) / 6 - 1);
      const point = template.cloneNode(false);
      point.setAttribute("cx", x(c + jitter));
      point.setAttribute("cy", y(p + jitter));
      point.setAttribute("data-sample", sample);
      tip(point, () => `sample ${sample}\nclean ${fmt(c)}\nperturbed ${fmt(p)}`);
      samplePoints.set(JSON.stringify(sample), point);
      sampleOf.set(point, sample);
      points.appendChild(point);
    }
    svg.appendChild(points);
    svg.addEventListener("click", (event) => {
      if (sampleOf.has(event.target)) choose({ sample: sampleOf.get(event.target) });
    });
    markCell();
    body.appendChild(svg);
  }
  let samplePoints = new Map(), markedSample = null;
  function markCell() {
    if (markedSample) { markedSample.setAttribute("r", 3); markedSample.setAttribute("fill", "#1f77b4"); }
    markedSample = samplePoints.get(JSON.stringify(get("sample"))) || null;
    if (markedSample) { markedSample.setAttribute("r", 5); markedSample.setAttribute("fill", "#e00"); }
  }

  function drawCurves() {
    const { body } = views.curves;
    body.replaceChildren();
    const payload = get("curves");
    if (problem(body, payload)) return;
    const filter = filterModels();
    const lines = payload.lines.filter((line) => !filter || filter.has(line.model));
    const visible = lines.filter((line) => !hidden.has(line.model));
    const width = 440, height = 240, pad = 40;
    const [low, high] = extent(visible.flatMap((l) => [...l.low, ...l.high, ...l.mean]));
    const sevs = payload.severities;
    const x = scale([sevs[0], sevs[sevs.length - 1]], [pad, width - 10]), y = scale([low, high], [height - 25, 10]);
    const svg = svgNode("svg", { width, height, class: "rv-curves-plot", style: "user-select:none" });
    // the brushed severities (they set the scatter's cells): a band behind the lines
    const range = get("severity_range") || [];
    const step = sevs.length > 1 ? (x(sevs[1]) - x(sevs[0])) / 2 : 10;
    if (range.length) {
      svg.appendChild(svgNode("rect", { class: "rv-severity-brush", "data-range": JSON.stringify(range),
        x: x(range[0]) - step, y: 8, width: x(range[1]) - x(range[0]) + 2 * step, height: height - 30,
        fill: "#888", "fill-opacity": 0.12 }));
    }
    sevs.forEach((s) => svg.appendChild(svgNode("text", { x: x(s), y: height - 10, "text-anchor": "middle" }, s)));
    svg.appendChild(svgNode("text", { x: 2, y: y(high) + 4 }, fmt(high, 2)));
    svg.appendChild(svgNode("text", { x: 2, y: y(low) }, fmt(low, 2)));
    const where = payload.perturbation === null ? "mean over perturbations" : payload.perturbation;
    payload.lines.forEach((line, index) => {
      if ((filter && !filter.has(line.model)) || hidden.has(line.model)) return;
      const colour = PALETTE[index % PALETTE.length];
      // consecutive defined severities: a missing value breaks the line and the band instead of bridging it
      const runs = (values) => sevs.reduce((out, s, k) => {
        if (values[k] === null || line.mean[k] === null) out.push([]);
        else out[out.length - 1].push([x(s), y(values[k])]);
        return out;
      }, [[]]).filter((run) => run.length);
      const highs = runs(line.high), lows = runs(line.low);
      highs.forEach((upper, r) => {
        if (upper.length > 1 && lows[r]) svg.appendChild(svgNode("polygon", { points: [...upper,
          ...lows[r].slice().reverse()].map((p) => p.join(",")).join(" "), fill: colour, "fill-opacity": 0.15,
          stroke: "none" }));
      });
      const meanRuns = runs(line.mean);
      const path = svgNode("g", { class: "rv-line", "data-model": line.model, style: "cursor:pointer" });
      for (const run of meanRuns) {
        path.appendChild(svgNode("polyline", { points: run.map((p) => p.join(",")).join(" "), fill: "none",
          stroke: colour, "stroke-width": same(line.model, get("model")) ? 3.5 : 2 }));
        if (run.length === 1) path.appendChild(svgNode("circle", { cx: run[0][0], cy: run[0][1], r: 2.5, fill: colour }));
      }
      tip(path, () => `${line.model} — ${where}\n` + sevs.map((s, k) => `severity ${s}: ${fmt(line.mean[k])} ` +
        `[${fmt(line.low[k])}, ${fmt(line.high[k])}] n=${line.n[k]}`).join("\n"));
      path.addEventListener("click", () => choose({ model: line.model }));
      svg.appendChild(path);
    });
    // brush: drag across severities (not on a line) to choose the scatter's severities; double-click clears
    let brushStart = null, brush = null;
    const at = (event) => event.clientX - svg.getBoundingClientRect().left;
    svg.addEventListener("mousedown", (event) => {
      if (event.target.closest && event.target.closest(".rv-line")) return;
      brushStart = at(event);
      brush = svgNode("rect", { class: "rv-brushing", x: brushStart, y: 8, width: 0, height: height - 30,
        fill: "#888", "fill-opacity": 0.2 });
      svg.appendChild(brush);
    });
    svg.addEventListener("mousemove", (event) => {
      if (brushStart === null) return;
      const now = at(event);
      brush.setAttribute("x", Math.min(brushStart, now));
      brush.setAttribute("width", Math.abs(now - brushStart));
    });
    const release = (event) => {
      if (brushStart === null) return;
      const [from, to] = [Math.min(brushStart, at(event)), Math.max(brushStart, at(event))];
      brushStart = null;
      brush.remove();
      const inside = sevs.filter((s) => x(s) >= from - step / 2 && x(s) <= to + step / 2);
      if (to - from >= 4 && inside.length) choose({ severity_range: [inside[0], inside[inside.length - 1]] });
    };
    svg.addEventListener("mouseup", release);
    svg.addEventListener("mouseleave", release);
    svg.addEventListener("dblclick", () => { if (range.length) choose({ severity_range: [] }); });
    body.appendChild(node("div", { class: "rv-note" }, `${payload.variable}` +
      (payload.method !== null ? ` (${payload.method})` : "") + ` vs severity, ${where}; bands: 95% CI; ` +
      "drag across severities to choose the scatter's, double-click for all"));
    body.appendChild(svg);
    const legend = node("div", { class: "rv-legend" });
    payload.lines.forEach((line, index) => {
      if (filter && !filter.has(line.model)) return;
      const item = node("span", { class: "rv-legend-item" + (hidden.has(line.model) ? " rv-hidden" : ""),
        "data-model": line.model });
      item.appendChild(node("span", { style: `color:${PALETTE[index % PALETTE.length]}` }, "■ "));
      item.appendChild(document.createTextNode(line.model));
      item.addEventListener("click", () => {
        if (hidden.has(line.model)) hidden.delete(line.model); else hidden.add(line.model);
        drawCurves();
      });
      legend.appendChild(item);
    });
    body.appendChild(legend);
  }

  let selectTool = "box";  // the scatter's drag tool (view-local, kept across redraws)
  let scatterZoom = null;  // {x: [low, high], y: [low, high]} while zoomed in
  function drawScatter() {
    const { body } = views.scatter;
    body.replaceChildren();
    const payload = get("scatter");
    if (problem(body, payload)) return;
    const m = meta();
    const width = 440, height = 280, pad = 42;
    const points = payload.points.filter((p) => p.accuracy !== null && p.explanation !== null);
    const [cl, chigh] = extent(points.map((p) => p.faithfulness));
    if (scatterZoom && scatterZoom.metric !== payload.explanation) scatterZoom = null;  // other units: whole plot
    const [xl, xh] = scatterZoom ? scatterZoom.x : extent(points.map((p) => p.accuracy));
    const [yl, yh] = scatterZoom ? scatterZoom.y : extent(points.map((p) => p.explanation));
    const xRange = [pad, width - 15], yRange = [height - 30, 12];
    const x = scale([xl, xh], xRange), y = scale([yl, yh], yRange);
    const svg = svgNode("svg", { width, height, class: "rv-scatter-plot", style: "user-select:none",
      "data-zoomed": scatterZoom ? "true" : "false" });
    svg.appendChild(svgNode("rect", { x: 0, y: 0, width, height, fill: "#fff", class: "rv-scatter-background" }));
    const chosen = payload.severities || [];
    svg.appendChild(svgNode("text", { x: width / 2, y: height - 6, "text-anchor": "middle", class: "rv-scatter-x" },
      `accuracy under perturbation (severities ${payload.severity_range ? chosen[0] + "–" + chosen[chosen.length - 1]
        : "≥ 1"})`));
    svg.appendChild(svgNode("text", { x: 10, y: height / 2, transform: `rotate(-90 10 ${height / 2})`,
      "text-anchor": "middle" }, payload.explanation));
    svg.appendChild(svgNode("text", { x: pad, y: height - 18 }, fmt(xl, 2)));
    svg.appendChild(svgNode("text", { x: width - 15, y: height - 18, "text-anchor": "end" }, fmt(xh, 2)));
    svg.appendChild(svgNode("text", { x: 14, y: height - 30 }, fmt(yl, 2)));
    svg.appendChild(svgNode("text", { x: 14, y: 20 }, fmt(yh, 2)));
    const filter = filterModels();
    const lowerBetter = (payload.directions || {})[payload.faithfulness] === "lower";
    const where = payload.perturbation === null ? "all perturbations" : payload.perturbation;
    const circles = [];
    const within = (v, [low, high]) => v >= Math.min(low, high) && v <= Math.max(low, high);
    for (const p of points) {
      if (scatterZoom && !(within(p.accuracy, scatterZoom.x) && within(p.explanation, scatterZoom.y))) continue;
      const t = p.faithfulness === null ? null : (p.faithfulness - cl) / (chigh - cl);
      const chosen = same(p.model, get("model")) && same(p.method, get("method"));
      const circle = svgNode("circle", { cx: x(p.accuracy), cy: y(p.explanation), r: chosen ? 7 : 5,
        class: "rv-point", "data-model": p.model, "data-method": p.method,
        fill: t === null ? "#1f77b4" : css(colourAt(m.colour_maps.plasma, lowerBetter ? 1 - t : t)),
        stroke: chosen ? "#e00" : "#333", "stroke-width": chosen ? 2.5 : 0.5,
        opacity: filter && !filter.has(p.model) ? 0.25 : 1, style: "cursor:pointer" });
      tip(circle, () => `model ${p.model}\nmethod ${p.method}\nperturbation: ${where}\naccuracy ${fmt(p.accuracy)}` +
        `\n${payload.explanation} ${fmt(p.explanation)}` +
        (payload.faithfulness ? `\n${payload.faithfulness} ${fmt(p.faithfulness)}` : ""));
      circle.addEventListener("mousedown", (event) => event.stopPropagation());
      circle.addEventListener("click", () => choose({ model: p.model, method: p.method }));
      svg.appendChild(circle);
      circles.push([p, circle]);
    }
    // drag on the background: a box, or a freehand lasso when that tool is chosen (shift-drag also lassos where
    // the page lets shift through); the models inside filter the other views
    let start = null, shape = null, lasso = null;
    const at = (event) => { const r = svg.getBoundingClientRect(); return [event.clientX - r.left, event.clientY - r.top]; };
    const drawn = { fill: "#1f77b4", "fill-opacity": 0.1, stroke: "#1f77b4" };
    svg.addEventListener("mousedown", (event) => {
      start = at(event);
      lasso = event.shiftKey || selectTool === "lasso" ? [start] : null;
      shape = lasso ? svgNode("polygon", { class: "rv-lasso", ...drawn }) : svgNode("rect", { class: "rv-brush", ...drawn });
      svg.appendChild(shape);
    });
    svg.addEventListener("mousemove", (event) => {
      if (!start) return;
      const [cx, cy] = at(event);
      if (lasso) {
        lasso.push([cx, cy]);
        shape.setAttribute("points", lasso.map(([a, b]) => `${a},${b}`).join(" "));
        return;
      }
      shape.setAttribute("x", Math.min(start[0], cx)); shape.setAttribute("y", Math.min(start[1], cy));
      shape.setAttribute("width", Math.abs(cx - start[0])); shape.setAttribute("height", Math.abs(cy - start[1]));
    });
    const finish = (event) => {
      if (!start) return;
      const [cx, cy] = at(event);
      const outline = lasso ? [...lasso, [cx, cy]] : [start, [start[0], cy], [cx, cy], [cx, start[1]]];
      start = null;
      const xs = outline.map(([a]) => a), ys = outline.map(([, b]) => b);
      if (Math.max(...xs) - Math.min(...xs) < 4 && Math.max(...ys) - Math.min(...ys) < 4) { shape.remove(); return; }
      if (selectTool === "zoom" && !lasso) {  // the box becomes the plot's new domain (pixels → values)
        const back = (v, [r0, r1], [d0, d1]) => d0 + (v - r0) / (r1 - r0) * (d1 - d0);
        scatterZoom = { metric: payload.explanation, x: [Math.min(...xs), Math.max(...xs)].map((v) => back(v, xRange, [xl, xh])),
          y: [Math.max(...ys), Math.min(...ys)].map((v) => back(v, yRange, [yl, yh])) };
        drawScatter();
        return;
      }
      const inside = circles.filter(([p]) => insidePolygon(x(p.accuracy), y(p.explanation), outline))
        .map(([p]) => p.model);
      choose({ filter_models: [...new Set(inside)] });
    };
    svg.addEventListener("mouseup", finish);
    svg.addEventListener("mouseleave", finish);
    svg.addEventListener("dblclick", () => { if (scatterZoom) { scatterZoom = null; drawScatter(); } });
    body.appendChild(node("div", { class: "rv-note" }, `one point per model × method, ${where}; colour: ` +
      (payload.faithfulness ? `${payload.faithfulness} (bright = better)` : "—") +
      "; drag to filter (box, lasso) or to zoom; double-click: whole plot"));
    const tools = node("div", { class: "rv-tools" }, "drag: ");
    for (const tool of ["box", "lasso", "zoom"]) {
      const button = node("button", { class: `rv-tool rv-tool-${tool}` + (tool === selectTool ? " rv-current" : ""),
        "data-tool": tool }, tool);
      button.addEventListener("click", () => {
        selectTool = tool;
        tools.querySelectorAll(".rv-tool").forEach((b) => b.classList.toggle("rv-current", b === button));
      });
      tools.appendChild(button);
    }
    if (scatterZoom) {
      const reset = node("button", { class: "rv-zoom-reset" }, "whole plot");
      reset.addEventListener("click", () => { scatterZoom = null; drawScatter(); });
      tools.append(" ", reset);
    }
    body.appendChild(tools);
    body.appendChild(svg);
  }

  function drawGallery() {
    const { body, box } = views.gallery;
    body.replaceChildren();
    const payload = get("gallery");
    const m = meta();
    const chooser = node("div", { class: "rv-examples" }, "stored examples: ");
    for (const example of m.examples || []) {
      const button = node("button", { class: "rv-example" + (same(example, get("sample")) ? " rv-current" : ""),
        "data-sample": example }, example);
      button.addEventListener("click", () => choose({ sample: example }));
      chooser.appendChild(button);
    }
    body.appendChild(chooser);
    if (problem(body, payload)) return;
    box.setAttribute("data-key", JSON.stringify([payload.model, payload.perturbation, payload.sample]));
    const names = m.class_names || null;
    body.appendChild(node("div", { class: "rv-note" }, `${payload.model} — ${payload.perturbation} — sample ` +
      `${payload.sample}` + (payload.label_name !== undefined ? `, label ${payload.label_name}` : "") +
      `; maps: red positive, blue negative, ${get("scale")} scale`));
    const table = node("table", { class: "rv-gallery" });
    const head = node("tr");
    head.appendChild(node("td"));
    payload.severities.forEach((s) => head.appendChild(node("td", {}, `severity ${s}`)));
    table.appendChild(head);
    const imageRow = node("tr");
    imageRow.appendChild(node("td", {}, "image"));
    payload.images.forEach((uri, k) => {
      const cell = node("td");
      cell.appendChild(node("img", { src: uri, class: "rv-image" }));
      if (payload.pred) {
        const cls = payload.pred_name ? payload.pred_name[k] : payload.pred[k];
        const ok = payload.correct ? payload.correct[k] === 1 : null;
        cell.appendChild(node("div", { class: "rv-pred", style: `color:${ok === null ? "#222" : ok ? "#080" : "#b00"}` },
          `${cls} (${fmt(payload.confidence ? payload.confidence[k] : null, 2)})`));
      }
      imageRow.appendChild(cell);
    });
    table.appendChild(imageRow);
    const mode = get("scale") || "per-method";
    const shared = Math.max(...payload.maps.flatMap((row) => row.severities.map((e) => e.scale)), 1e-12);
    for (const row of payload.maps) {
      const tr = node("tr", { class: "rv-map-row", "data-method": row.method });
      tr.appendChild(node("td", {}, row.method));
      const own = Math.max(...row.severities.map((e) => e.scale), 1e-12);
      row.severities.forEach((entry) => {
        const limit = mode === "shared" ? shared : mode === "per-map" ? entry.scale : own;
        const cell = node("td");
        const canvas = node("canvas", { class: "rv-map", "data-limit": limit });
        cell.appendChild(canvas);
        tr.appendChild(cell);
        paintMap(canvas, entry.png, entry.scale / limit, m.colour_maps.RdBu_r);
        tip(canvas, () => `${row.method}: max |a| = ${fmt(entry.scale)}; colour limit ±${fmt(limit)}`);
      });
      table.appendChild(tr);
    }
    body.appendChild(table);
  }
  function paintMap(canvas, uri, gain, table) {
    const image = new Image();
    image.onload = () => {
      canvas.width = image.width; canvas.height = image.height;
      const context = canvas.getContext("2d");
      context.drawImage(image, 0, 0);
      const pixels = context.getImageData(0, 0, image.width, image.height);
      const data = pixels.data;
      for (let k = 0; k < data.length; k += 4) {
        const value = (data[k] / 127.5 - 1) * gain;  // in units of the colour limit
        const rgb = colourAt(table, (value + 1) / 2);
        data[k] = rgb[0]; data[k + 1] = rgb[1]; data[k + 2] = rgb[2]; data[k + 3] = 255;
      }
      context.putImageData(pixels, 0, 0);
      canvas.setAttribute("data-painted", "true");
    };
    image.src = uri;
  }

  function drawSpectral() {
    const { body } = views.spectral;
    body.replaceChildren();
    const payload = get("spectral");
    if (problem(body, payload)) return;
    const filter = filterModels();
    const rows = payload.models.map((row, index) => [row, index]).filter(([row]) => !filter || filter.has(row.model));
    const width = 300, height = 200, pad = 30;
    const [low, high] = extent(rows.flatMap(([row]) => row.sid));
    const x = scale([payload.bands[0], payload.bands[payload.bands.length - 1]], [pad, width - 10]);
    const y = scale([Math.min(0, low), high], [height - 25, 10]);
    const svg = svgNode("svg", { width: width + 160, height });
    payload.bands.forEach((b) => svg.appendChild(svgNode("text", { x: x(b), y: height - 10, "text-anchor": "middle" }, b)));
    const bars = scale([0, Math.max(...rows.map(([row]) => row.srs || 0), 1e-9)], [0, 110]);
    rows.forEach(([row, index], k) => {
      const colour = PALETTE[index % PALETTE.length];
      const line = svgNode("polyline", { points: row.sid.map((v, b) => `${x(payload.bands[b])},${y(v)}`).join(" "),
        fill: "none", stroke: colour, "stroke-width": same(row.model, get("model")) ? 3.5 : 1.8,
        class: "rv-sid", "data-model": row.model, style: "cursor:pointer" });
      tip(line, () => `${row.model}\nSRS ${fmt(row.srs)}\nSID ${row.sid.map((v) => fmt(v, 2)).join(" ")}`);
      line.addEventListener("click", () => choose({ model: row.model }));
      svg.appendChild(line);
      const bar = svgNode("rect", { x: width + 10, y: 10 + k * 14, width: bars(row.srs || 0), height: 11, fill: colour,
        class: "rv-srs", "data-model": row.model });
      tip(bar, () => `${row.model}: SRS ${fmt(row.srs)}`);
      svg.appendChild(bar);
      svg.appendChild(svgNode("text", { x: width + 14 + bars(row.srs || 0), y: 19 + k * 14 }, row.model));
    });
    body.appendChild(node("div", { class: "rv-note" }, "SID per frequency band (0 = lowest); bars: SRS"));
    body.appendChild(svg);
  }

  function drawFisher() {
    const { body } = views.fisher;
    body.replaceChildren();
    fisherCells = [];
    const payload = get("fisher");
    if (problem(body, payload)) return;
    const m = meta();
    const filter = filterModels();
    const median = payload.quantiles.indexOf(50);
    const models = m.models.map((model, i) => [model, i]).filter(([model]) => !filter || filter.has(model));
    const cw = Math.max(8, Math.min(24, 360 / m.perturbations.length)), ch = 16, left = 150, top = 8;
    const svg = svgNode("svg", { width: left + cw * m.perturbations.length + 10, height: top + ch * models.length + 10 });
    const [low, high] = extent(models.flatMap(([, i]) => payload.values[median][i]));
    models.forEach(([model, i], r) => {
      svg.appendChild(svgNode("text", { x: left - 4, y: top + r * ch + 11, "text-anchor": "end" }, model));
      m.perturbations.forEach((p, j) => {
        const value = payload.values[median][i][j];
        const t = value === null ? null : (value - low) / (high - low);
        const rect = svgNode("rect", { x: left + j * cw, y: top + r * ch, width: cw - 1, height: ch - 1,
          class: "rv-fisher-cell" + (value === null ? " rv-missing" : ""), "data-model": model, "data-perturbation": p,
          fill: t === null ? "#eee" : css(colourAt(m.colour_maps.plasma, 1 - t)), style: "cursor:pointer" });
        fisherCells.push([rect, model, p]);
        tip(rect, () => `${model}, ${p}, severity ${payload.severity}\nλmax quantiles ` + payload.quantiles.map(
          (q, k) => `${q}%: ${fmt(payload.values[k][i][j])}`).join(", ") + `\nn = ${payload.n[i][j]}`);
        rect.addEventListener("click", () => choose({ model, perturbation: p }));
        svg.appendChild(rect);
      });
    });
    body.appendChild(node("div", { class: "rv-note" }, `median λmax over samples at severity ${payload.severity} ` +
      "(rows: models, columns: perturbations; bright = lower = more robust)"));
    body.appendChild(svg);
    markFisher();
  }

  const drawers = { bar: drawBar, heatmap: drawHeatmap, cell: drawCell, curves: drawCurves, scatter: drawScatter,
    gallery: drawGallery, spectral: drawSpectral, fisher: drawFisher, syncBar, markHeatmap, markFisher, markCell,
    status: () => { status.textContent = get("status") || ""; } };
  const dependents = {
    meta: Object.keys(drawers), heatmap: ["heatmap"], cell: ["cell"], curves: ["curves"], scatter: ["scatter"],
    gallery: ["gallery"], spectral: ["spectral"], fisher: ["fisher"],
    // a moved selection restyles marks in place (syncBar, mark*): a click redraws nothing it does not change
    variable: ["bar"], model: ["syncBar", "curves", "scatter", "spectral", "markFisher"],
    method: ["syncBar", "scatter"], perturbation: ["syncBar", "markHeatmap", "markFisher"],
    severity: ["syncBar", "markHeatmap"], sample: ["syncBar", "markCell", "gallery"], explanation: ["syncBar"],
    scope: ["syncBar"], scale: ["syncBar", "gallery"], status: ["status"],
    filter_models: ["syncBar", "curves", "scatter", "spectral", "fisher"], severity_range: ["syncBar", "curves"],
  };
  const dirty = new Set();
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const names = [...dirty];
    dirty.clear();
    for (const name of names) {
      try { drawers[name](); } catch (error) {
        const target = views[name] ? views[name].body : bar;
        target.appendChild(node("div", { class: "rv-error" }, `could not draw: ${error}`));
      }
    }
  };
  const handlers = [];
  for (const [trait, names] of Object.entries(dependents)) {
    const handler = () => {
      names.forEach((name) => dirty.add(name));
      if (!scheduled) { scheduled = true; queueMicrotask(flush); }
    };
    model.on(`change:${trait}`, handler);
    handlers.push([trait, handler]);
  }
  Object.keys(drawers).forEach((name) => dirty.add(name));
  flush();
  return () => handlers.forEach(([trait, handler]) => model.off(`change:${trait}`, handler));
}

export default { render };
