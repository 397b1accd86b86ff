// The firstorder playground. It draws what the server's firstorder.run returns; it never
// computes an update rule itself. All text from the server or the URL goes in by textContent.
"use strict";

// --- the optimizers the page offers: everything about them comes from /api/landscapes ------
// (firstorder.serve.catalog, built from firstorder.rules): a rule added there appears here.
// The page keeps only which optimizers it shows at first.
const START_ON = ["gd", "momentum", "rmsprop", "adam"];
const OPTIMIZER = {};  // name -> the catalog's entry: label, formula, color, hyper, start, ...
const SPEC = {};       // hyperparameter name -> symbol, meaning, switch, scale, span
const COLORS = {}, LABELS = {}, EQUATIONS = {}, SYMBOL = {}, SCALES = {};
// slider position v <-> value, by the spec's scale: "log" 10^v (α, ε), "decay" 1 − 10^(−v)
// (ρ: 0, 0.9, 0.99, ...), "linear" v; significant digits shown for each
const SCALE_KINDS = {
  log: { digits: 3, to: (v) => 10 ** v, from: (x) => Math.log10(x) },
  decay: { digits: 4, to: (v) => 1 - 10 ** -v, from: (x) => -Math.log10(1 - x) },
  linear: { digits: 3, to: (v) => v, from: (x) => x },
};
function readCatalog() {
  for (const o of meta.optimizers) {
    OPTIMIZER[o.name] = o;
    COLORS[o.name] = o.color;
    LABELS[o.name] = o.label;
    EQUATIONS[o.name] = o.formula;
    for (const h of o.hyperparameters) {
      SPEC[h.name] = h;
      if (h.switch) continue;
      SYMBOL[h.name] = h.symbol;
      const kind = SCALE_KINDS[h.scale] || SCALE_KINDS.linear;
      const [min, max] = h.span;
      SCALES[h.name] = {
        min, max, step: (max - min) / 600,
        to: (v) => sig(kind.to(v), kind.digits), from: kind.from,
      };
    }
  }
}
const TOL_F = 1e-10;

function power(e) {  // 10 to the integer e, as a student writes it: 10⁻³
  const sup = { "-": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };
  return e === 0 ? "1" : e === 1 ? "10" : "10" + [...String(e)].map((c) => sup[c]).join("");
}
function sig(x, digits) { return Number(x.toPrecision(digits)); }
function fmt(x) {
  if (x === null || x === undefined) return "—";
  if (x === 0) return "0";
  const a = Math.abs(x);
  return a >= 1e4 || a < 1e-3 ? sig(x, 3).toExponential() : String(sig(x, 3));
}
const $ = (id) => document.getElementById(id);
function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// --- state: everything a link has to carry -----------------------------------------------
const state = {
  landscape: "rosenbrock",
  steps: 500,
  opts: {},     // name -> {on, hyper: {lr, rho, ...}}
  starts: [],   // [[x, y], ...]
  k: null,      // scrubbed step (null: the last)
};
let meta = null;          // /api/landscapes
let land = null;          // /api/landscape/NAME
let result = null;        // /api/run
let background = null;    // offscreen canvas: bands, contours, critical points

function initialOpts() {
  for (const o of meta.optimizers) {
    const hyper = {};
    // the catalog's start: the rule's defaults, α one that behaves on Rosenbrock
    for (const [k, d] of Object.entries(o.start)) hyper[k] = d;
    if (state.opts[o.name]) {  // in place: the controls hold these objects
      Object.assign(state.opts[o.name].hyper, hyper);
      state.opts[o.name].on = START_ON.includes(o.name);
    } else state.opts[o.name] = { on: START_ON.includes(o.name), hyper };
  }
}

// The query string: ?landscape=NAME&steps=T&opt=adam,lr=0.05,rho1=0.9&start=x,y&start=...
function readURL() { return readState(new URLSearchParams(location.search)); }
function readState(q) {
  const names = meta.landscapes.map((l) => l.name);
  if (names.includes(q.get("landscape"))) state.landscape = q.get("landscape");
  const T = Number(q.get("steps"));
  if (Number.isInteger(T) && T >= 1 && T <= meta.limits.steps) state.steps = T;
  const opts = q.getAll("opt");
  if (opts.length) {
    for (const o of Object.values(state.opts)) o.on = false;
    for (const text of opts) {
      const [name, ...pairs] = text.split(",");
      const o = state.opts[name];
      if (!o) continue;
      o.on = true;
      for (const p of pairs) {
        const [k, v] = p.split("=");
        if (!(k in o.hyper)) continue;
        if (SPEC[k] && SPEC[k].switch) o.hyper[k] = v === "1" || v === "true";
        else if (v !== "" && Number.isFinite(Number(v))) o.hyper[k] = Number(v);
      }
    }
  }
  const starts = q.getAll("start").map((s) => s.split(",").map(Number))
    .filter((p) => p.length === 2 && p.every(Number.isFinite));
  return starts.slice(0, meta.limits.starts);
}

function writeURL() {
  const q = new URLSearchParams();
  q.set("landscape", state.landscape);
  q.set("steps", String(state.steps));
  for (const [name, o] of Object.entries(state.opts)) {
    if (!o.on) continue;
    const pairs = Object.entries(o.hyper)
      .map(([k, v]) => `${k}=${SPEC[k] && SPEC[k].switch ? (v ? 1 : 0) : v}`);
    q.append("opt", [name, ...pairs].join(","));
  }
  for (const p of state.starts) q.append("start", p.join(","));
  history.replaceState(null, "", "?" + q.toString().replaceAll("%2C", ",").replaceAll("%3D", "="));
}

// --- controls ----------------------------------------------------------------------------
function buildControls() {
  const select = $("landscape");
  for (const l of meta.landscapes) {
    select.append(el("option", { value: l.name }, `${l.name} (${l.obstacles.join(", ") || "—"})`));
  }
  select.value = state.landscape;
  select.addEventListener("change", async () => {
    state.landscape = select.value;
    await loadLandscape(true);
  });

  const box = $("optimizers");
  for (const o of meta.optimizers) {
    const ref = controls[o.name] = { inputs: {} };
    const s = state.opts[o.name];
    const div = el("div", { class: "opt" + (s.on ? " on" : ""), "data-name": o.name });
    const title = el("label", { class: "title" });
    const cb = el("input", { type: "checkbox", id: `${o.name}-on` });
    cb.checked = s.on;
    ref.cb = cb; ref.div = div;
    cb.addEventListener("change", () => {
      s.on = cb.checked;
      div.classList.toggle("on", s.on);
      changed();
    });
    const sw = el("span", { class: "swatch" });
    sw.style.background = COLORS[o.name] || "#333";
    title.append(cb, sw, el("b", {}, LABELS[o.name] || o.name), el("span", { class: "eq" }, EQUATIONS[o.name] || ""));
    const params = el("div", { class: "params" });
    for (const k of Object.keys(o.hyper)) {
      if (SPEC[k] && SPEC[k].switch) {
        const lab = el("label", { class: "check" });
        const c = el("input", { type: "checkbox", id: `${o.name}-${k}` });
        c.checked = !!s.hyper[k];
        ref.inputs[k] = { check: c };
        c.addEventListener("change", () => { s.hyper[k] = c.checked; changed(); });
        lab.append(c, document.createTextNode(` ${SPEC[k].meaning} (${SPEC[k].symbol})`));
        params.append(lab);
        continue;
      }
      const sc = SCALES[k];
      if (!sc) continue;
      const lab = el("label", { class: "slider" });
      const input = el("input", { type: "range", id: `${o.name}-${k}`, min: sc.min, max: sc.max, step: sc.step });
      const out = el("output", {}, fmt(s.hyper[k]));
      input.value = String(clamp(sc.from(s.hyper[k]), sc.min, sc.max));
      ref.inputs[k] = { input, out, sc };
      input.addEventListener("input", () => {
        s.hyper[k] = sc.to(Number(input.value));
        out.textContent = fmt(s.hyper[k]);
        const last = moved && moved.input === input ? moved.position : Number(input.value);
        // the direction of the drag: most of the positions run ahead lie that way
        moved = { name: o.name, key: k, input, sc, position: Number(input.value), up: Number(input.value) >= last };
        changed(false);
      });
      lab.append(el("span", { class: "name" }, SYMBOL[k] || k), input, out);
      params.append(lab);
    }
    div.append(title, params);
    box.append(div);
  }

  const steps = $("steps");
  steps.value = String(state.steps);
  $("steps-out").textContent = String(state.steps);
  steps.addEventListener("input", () => {
    state.steps = Number(steps.value);
    $("steps-out").textContent = String(state.steps);
    changed();
  });
  $("scrub").addEventListener("input", () => {
    state.k = Number($("scrub").value);
    $("scrub-out").textContent = String(state.k);
    drawAll();
  });
  $("starts-default").addEventListener("click", () => {
    state.starts = land.starts.map((p) => p.slice());
    changed();
  });
  $("starts-clear").addEventListener("click", () => { state.starts = []; changed(); });
  $("copy-link").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(location.href); $("timing").textContent = "link copied"; }
    catch { $("timing").textContent = "copy the address bar: it holds the state"; }
  });
  const map = $("map");
  map.addEventListener("click", (ev) => clickMap(ev, ev.shiftKey));
  map.addEventListener("contextmenu", (ev) => { ev.preventDefault(); clickMap(ev, true); });
}

const controls = {};  // name -> {cb, div, inputs: {k: {input, out, sc} or {check}}}
// set every control from the state (after a "try this" prompt changed it)
function syncControls() {
  for (const [name, ref] of Object.entries(controls)) {
    const s = state.opts[name];
    ref.cb.checked = s.on;
    ref.div.classList.toggle("on", s.on);
    for (const [k, c] of Object.entries(ref.inputs)) {
      if (c.check) { c.check.checked = !!s.hyper[k]; continue; }
      c.input.value = String(clamp(c.sc.from(s.hyper[k]), c.sc.min, c.sc.max));
      c.out.textContent = fmt(s.hyper[k]);
    }
  }
  $("steps").value = String(state.steps);
  $("steps-out").textContent = String(state.steps);
}

// "try this": a sentence and the state it sets, per landscape (from /api/landscapes)
function showPrompts() {
  const info = meta.landscapes.find((l) => l.name === state.landscape);
  const list = $("try");
  list.replaceChildren();
  for (const p of (info && info.try) || []) {
    const b = el("button", { type: "button", class: "try" }, p.text);
    b.addEventListener("click", () => {
      initialOpts();  // what the prompt leaves out takes the page's defaults, as it was measured
      readState(new URLSearchParams(`landscape=${state.landscape}&${p.query}`));
      state.starts = land.starts.map((q) => q.slice());
      state.k = null;
      syncControls();
      changed();
    });
    const li = el("li");
    li.append(b);
    list.append(li);
  }
  $("try-box").hidden = !list.children.length;
}

function clamp(x, lo, hi) { return Math.min(hi, Math.max(lo, Number.isFinite(x) ? x : lo)); }

function clickMap(ev, remove) {
  if (!land) return;
  const r = ev.target.getBoundingClientRect();
  const px = ((ev.clientX - r.left) / r.width) * MAP.w;
  const py = ((ev.clientY - r.top) / r.height) * MAP.h;
  const [x, y] = toWorld(px, py);
  if (remove) {
    if (!state.starts.length) return;
    let best = 0;
    state.starts.forEach((p, i) => {
      if (dist2(p, [x, y]) < dist2(state.starts[best], [x, y])) best = i;
    });
    state.starts.splice(best, 1);
  } else {
    if (state.starts.length >= meta.limits.starts) {
      showError(`At most ${meta.limits.starts} start points; shift+click removes one.`);
      return;
    }
    const [[x0, x1], [y0, y1]] = land.window;
    const dx = (x1 - x0) / 1000, dy = (y1 - y0) / 1000;
    state.starts.push([sig(Math.round(x / dx) * dx, 6), sig(Math.round(y / dy) * dy, 6)]);
  }
  changed();
}
function dist2(a, b) { return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2; }

// --- talking to the server ---------------------------------------------------------------
async function getJSON(url, options) {
  const res = await fetch(url, options);
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) throw new Error(data && data.error ? data.error : `${url}: HTTP ${res.status}`);
  return data;
}

async function loadLandscape(resetStarts) {
  land = await getJSON(`/api/landscape/${encodeURIComponent(state.landscape)}?n=140`);
  if (resetStarts) state.starts = land.starts.map((p) => p.slice());
  $("landscape-desc").textContent = land.description;
  showPrompts();
  const chips = $("landscape-obstacles");
  chips.replaceChildren(...land.obstacles.map((o) => el("span", {}, o)));
  sizeMap();
  background = null;
  result = null;
  shown = null;
  changed();
}

let inflight = false, pending = false, changedAt = 0;
function changed(redraw = true) {
  writeURL();
  changedAt = changedAt || performance.now();
  // The request goes out first; the page redraws what it has (a new start point) while the
  // server works, except after a slider move, whose picture only the answer changes. No
  // debounce: the events of a slider drag that arrive while a run is in flight collapse into
  // one request for the newest state (sendRun).
  sendRun();
  if (redraw) drawAll();
}

// The runs this page already has, by everything that determines them: a slider move asks the
// server for the one optimizer that changed, not for all of them again.
const runs = new Map();
const RUNS_KEPT = 64;
let shown = null;  // the keys of the runs on the screen
function runKey(common, opt) {
  return JSON.stringify([common.landscape, common.starts, common.steps, common.tol_f, opt]);
}

// The slider moved last, and the positions a drag reaches next: the server runs them beside
// the value asked for (one grid axis of the batched engine costs about what one value costs)
// and keeps them, so that those moves find their answer ready. Eight lie in the direction of
// the drag, two behind.
let moved = null;
const PREFETCH = 10;
function neighbours(common, opt) {
  if (!moved || moved.name !== opt.name) return [];
  const { input, sc, key, up } = moved;
  const v = Number(input.value), step = Number(input.step), way = up ? 1 : -1;
  const digits = (String(input.step).split(".")[1] || "").length;
  const positions = [1, 2, 3, 4, 5, 6, 7, 8, -1, -2].map((i) => v + way * i * step);
  const out = [];
  for (const pos of positions) {
    if (pos < sc.min - step / 2 || pos > sc.max + step / 2) continue;
    const value = sc.to(Number(pos.toFixed(digits)));  // as the slider itself would give it
    const have = runs.has(runKey(common, { ...opt, [key]: value }));
    if (value !== opt[key] && !out.includes(value) && !have) out.push(value);
  }
  return out.length ? [key, out.slice(0, PREFETCH)] : [];
}

// One request at a time; while one runs, the newest state waits and goes next (the sliders
// may move faster than the server answers, and old states are never worth computing).
async function sendRun() {
  if (inflight) { pending = true; return; }
  const on = Object.entries(state.opts).filter(([, o]) => o.on);
  if (!on.length || !state.starts.length || !land) {
    result = null;
    shown = null;
    showError(!on.length ? "Choose an optimizer." : !state.starts.length ? "Click the map to add a start point." : "");
    drawAll();
    finish();
    return;
  }
  const common = {
    landscape: state.landscape, starts: state.starts.map((p) => p.slice()), steps: state.steps, tol_f: TOL_F,
  };
  const optimizers = on.map(([name, o]) => ({ name, ...o.hyper }));
  const keys = optimizers.map((o) => runKey(common, o));
  if (keys.join("\n") === shown) { changedAt = 0; finish(); return; }  // drawn already
  const missing = optimizers.filter((o, i) => !runs.has(keys[i]));
  inflight = true;
  document.body.dataset.status = "busy";
  // a sign of life when the answer takes longer than a glance (kernels still compiling)
  clearTimeout(busyTimer);
  busyTimer = setTimeout(() => { $("busy").hidden = false; }, 150);
  const t0 = changedAt || performance.now();
  changedAt = 0;
  try {
    let data = { seconds: 0, observation: document.body.dataset.observation };
    if (missing.length) {
      document.body.dataset.sendMs = String(Math.round(performance.now() - t0));
      data = await getJSON("/api/run", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          ...common,
          optimizers: missing.map((o) => {
            const [key, values] = neighbours(common, o);
            return key ? { ...o, prefetch: { [key]: values } } : o;
          }),
        }),
      });
      missing.forEach((o, i) => runs.set(runKey(common, o), data.runs[i]));
      // whether this answer came from compiled kernels only (the latency benchmark waits for it)
      document.body.dataset.kernels = data.observation === "compiled" &&
        data.runs.every((r) => r.rule === "compiled") ? "compiled" : "eager";
      for (const old of runs.keys()) { if (runs.size <= RUNS_KEPT) break; runs.delete(old); }
    }
    if (common.landscape === state.landscape) {
      const tDraw = performance.now();
      const these = keys.map((k) => runs.get(k));
      result = {
        landscape: common.landscape, starts: common.starts, f_star: land.f_star, runs: these,
        steps: Math.max(...these.map((r) => r.steps)), seconds: data.seconds,
      };
      shown = keys.join("\n");
      showError("");
      drawAll();
      document.body.dataset.drawMs = String(Math.round(performance.now() - tDraw));
      document.body.dataset.answerMs = String(Math.round(tDraw - t0));
      document.body.dataset.runs = String(Number(document.body.dataset.runs || 0) + 1);
      const ms = performance.now() - t0;
      $("timing").textContent = `updated ${Math.round(ms)} ms after the change (` + (missing.length
        ? `firstorder.run took ${Math.round(1000 * data.seconds)} ms for ` +
          (missing.length === these.length ? `all ${these.length} optimizers)` : `${missing.length} of ${these.length} optimizers, the page had the others)`)
        : "the page had every run)");
      document.body.dataset.pageMs = String(Math.round(ms));
      document.body.dataset.serverMs = String(Math.round(1000 * data.seconds));
      document.body.dataset.observation = data.observation;
    }
  } catch (err) {
    showError(err.message);
  } finally {
    inflight = false;
    if (pending) { pending = false; sendRun(); } else finish();
  }
}
let busyTimer = 0;
function finish() {
  document.body.dataset.status = "ready";
  clearTimeout(busyTimer);
  $("busy").hidden = true;
}
function showError(text) { $("error").textContent = text; }

// --- the map ----------------------------------------------------------------------------
const MAP = { w: 640, h: 560, pad: 0, scale: 1 };
function sizeMap() {
  const [[x0, x1], [y0, y1]] = land.window;
  const ratio = clamp((y1 - y0) / (x1 - x0), 0.5, 1.05);
  MAP.w = 640;
  MAP.h = Math.round(640 * ratio);
  setupCanvas($("map"), MAP.w, MAP.h);
}
function setupCanvas(c, w, h) {
  const dpr = window.devicePixelRatio || 1;
  c.width = Math.round(w * dpr);
  c.height = Math.round(h * dpr);
  c.style.aspectRatio = `${w} / ${h}`;
  const ctx = c.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}
function toPx(x, y) {
  const [[x0, x1], [y0, y1]] = land.window;
  return [((x - x0) / (x1 - x0)) * MAP.w, MAP.h - ((y - y0) / (y1 - y0)) * MAP.h];
}
function toWorld(px, py) {
  const [[x0, x1], [y0, y1]] = land.window;
  return [x0 + (px / MAP.w) * (x1 - x0), y0 + ((MAP.h - py) / MAP.h) * (y1 - y0)];
}

// light bands (low) to slate (high): quiet enough that the paths stand out
function bandColor(t) {
  const a = [255, 251, 232], b = [214, 226, 238], c = [150, 168, 198];
  const [p, q, s] = t < 0.5 ? [a, b, t / 0.5] : [b, c, (t - 0.5) / 0.5];
  return p.map((v, i) => Math.round(v + (q[i] - v) * s));
}

function drawBackground() {
  const dpr = window.devicePixelRatio || 1;
  const bg = document.createElement("canvas");
  bg.width = Math.round(MAP.w * dpr);
  bg.height = Math.round(MAP.h * dpr);
  const ctx = bg.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  // shaded by rank (each shade covers the same area), one pixel per grid point, smoothed
  const n = land.grid.n, F = land.grid.f;
  const sorted = F.flat().filter((v) => v !== null).sort((a, b) => a - b);
  const rank = (v) => {
    let lo = 0, hi = sorted.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (sorted[mid] < v) lo = mid + 1; else hi = mid; }
    return lo / Math.max(1, sorted.length - 1);
  };
  const img = document.createElement("canvas");
  img.width = n; img.height = n;
  const ictx = img.getContext("2d");
  const data = ictx.createImageData(n, n);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) {
      const v = F[j][i];
      const [r, g, b] = bandColor(v === null ? 1 : rank(v));
      const o = 4 * ((n - 1 - j) * n + i);
      data.data[o] = r; data.data[o + 1] = g; data.data[o + 2] = b; data.data[o + 3] = 255;
    }
  }
  ictx.putImageData(data, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(img, 0, 0, MAP.w, MAP.h);
  // contour lines
  ctx.lineWidth = 0.8;
  ctx.strokeStyle = "rgba(40, 55, 80, 0.35)";
  for (const c of land.contours) {
    for (const line of c.lines) {
      ctx.beginPath();
      line.forEach(([x, y], i) => { const [px, py] = toPx(x, y); i ? ctx.lineTo(px, py) : ctx.moveTo(px, py); });
      ctx.stroke();
    }
  }
  // axes ticks
  ctx.fillStyle = "rgba(30,35,48,0.9)";
  ctx.font = "14px system-ui, sans-serif";
  const [[x0, x1], [y0, y1]] = land.window;
  for (const t of ticks(x0, x1, 6)) {
    const [px] = toPx(t, y0);
    if (px < 28 || px > MAP.w - 60) continue;  // the corners hold the axes' names
    ctx.fillRect(px, MAP.h - 5, 1, 5);
    ctx.fillText(fmt(t), px + 3, MAP.h - 8);
  }
  for (const t of ticks(y0, y1, 6)) {
    const [, py] = toPx(x0, t);
    if (py < 28 || py > MAP.h - 28) continue;
    ctx.fillRect(0, py, 5, 1);
    ctx.fillText(fmt(t), 8, py - 3);
  }
  ctx.font = "italic 15px system-ui, sans-serif";
  ctx.fillText("θ₁ →", MAP.w - 46, MAP.h - 24);
  ctx.fillText("θ₂ ↑", 8, 18);
  background = bg;
}

function marker(ctx, x, kind) {
  const [px, py] = toPx(x[0], x[1]);
  ctx.save();
  ctx.lineWidth = 1.2;
  if (kind === "min") {
    star(ctx, px, py, 8, 3.5);
    ctx.fillStyle = "#ffc400"; ctx.strokeStyle = "#1d2330"; ctx.fill(); ctx.stroke();
  } else if (kind === "saddle") {
    ctx.strokeStyle = "#1d2330"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(px - 5, py - 5); ctx.lineTo(px + 5, py + 5);
    ctx.moveTo(px + 5, py - 5); ctx.lineTo(px - 5, py + 5); ctx.stroke();
  } else {
    ctx.beginPath(); ctx.moveTo(px, py - 6); ctx.lineTo(px + 5, py + 4); ctx.lineTo(px - 5, py + 4);
    ctx.closePath(); ctx.fillStyle = "#1d2330"; ctx.fill();
  }
  ctx.restore();
}
function star(ctx, x, y, R, r) {
  ctx.beginPath();
  for (let i = 0; i < 10; i++) {
    const a = -Math.PI / 2 + (i * Math.PI) / 5, q = i % 2 ? r : R;
    ctx.lineTo(x + q * Math.cos(a), y + q * Math.sin(a));
  }
  ctx.closePath();
}

function drawMap() {
  const c = $("map");
  const ctx = c.getContext("2d");
  const dpr = window.devicePixelRatio || 1;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, c.width, c.height);
  if (!land) return;
  if (!background) drawBackground();
  ctx.drawImage(background, 0, 0);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  let total = 0;
  const k = currentK();
  if (result) {
    for (const run of result.runs) {
      const color = COLORS[run.name] || "#333";
      run.x.forEach((path, b) => {
        const escaped = run.escaped_at ? run.escaped_at[b] : null;
        total += drawPath(ctx, path, color, run.diverged_at[b], escaped, k);
      });
    }
  }
  // critical points and starts on top, the starts numbered as in the table
  for (const p of land.maxima) marker(ctx, p.x, "max");
  for (const p of land.saddles) marker(ctx, p.x, "saddle");
  for (const p of land.minima) marker(ctx, p.x, "min");
  ctx.font = "bold 14px system-ui, sans-serif";
  state.starts.forEach((p, i) => {
    const [px, py] = toPx(p[0], p[1]);
    ctx.beginPath(); ctx.arc(px, py, 5, 0, 2 * Math.PI);
    ctx.fillStyle = "#fff"; ctx.fill(); ctx.lineWidth = 1.5; ctx.strokeStyle = "#1d2330"; ctx.stroke();
    ctx.fillStyle = "#1d2330";
    ctx.fillText(String(i + 1), px + 7, py - 6);
  });
  c.dataset.pathLength = total.toFixed(6);
  c.dataset.paths = String(result ? result.runs.reduce((s, r) => s + r.x.length, 0) : 0);
}

// the part of segment p→q inside the map (Liang–Barsky), or null: a Newton step may jump
// thousands of map widths, and a canvas handed such coordinates draws nothing sensible
function clipSegment(p, q) {
  const m = 2;  // px beyond the edge, so that a path along an edge stays visible
  let t0 = 0, t1 = 1;
  const d = [q[0] - p[0], q[1] - p[1]];
  const edges = [[-d[0], p[0] + m], [d[0], MAP.w + m - p[0]], [-d[1], p[1] + m], [d[1], MAP.h + m - p[1]]];
  for (const [a, b] of edges) {
    if (a === 0) { if (b < 0) return null; continue; }
    const t = b / a;
    if (a < 0) { if (t > t1) return null; t0 = Math.max(t0, t); }
    else { if (t < t0) return null; t1 = Math.min(t1, t); }
  }
  return [[p[0] + t0 * d[0], p[1] + t0 * d[1]], [p[0] + t1 * d[0], p[1] + t1 * d[1]], t1 < 1];
}
function inside(q) { return q[0] >= 0 && q[0] <= MAP.w && q[1] >= 0 && q[1] <= MAP.h; }

function drawPath(ctx, path, color, divergedAt, escapedAt, k) {
  // the iterates θ_0 .. θ_k that are finite, each segment clipped to the map; a diverged run
  // ends in ✕, an escaped one in an arrowhead where it left the map
  let length = 0, last = null, lastPx = null, exit = null;
  ctx.save();
  ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 1.8; ctx.globalAlpha = 0.95;
  ctx.beginPath();
  const end = Math.min(path.length - 1, k);
  const pts = [];
  for (let t = 0; t <= end; t++) {
    const p = path[t];
    if (!p || p[0] === null || p[1] === null) break;
    const q = toPx(p[0], p[1]);
    if (!Number.isFinite(q[0]) || !Number.isFinite(q[1])) break;
    if (last) {
      length += Math.hypot(p[0] - last[0], p[1] - last[1]);
      const seg = clipSegment(lastPx, q);
      if (seg) {
        ctx.moveTo(seg[0][0], seg[0][1]); ctx.lineTo(seg[1][0], seg[1][1]);
        exit = seg[2] ? [seg[1], Math.atan2(q[1] - lastPx[1], q[0] - lastPx[0])] : null;
      }
    }
    last = p; lastPx = q;
    if (inside(q)) pts.push(q);
  }
  ctx.stroke();
  // one dot per iterate on the map: their spacing is the step length along the path
  const dots = pts.length > 600 ? Math.ceil(pts.length / 600) : 1;
  for (let t = 0; t < pts.length; t += dots) {
    ctx.beginPath(); ctx.arc(pts[t][0], pts[t][1], 1.7, 0, 2 * Math.PI); ctx.fill();
  }
  if (lastPx) {
    const off = !inside(lastPx);
    const [px, py] = off && exit ? exit[0] : lastPx;
    if (divergedAt !== null && divergedAt <= k) {
      ctx.lineWidth = 2.5; ctx.beginPath();
      ctx.moveTo(px - 6, py - 6); ctx.lineTo(px + 6, py + 6); ctx.moveTo(px + 6, py - 6); ctx.lineTo(px - 6, py + 6);
      ctx.stroke();
    } else if (off && exit) {  // left the map (escaped at escapedAt, or still going out there)
      const a = exit[1];
      ctx.beginPath();
      ctx.moveTo(px, py);
      ctx.lineTo(px - 11 * Math.cos(a - 0.45), py - 11 * Math.sin(a - 0.45));
      ctx.lineTo(px - 11 * Math.cos(a + 0.45), py - 11 * Math.sin(a + 0.45));
      ctx.closePath(); ctx.fill();
    } else if (!off) {
      ctx.beginPath(); ctx.arc(px, py, 4, 0, 2 * Math.PI); ctx.fill();
      ctx.strokeStyle = "#fff"; ctx.lineWidth = 1.2; ctx.stroke();
    }
  }
  ctx.restore();
  return length;
}

function currentK() {
  const T = result ? Math.max(...result.runs.map((r) => r.steps)) : state.steps;
  const scrub = $("scrub");
  if (Number(scrub.max) !== T) {
    scrub.max = String(T);
    if (state.k === null || state.k > T) { scrub.value = String(T); $("scrub-out").textContent = String(T); }
  }
  return state.k === null ? T : Math.min(state.k, T);
}

// --- the plots ----------------------------------------------------------------------------
function ticks(lo, hi, n) {
  const span = hi - lo;
  if (!(span > 0)) return [lo];
  const raw = span / n, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) out.push(Math.abs(t) < 1e-12 * span ? 0 : t);
  return out;
}

// series: [{color, dash, values: [number|null]}]; log: y on a log scale (values <= 0 dropped)
function plot(canvas, { title, xlabel, log, series, k, note }) {
  const W = 440, H = 230, m = { l: 54, r: 22, t: 26, b: 36 };
  const ctx = setupCanvas(canvas, W, H);
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = "#1d2330"; ctx.font = "600 13px system-ui, sans-serif";
  ctx.fillText(title, 8, 16);
  const tr = (v) => (log ? (v > 0 ? Math.log10(v) : null) : v);
  let xmax = 1, lo = Infinity, hi = -Infinity;
  const all = [];
  for (const s of series) {
    xmax = Math.max(xmax, s.values.length - 1 + (s.offset || 0));
    for (const v of s.values) {
      const y = v === null ? null : tr(v);
      if (y !== null && Number.isFinite(y)) { lo = Math.min(lo, y); hi = Math.max(hi, y); all.push(y); }
    }
  }
  if (log && all.length) {
    // a diverging run climbs to 1e300: keep the scale of the others, let it leave the top
    all.sort((a, b) => a - b);
    hi = Math.min(hi, all[Math.floor(0.9 * (all.length - 1))] + 3);
  }
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  ctx.strokeStyle = "#c9cfda"; ctx.strokeRect(m.l, m.t, pw, ph);
  ctx.font = "13px system-ui, sans-serif"; ctx.fillStyle = "#3d4454";
  ctx.fillText(xlabel, m.l + pw / 2 - 20, H - 5);
  canvas.dataset.series = String(series.length);
  if (!(hi >= lo)) {
    ctx.fillText(note || "nothing to show", m.l + 10, m.t + 20);
    return;
  }
  if (hi - lo < 1e-12) { lo -= log ? 1 : Math.abs(lo) * 0.1 + 1e-9; hi += log ? 1 : Math.abs(hi) * 0.1 + 1e-9; }
  const pad = 0.06 * (hi - lo);  // lines on the frame would hide
  lo -= pad; hi += pad;
  const X = (t) => m.l + (t / xmax) * pw, Y = (y) => m.t + ph - ((y - lo) / (hi - lo)) * ph;
  // grid and ticks
  ctx.strokeStyle = "#eef0f4"; ctx.fillStyle = "#5b6475";
  const yt = log ? ticks(Math.floor(lo), Math.ceil(hi), Math.min(6, Math.ceil(hi) - Math.floor(lo))).filter((t) => Number.isInteger(t)) : ticks(lo, hi, 5);
  for (const t of yt) {
    if (t < lo - 1e-9 || t > hi + 1e-9) continue;
    ctx.beginPath(); ctx.moveTo(m.l, Y(t)); ctx.lineTo(m.l + pw, Y(t)); ctx.stroke();
    ctx.fillText(log ? power(t) : fmt(t), 4, Y(t) + 5);
  }
  for (const t of ticks(0, xmax, 5)) {
    ctx.beginPath(); ctx.moveTo(X(t), m.t); ctx.lineTo(X(t), m.t + ph); ctx.stroke();
    ctx.fillText(String(t), X(t) - 6, m.t + ph + 15);
  }
  const ends = [];
  ctx.save();
  ctx.beginPath(); ctx.rect(m.l, m.t, pw, ph); ctx.clip();
  for (const s of series) {
    ctx.strokeStyle = s.color; ctx.lineWidth = s.width || 1.4; ctx.globalAlpha = s.alpha || 0.85;
    ctx.setLineDash(s.dash || []);
    ctx.beginPath();
    let up = false, end = null;
    s.values.forEach((v, t) => {
      const y = v === null ? null : tr(v);
      if (y === null || !Number.isFinite(y)) { up = false; return; }
      const px = X(t + (s.offset || 0)), py = Y(y);
      if (up) ctx.lineTo(px, py); else ctx.moveTo(px, py);
      up = true;
      end = [px, py];
    });
    ctx.stroke();
    if (s.label && end) ends.push([s, end]);
  }
  ctx.restore();
  // each line's start number at its end, in its colour (the map numbers the starts alike)
  ctx.font = "bold 12px system-ui, sans-serif";
  for (const [s, [px, py]] of ends) {
    ctx.fillStyle = s.color; ctx.globalAlpha = 1;
    ctx.fillText(s.label, Math.min(px + 3, W - 10), clamp(py + 4, m.t + 10, m.t + ph));
  }
  canvas.dataset.labels = String(ends.length);
  ctx.setLineDash([]);
  if (k !== null && k < xmax) {
    ctx.strokeStyle = "rgba(29,35,48,0.5)"; ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(X(k), m.t); ctx.lineTo(X(k), m.t + ph); ctx.stroke();
  }
  if (note) { ctx.fillStyle = "#5b6475"; ctx.fillText(note, m.l + 6, m.t + 13); }
}

function drawPlots() {
  const runs = result ? result.runs : [];
  const k = result ? currentK() : null;
  const fstar = result ? result.f_star : null;
  const loss = [], steps = [], eff = [];
  for (const run of runs) {
    const color = COLORS[run.name] || "#333";
    run.f.forEach((f, b) => {
      loss.push({ color, label: String(b + 1), values: f.map((v) => (v === null ? null : fstar === null ? v : Math.max(v - fstar, 1e-16))) });
    });
    run.step_length.forEach((s, b) => steps.push({ color, label: String(b + 1), values: s, offset: 1 }));
    if (run.effective_step) {
      for (const [b, e] of run.effective_step.entries()) {
        eff.push({ color, label: String(b + 1), values: e.map((p) => (p ? p[0] : null)), offset: 1 });
        eff.push({ color, dash: [4, 3], values: e.map((p) => (p ? p[1] : null)), offset: 1 });
      }
    } else if (run.name === "gd" || run.name === "momentum") {
      // the rule's step size is the constant α: drawn for comparison, nothing computed
      eff.push({ color, dash: [1, 3], width: 1.6, values: [run.hyper.lr, run.hyper.lr], scaleTo: run.steps });
    }
  }
  for (const s of eff) {
    if (s.scaleTo) s.values = Array.from({ length: s.scaleTo }, () => s.values[0]), s.offset = 1;
  }
  plot($("plot-loss"), {
    title: fstar === null ? "loss f(θ_k)" : "loss f(θ_k) − f*",
    xlabel: "step k", log: fstar !== null, series: loss, k,
    note: fstar === null ? "f is unbounded below here" : "",
  });
  plot($("plot-step"), {
    title: "step length ‖θ_k − θ_k₋₁‖ (momentum: ‖s_k‖)",
    xlabel: "step k", log: true, series: steps, k,
  });
  plot($("plot-eff"), {
    title: "effective step α/(√r̂ + ε): θ₁ solid, θ₂ dashed",
    xlabel: "step k", log: true, series: eff, k,
    note: eff.length ? "rules without √r: the constant α, dotted" : `adaptive rules only (${meta.optimizers.filter((o) => o.adaptive).map((o) => o.label).join(", ")})`,
  });
}

// --- the outcome table: diverged, reached, or where each run ended ------------------------------
function drawTable() {
  // one row per start, one column per optimizer: how each run ended
  const table = $("outcomes");
  table.replaceChildren();
  if (!result) return;
  const what = result.f_star === null ? "f" : "f − f*";
  const caption = el("caption", {},
    `How each run ended: reached ${what} < ${TOL_F}, diverged, escaped (left the map of a ` +
    `surface unbounded below), or ${what} after ${result.steps} steps`);
  const head = el("tr");
  head.append(el("th", {}, "start θ₀"));
  for (const run of result.runs) {
    const th = el("th");
    const sw = el("span", { class: "swatch" });
    sw.style.background = COLORS[run.name] || "#333";
    const hyper = Object.entries(run.hyper).filter(([k]) => k in SYMBOL)
      .map(([k, v]) => `${SYMBOL[k]}=${fmt(v)}`).join(" ");
    th.append(sw, el("b", {}, LABELS[run.name] || run.name), el("span", { class: "hyper" }, hyper));
    head.append(th);
  }
  table.append(caption, head);
  result.starts.forEach((p, b) => {
    const tr = el("tr");
    tr.append(el("td", { class: "start" }, `${b + 1}  (${fmt(p[0])}, ${fmt(p[1])})`));
    for (const run of result.runs) {
      const d = run.diverged_at[b], reached = run.steps_to_target[b];
      const escaped = run.escaped_at ? run.escaped_at[b] : null;
      let td;
      if (d !== null) td = el("td", { class: "div" }, `✕ diverged at step ${d}`);
      else if (escaped !== null) td = el("td", { class: "esc" }, `↗ escaped at step ${escaped}`);
      else if (reached !== null) td = el("td", { class: "ok" }, `✓ reached at step ${reached}`);
      else {
        const f = run.f[b][run.f[b].length - 1];
        td = el("td", {}, fmt(result.f_star === null ? f : f - result.f_star));
      }
      tr.append(td);
    }
    table.append(tr);
  });
}

function drawAll() {
  drawMap();
  drawPlots();
  drawTable();
}

// --- start ------------------------------------------------------------------------------
async function main() {
  try {
    meta = await getJSON("/api/landscapes");
    readCatalog();
    initialOpts();
    const starts = readURL();
    buildControls();
    await loadLandscape(true);
    if (starts.length) { state.starts = starts; changed(); }
  } catch (err) {
    showError(err.message);
    finish();
  }
}
main();
