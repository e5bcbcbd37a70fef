// /compare's live view in one component (Streamlit components v2, no build step).
//
// The four extra-distortion sliders (real <input type="range">, labelled, keyboard-operable)
// and what both models make of the distorted digit: the input with the ST's sampling grid, its
// output V, both models' class probabilities. On every input event of a slider the browser
// recomputes the distorted digit (stn_explore.explorer.compare.extra_distortion: θ = inverse
// of rotate · scale · shift, bilinear, zero padding, rounded to uint8) and runs both models
// itself on float32 weights exported by stn_explore.explorer.compare_live (conv, max-pool,
// ReLU, linear; the ST's affine grid and bilinear sampler; softmax) — the same forward pass as
// compare_live.forward_numpy. On release (change event) the values go to Python, which stays
// the source of truth: it recomputes everything with stn_explore and the view then shows the
// server's result. Models the browser cannot run (data.models.why) are shown on release only.
// MNIST addition (data.addition): two channels distorted alike, two parallel transformers whose
// outputs are stacked as channels for the head (STClassifier.forward), 19 sums; its cards show
// both channels and per transformer its grid, its V in colour and its ink from each channel.
// Convention (CONVENTIONS.md): normalised [-1, 1], align_corners=False, x right, y down,
// θ maps output (V) → input (U).
//
// Lost key presses: each edit carries a nonce; Python echoes the last nonce it applied
// (data.ack). Until the component sees its own last nonce acknowledged it keeps its values.

// ---------------------------------------------------------------- decoding
function bytes(b64) {
  const bin = atob(b64), out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function float32s(b64) { return new Float32Array(bytes(b64).buffer); } // little-endian, as every browser

// ---------------------------------------------------------------- sampling (target → source)
// V (C, Ho, Wo) sampled bilinearly from U (C, H, W) at θ · G, zero padding, align_corners=False
function affineSample(u, C, H, W, t, Ho, Wo) {
  const v = new Float64Array(C * Ho * Wo);
  for (let r = 0; r < Ho; r++) {
    const gy = (2 * r + 1) / Ho - 1;
    for (let q = 0; q < Wo; q++) {
      const gx = (2 * q + 1) / Wo - 1;
      const x = ((t[0] * gx + t[1] * gy + t[2] + 1) * W - 1) / 2, y = ((t[3] * gx + t[4] * gy + t[5] + 1) * H - 1) / 2;
      const x0 = Math.floor(x), y0 = Math.floor(y), fx = x - x0, fy = y - y0;
      for (let dy = 0; dy < 2; dy++) {
        const yi = y0 + dy;
        if (yi < 0 || yi >= H) continue;
        for (let dx = 0; dx < 2; dx++) {
          const xi = x0 + dx;
          if (xi < 0 || xi >= W) continue;
          const w = (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy);
          for (let c = 0; c < C; c++) v[(c * Ho + r) * Wo + q] += w * u[(c * H + yi) * W + xi];
        }
      }
    }
  }
  return v;
}

function roundHalfEven(x) { // torch.round
  const f = Math.floor(x), d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

// the extra distortion as compare_live.distort_numpy computes it: every step rounded to float32
// (as torch computes compare.extra_distortion), so that pixels on a rounding boundary mostly
// round the same way as the server's
const fr = Math.fround;

function distortionTheta(v) { // the inverse of "rotate by angle, scale, then shift" (output → input)
  const a = fr(fr(v.cmp_angle) * fr(Math.PI / 180)), c = fr(Math.cos(a)), s = fr(Math.sin(a)), k = fr(1 / v.cmp_scale);
  const a00 = fr(c * k), a01 = fr(-s * k), a10 = fr(s * k), a11 = fr(c * k), t0 = fr(v.cmp_sx), t1 = fr(v.cmp_sy);
  return [a00, a01, -fr(fr(a00 * t0) + fr(a01 * t1)), a10, a11, -fr(fr(a10 * t0) + fr(a11 * t1))];
}

function baseCoords(n) { // coords.base_grid: linspace(-1, 1, n) · (n − 1)/n, in float32
  const out = new Float64Array(n), sc = fr((n - 1) / n);
  for (let i = 0; i < n; i++) out[i] = fr(fr(i === n - 1 ? 1 : -1 + i * (2 / (n - 1))) * sc);
  return out;
}

function distort(img, values) { // → uint8 pixels (C·H·W, channel after channel) of the distorted digit(s)
  const C = img.c || 1, W = img.w, H = img.h, t = distortionTheta(values), xs = baseCoords(W), ys = baseCoords(H);
  const u = new Float64Array(C * W * H), out = new Uint8Array(C * W * H);
  for (let i = 0; i < u.length; i++) u[i] = fr(img.px[i] / 255);
  for (let c = 0; c < C; c++) { // every channel on the same grid (MNIST addition's two digits move together)
    const o = c * H * W, at = (yi, xi) => (xi < 0 || yi < 0 || xi >= W || yi >= H ? 0 : u[o + yi * W + xi]);
    for (let r = 0; r < H; r++) for (let q = 0; q < W; q++) {
      const sx = fr(fr(fr(xs[q] * t[0]) + fr(ys[r] * t[1])) + t[2]), sy = fr(fr(fr(xs[q] * t[3]) + fr(ys[r] * t[4])) + t[5]);
      const px = fr(fr(fr(fr(sx + 1) * W) - 1) / 2), py = fr(fr(fr(fr(sy + 1) * H) - 1) / 2);
      const x0 = Math.floor(px), y0 = Math.floor(py), wx0 = fr(x0 + 1 - px), wx1 = fr(px - x0);
      const wy0 = fr(y0 + 1 - py), wy1 = fr(py - y0);
      const v = fr(fr(fr(fr(at(y0, x0) * fr(wx0 * wy0)) + fr(at(y0, x0 + 1) * fr(wx1 * wy0)))
                      + fr(at(y0 + 1, x0) * fr(wx0 * wy1))) + fr(at(y0 + 1, x0 + 1) * fr(wx1 * wy1)));
      out[o + r * W + q] = roundHalfEven(fr(Math.min(1, Math.max(0, v)) * 255));
    }
  }
  return out;
}

// the normalised source points (x, y per output pixel, row by row) of an affine θ: affine_grid,
// align_corners=False — what the server sends for any transform (compare_live.points_payload)
function affinePoints(t, Ho, Wo) {
  const out = new Float64Array(Ho * Wo * 2);
  for (let r = 0; r < Ho; r++) for (let q = 0; q < Wo; q++) {
    const gx = (2 * q + 1) / Wo - 1, gy = (2 * r + 1) / Ho - 1, i = 2 * (r * Wo + q);
    out[i] = t[0] * gx + t[1] * gy + t[2]; out[i + 1] = t[3] * gx + t[4] * gy + t[5];
  }
  return out;
}

function inkShare(v, C) { // diagnostics.ink_share of one V (C·H'·W'): each channel's share of the ink
  const n = v.length / C, ink = new Array(C).fill(0);
  for (let c = 0; c < C; c++) for (let i = c * n; i < (c + 1) * n; i++) if (v[i] > 0) ink[c] += v[i];
  const tot = ink.reduce((a, b) => a + b, 0);
  return tot > 0 ? ink.map((x) => x / tot) : ink.map(() => null);
}

// ---------------------------------------------------------------- the models' forward pass
function param(W, ref) { const [off, shape] = ref; return W.subarray(off, off + shape.reduce((a, b) => a * b, 1)); }

function runLayers(layers, t, W) { // t: {x, shape: [C, H, W] or [N]}
  for (const L of layers) {
    if (L.op === "conv") { // valid cross-correlation: out[o, p] = b[o] + Σ_k w[o, k] · patch_p[k] (im2col:
      // one long dot product per output value, which the JIT runs ≈ 2× faster than short rows)
      const [O, I, kh, kw] = L.w[1], [, H, Wd] = t.shape, Ho = H - kh + 1, Wo = Wd - kw + 1, K = I * kh * kw, P = Ho * Wo;
      const k = param(W, L.w), b = param(W, L.b), x = t.x, col = new Float64Array(P * K), out = new Float64Array(O * P);
      for (let y = 0; y < Ho; y++) for (let q = 0; q < Wo; q++) {
        let r = (y * Wo + q) * K;
        for (let i = 0; i < I; i++) for (let ky = 0; ky < kh; ky++) {
          const src = (i * H + y + ky) * Wd + q;
          for (let kx = 0; kx < kw; kx++) col[r++] = x[src + kx];
        }
      }
      for (let o = 0; o < O; o++) {
        const wo = o * K, bo = b[o], oo = o * P;
        for (let p = 0; p < P; p++) {
          let s = bo;
          const cp = p * K;
          for (let j = 0; j < K; j++) s += k[wo + j] * col[cp + j];
          out[oo + p] = s;
        }
      }
      t = {x: out, shape: [O, Ho, Wo]};
    } else if (L.op === "maxpool") {
      const s = L.k, [C, H, Wd] = t.shape, Ho = Math.floor(H / s), Wo = Math.floor(Wd / s), out = new Float64Array(C * Ho * Wo);
      for (let c = 0; c < C; c++) for (let y = 0; y < Ho; y++) for (let q = 0; q < Wo; q++) {
        let m = -Infinity;
        for (let dy = 0; dy < s; dy++) for (let dx = 0; dx < s; dx++) m = Math.max(m, t.x[(c * H + y * s + dy) * Wd + q * s + dx]);
        out[(c * Ho + y) * Wo + q] = m;
      }
      t = {x: out, shape: [C, Ho, Wo]};
    } else if (L.op === "relu") {
      const out = new Float64Array(t.x.length);
      for (let i = 0; i < out.length; i++) out[i] = t.x[i] > 0 ? t.x[i] : 0;
      t = {x: out, shape: t.shape};
    } else if (L.op === "flatten") {
      t = {x: t.x, shape: [t.x.length]};
    } else if (L.op === "linear") {
      const [N, M] = L.w[1], w = param(W, L.w), b = param(W, L.b), out = new Float64Array(N);
      for (let n = 0; n < N; n++) { let s = b[n]; const r = n * M; for (let m = 0; m < M; m++) s += w[r + m] * t.x[m]; out[n] = s; }
      t = {x: out, shape: [N]};
    } else throw new Error(`unknown layer ${L.op}`);
  }
  return t;
}

function forward(model, u) { // u: Float64Array (C·H·W) in [0, 1] → {probs, thetas, vs}
  const sp = model.spec, W = model.w, [C, H, Wd] = sp.in, thetas = [], vs = [];
  for (const st of sp.transformers) {
    const f = runLayers([...st.loc, {op: "flatten"}, st.regressor], {x: u, shape: [C, H, Wd]}, W).x;
    const t = st.kind === "attention" ? [f[0], 0, f[1], 0, f[0], f[2]] : Array.from(f);
    thetas.push(t);
    vs.push(affineSample(u, C, H, Wd, t, st.out[0], st.out[1]));
  }
  let h = u, shape = [C, H, Wd];
  if (vs.length) {
    const [Ho, Wo] = sp.transformers[0].out, n = C * Ho * Wo;
    h = new Float64Array(n * vs.length);
    vs.forEach((v, k) => h.set(v, k * n));
    shape = [C * vs.length, Ho, Wo];
  }
  if (sp.offset) h = h.map((x) => x - sp.offset);
  const z = runLayers(sp.head, {x: h, shape}, W).x, mx = Math.max(...z), e = Array.from(z, (x) => Math.exp(x - mx));
  const sum = e.reduce((a, b) => a + b, 0);
  return {probs: e.map((x) => x / sum), thetas, vs};
}

// ---------------------------------------------------------------- drawing
function grayRGBA(px) { // px: values in [0, 255]
  const out = new Uint8ClampedArray(px.length * 4);
  for (let i = 0; i < px.length; i++) { const g = px[i]; out[4 * i] = out[4 * i + 1] = out[4 * i + 2] = g; out[4 * i + 3] = 255; }
  return out;
}

function putPixels(canvas, w, h, rgba) {
  canvas.width = w; canvas.height = h;
  canvas.getContext("2d").putImageData(new ImageData(rgba, w, h), 0, 0);
}

function title(name, probs, label, what = "") {
  let k = 0;
  probs.forEach((p, i) => { if (p > probs[k]) k = i; });
  const verdict = label === null || label === undefined ? "" : (k === label ? " ✓" : " ✗");
  return `${name}: ${what}${k}${verdict} (${Math.round(probs[k] * 100)}%)`;
}

function rgbRGBA(px, n) { // two channels (2·n values in [0, 255]) → figures.two_channel_rgb: magenta / green
  const out = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) { const a = px[i], b = px[n + i]; out[4 * i] = out[4 * i + 2] = a; out[4 * i + 1] = b; out[4 * i + 3] = 255; }
  return out;
}

function bytesOf(v) { // floats in [0, 1] → [0, 255]
  const g = new Uint8ClampedArray(v.length);
  for (let i = 0; i < g.length; i++) g[i] = Math.round(Math.min(1, Math.max(0, v[i])) * 255);
  return g;
}

const FIELDS = ["cmp_angle", "cmp_scale", "cmp_sx", "cmp_sy"];
const same = (a, b) => FIELDS.every((k) => Math.abs(a[k] - b[k]) < 1e-9);
const MODELS = (window.__stnCompareModels = window.__stnCompareModels || {}); // weights by key, kept across reruns

// ---------------------------------------------------------------- the component
export default function (component) {
  const {parentElement, setStateValue, setTriggerValue} = component;
  const data = component.data[0]; // (sent as [data]: see compare_live.py)
  const root = parentElement.querySelector(".cmp-live");
  let S = root.__cmp;
  if (!S) S = root.__cmp = {nonce: data.ack || 0, uid: Math.random().toString(36).slice(2, 8), values: null};
  S.data = data;
  S.setStateValue = setStateValue;
  const F = (S.fn = S.fn || {}); // handlers outlive this call: they reach the current functions through F
  const el = (sel) => root.querySelector(sel);
  const acked = () => (S.data.ack || 0) >= S.nonce;
  const busy = () => Boolean(S.sliding || S.pending);
  const expose = (window.__stnCompareLive = window.__stnCompareLive || {});

  if (S.imageKey !== data.image_key) {
    S.img = {c: data.image.c || 1, w: data.image.w, h: data.image.h, px: bytes(data.image.pixels)}; S.imageKey = data.image_key;
  }
  // the models: sent once per session and key, kept by this tab
  const mk = data.models.key;
  if (data.models.a || data.models.b) {
    for (const key of Object.keys(MODELS)) if (key !== mk) delete MODELS[key];
    MODELS[mk] = ["a", "b"].map((s) => data.models[s] && {spec: data.models[s].spec, w: float32s(data.models[s].weights)});
  }
  S.models = MODELS[mk] || null;
  if (!S.models && !data.models.why && S.asked !== mk) { S.asked = mk; setTriggerValue("need", mk); }
  if (S.values === null || (!same(S.values, data.values) && acked() && !busy())) S.values = {...data.values};

  // ------------------------------------------------------------ controls (built once)
  function buildControls() {
    const box = el(".cmp-sliders");
    box.replaceChildren();
    S.inputs = {}; S.outputs = {};
    for (const sp of data.sliders) {
      const id = `cmp-${S.uid}-${sp.key}`, row = document.createElement("div");
      row.className = "cmp-slider";
      const lab = document.createElement("label");
      lab.htmlFor = id; lab.textContent = sp.label;
      const out = document.createElement("output");
      out.htmlFor = id;
      const input = document.createElement("input");
      Object.assign(input, {type: "range", id, min: String(sp.min), max: String(sp.max), step: String(sp.step)});
      input.value = String(sp.value);
      input.dataset.key = sp.key;
      row.append(lab, out, input);
      box.append(row);
      input.addEventListener("pointerdown", () => { S.sliding = input; });
      input.addEventListener("input", () => { // every input event: the browser previews
        const v = parseFloat(input.value);
        if (!Number.isFinite(v)) return;
        S.values = {...S.values, [sp.key]: v};
        S.pending = true;
        F.sync();
        F.schedule();
      });
      input.addEventListener("change", () => { S.sliding = null; F.commit(); }); // release or key press
      S.inputs[sp.key] = input; S.outputs[sp.key] = out;
    }
  }

  function sync() {
    for (const sp of S.data.sliders) {
      const input = S.inputs[sp.key], v = S.values[sp.key];
      if (S.sliding !== input) input.value = String(v);
      input.setAttribute("value", String(v));
      const d = String(sp.step).includes(".") ? String(sp.step).split(".")[1].length : 0;
      S.outputs[sp.key].textContent = Number(v).toFixed(d);
    }
  }

  // ------------------------------------------------------------ drawing
  const px = data.px;
  function drawInput(u8, theta) {
    const img = S.img, c = el(".cmp-u"), o = el(".cmp-grid");
    putPixels(c, img.w, img.h, grayRGBA(u8));
    const side = px, sc = side / Math.max(img.w, img.h);
    for (const cv of [c, o]) { cv.style.width = `${img.w * sc}px`; cv.style.height = `${img.h * sc}px`; }
    o.width = Math.round(img.w * sc); o.height = Math.round(img.h * sc);
    const ctx = o.getContext("2d");
    ctx.clearRect(0, 0, o.width, o.height);
    if (!theta) return;
    // source point (normalised) → overlay pixel
    const map = (x, y) => [((theta[0] * x + theta[1] * y + theta[2] + 1) / 2) * o.width,
                           ((theta[3] * x + theta[4] * y + theta[5] + 1) / 2) * o.height];
    const [Ho, Wo] = S.data.st_out, lines = Math.min(14, Math.max(Ho, Wo));
    ctx.strokeStyle = "rgba(0, 200, 255, 0.85)"; ctx.lineWidth = 1; ctx.beginPath();
    for (let l = 0; l <= lines; l++) {
      const s = -1 + 2 * l / lines;
      for (const [a, b] of [[map(-1, s), map(1, s)], [map(s, -1), map(s, 1)]]) { ctx.moveTo(...a); ctx.lineTo(...b); }
    }
    ctx.stroke();
    ctx.strokeStyle = "#ff4b4b"; ctx.lineWidth = 2; ctx.beginPath();
    [[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]].forEach(([x, y], i) => (i ? ctx.lineTo(...map(x, y)) : ctx.moveTo(...map(x, y))));
    ctx.stroke();
  }

  function drawV(v, Ho, Wo) { // v: floats in [0, 1] (C = 1)
    const c = el(".cmp-v"), g = new Uint8ClampedArray(Ho * Wo);
    for (let i = 0; i < g.length; i++) g[i] = Math.round(Math.min(1, Math.max(0, v[i])) * 255);
    putPixels(c, Wo, Ho, grayRGBA(g));
    const sc = px / Math.max(Ho, Wo);
    c.style.width = `${Wo * sc}px`; c.style.height = `${Ho * sc}px`;
    el(".cmp-vfig").classList.remove("cmp-stale");
  }

  function drawBars(slot, name, probs) {
    const fig = el(`.cmp-p${slot}`), label = S.data.label, A = S.data.addition;
    fig.querySelector(".cmp-title").textContent = title(name, probs, label, A ? A.what : "");
    fig.style.width = A ? `${A.bars_w}px` : "";
    const bars = fig.querySelector(".cmp-bars");
    if (bars.children.length !== probs.length) {
      bars.replaceChildren();
      probs.forEach((_, i) => {
        const col = document.createElement("div");
        col.className = "cmp-col";
        col.innerHTML = `<div class="cmp-track"><div class="cmp-bar"></div></div><span>${probs.length > 10 && i % 2 ? "" : i}</span>`;
        bars.append(col);
      });
    }
    let k = 0;
    probs.forEach((p, i) => { if (p > probs[k]) k = i; });
    [...bars.children].forEach((col, i) => {
      const bar = col.querySelector(".cmp-bar");
      bar.style.height = `${(100 * probs[i]).toFixed(1)}%`;
      bar.classList.toggle("cmp-pred", i === k);
      col.classList.toggle("cmp-true", i === label);
      col.title = `${i}: ${(100 * probs[i]).toFixed(1)}%`;
    });
    fig.classList.remove("cmp-stale");
  }

  function stale(why) { // nothing but the distorted input can be previewed: the rest waits for the server
    for (const e of root.querySelectorAll(".cmp-vfig, .cmp-pa, .cmp-pb, .cmp-vcell, .cmp-share")) e.classList.add("cmp-stale");
    el(".cmp-src").textContent = why;
  }

  // ------------------------------------------------------------ MNIST addition: two channels, parallel transformers
  // (what app_ui's addition view drew: the input's two channels; per transformer where it samples
  // — its grid on the input in colour — its output V in colour and its ink from each channel)
  function buildAddition(n) {
    for (const old of root.querySelectorAll(".cmp-add")) old.remove();
    S.addBuilt = n;
    const A = S.data.addition;
    if (!A) return;
    const cards = el(".cmp-cards"), before = el(".cmp-pa");
    const make = (tag, cls, text) => {
      const e = document.createElement(tag);
      if (cls) e.className = cls;
      if (text !== undefined) e.textContent = text;
      return e;
    };
    const cell = (cap, cls) => { const c = make("div", `cmp-cell ${cls || ""}`); c.append(make("div", "cmp-cap", cap)); return c; };
    const figure = (text, cls) => {
      const f = make("figure", `cmp-card cmp-add ${cls}`), pair = make("div", "cmp-pair");
      f.append(make("figcaption", "", text), pair);
      cards.insertBefore(f, before);
      return [f, pair];
    };
    const [, inPair] = figure(A.input, "cmp-addin");
    A.channels.forEach((cap) => {
      const c = cell(cap), cv = make("canvas", "cmp-ch");
      cv.setAttribute("aria-label", `the distorted input, ${cap}`);
      c.append(cv); inPair.append(c);
    });
    for (let k = 0; k < n; k++) {
      const name = A.transformer.replace("{k}", String(k + 1)), [f, pair] = figure(name, "cmp-st");
      const g = cell(A.grid), stage = make("div", "cmp-stage"), rgb = make("canvas", "cmp-rgb"), ov = make("canvas", "cmp-grid2");
      rgb.setAttribute("aria-label", `${name}: ${A.grid}`); ov.setAttribute("aria-hidden", "true");
      stage.append(rgb, ov); g.append(stage);
      const v = cell(A.v, "cmp-vcell"), vc = make("canvas", "cmp-v2");
      vc.setAttribute("aria-label", `${name}: ${A.v}`);
      v.append(vc); pair.append(g, v);
      f.append(make("div", "cmp-share"));
    }
    cards.insertBefore(make("div", "cmp-add cmp-note", A.note), before);
  }

  const sized = (cv, w, h, side) => { const sc = side / Math.max(w, h); cv.style.width = `${w * sc}px`; cv.style.height = `${h * sc}px`; };
  const stCards = () => root.querySelectorAll(".cmp-st");

  function drawAddInput(u8) { // both channels, and the input in colour under each transformer's grid
    const img = S.img, side = S.data.addition.px, n = img.w * img.h;
    root.querySelectorAll(".cmp-ch").forEach((cv, c) => {
      putPixels(cv, img.w, img.h, grayRGBA(u8.subarray(c * n, (c + 1) * n))); sized(cv, img.w, img.h, side);
    });
    for (const f of stCards()) {
      const cv = f.querySelector(".cmp-rgb");
      putPixels(cv, img.w, img.h, rgbRGBA(u8, n)); sized(cv, img.w, img.h, side);
    }
  }

  function drawAddGrid(k, pts, Ho, Wo) { // pts: normalised source points (x, y), row by row; null: none
    const img = S.img, A = S.data.addition, o = stCards()[k].querySelector(".cmp-grid2"), sc = A.px / Math.max(img.w, img.h);
    o.width = Math.round(img.w * sc); o.height = Math.round(img.h * sc);
    sized(o, img.w, img.h, A.px);
    const ctx = o.getContext("2d");
    ctx.clearRect(0, 0, o.width, o.height);
    if (!pts) return;
    // figures.grid_lines: every `every`-th row and column (and the last), at most max_lines of each
    const every = Math.max(1, Math.ceil(Math.max(Ho, Wo) / A.max_lines)), rows = [], cols = [];
    for (let r = 0; r < Ho; r += every) rows.push(r);
    if ((Ho - 1) % every) rows.push(Ho - 1);
    for (let q = 0; q < Wo; q += every) cols.push(q);
    if ((Wo - 1) % every) cols.push(Wo - 1);
    const P = (r, q) => { const i = 2 * (r * Wo + q); return [((pts[i] + 1) / 2) * o.width, ((pts[i + 1] + 1) / 2) * o.height]; };
    ctx.strokeStyle = "rgba(0, 200, 255, 0.85)"; ctx.lineWidth = 1; ctx.beginPath();
    for (const r of rows) for (let q = 0; q < Wo; q++) (q ? ctx.lineTo(...P(r, q)) : ctx.moveTo(...P(r, q)));
    for (const q of cols) for (let r = 0; r < Ho; r++) (r ? ctx.lineTo(...P(r, q)) : ctx.moveTo(...P(r, q)));
    ctx.stroke();
  }

  function drawAddV(k, v, Ho, Wo, share) { // V in colour (channel 1 magenta, 2 green) and its ink per channel
    const f = stCards()[k], cv = f.querySelector(".cmp-v2");
    putPixels(cv, Wo, Ho, rgbRGBA(bytesOf(v), Ho * Wo)); sized(cv, Wo, Ho, S.data.addition.px);
    const ok = share && share.every((x) => x !== null && Number.isFinite(x));
    f.querySelector(".cmp-share").textContent = ok
      ? `ink from channel 1 / 2: ${share.map((x) => `${Math.round(x * 100)}%`).join(" / ")}` : "empty output";
    for (const e of f.querySelectorAll(".cmp-vcell, .cmp-share")) e.classList.remove("cmp-stale");
  }

  // ------------------------------------------------------------ preview (the browser) and the server's result
  function preview() {
    S.frame = null;
    const t0 = performance.now(), vals = {...S.values};
    const u8 = distort(S.img, vals), names = S.data.names;
    const out = {values: vals, u: Array.from(u8)};
    const [a, b] = S.models || [null, null];
    if (S.data.addition) {
      drawAddInput(u8);
      if (a && b) {
        const u = Float64Array.from(u8, (x) => x / 255), ra = forward(a, u), rb = forward(b, u), [Ho, Wo] = S.data.st_out;
        const C = S.img.c;
        Object.assign(out, {probs: [ra.probs, rb.probs], thetas: rb.thetas, vs: rb.vs.map((v) => Array.from(v)),
                            shares: rb.vs.map((v) => inkShare(v, C))});
        out.theta = rb.thetas[0] || null; out.v = out.vs[0] || null;
        rb.thetas.forEach((t, k) => { drawAddGrid(k, affinePoints(t, Ho, Wo), Ho, Wo); drawAddV(k, rb.vs[k], Ho, Wo, out.shares[k]); });
        drawBars("a", names[0], ra.probs); drawBars("b", names[1], rb.probs);
        el(".cmp-src").textContent = "preview: distortion and both models computed in your browser";
      } else {
        stCards().forEach((_, k) => drawAddGrid(k, null));
        stale(S.data.models.why ? `preview: the distorted input only (${S.data.models.why}); `
                                  + "the transformers' grids and V and the predictions follow on release" : "loading the models…");
      }
    } else if (a && b) {
      const u = Float64Array.from(u8, (x) => x / 255);
      const ra = forward(a, u), rb = forward(b, u);
      out.probs = [ra.probs, rb.probs];
      out.theta = rb.thetas[0] || null;
      if (rb.vs.length) out.v = Array.from(rb.vs[0]);
      drawInput(u8, out.theta);
      if (out.v) drawV(rb.vs[0], ...S.data.st_out);
      drawBars("a", names[0], ra.probs); drawBars("b", names[1], rb.probs);
      el(".cmp-src").textContent = "preview: distortion and both models computed in your browser";
    } else {
      drawInput(u8, null);
      stale(S.data.models.why ? `preview: the distorted input only (${S.data.models.why}); `
                                + "V and the predictions follow on release" : "loading the models…");
    }
    out.ms = performance.now() - t0;
    expose.client = out;
    root.dataset.frameMs = out.ms.toFixed(2);
    mark("preview");
  }

  function mark(source) { // for tests and benchmarks (the component lives in a shadow root)
    root.dataset.source = source;
    expose.status = {source, nonce: S.nonce, ack: S.data.ack || 0, models: root.dataset.models,
                     settled: source === "server" && acked() && !busy()};
  }

  function schedule() { if (!S.frame) S.frame = requestAnimationFrame(() => F.preview()); }
  function flush() { if (S.frame) { cancelAnimationFrame(S.frame); F.preview(); } }

  function commit() { // the server is asked first: the browser's own frame (both models) runs while it computes
    S.pending = false;
    S.nonce = Math.max(S.nonce, S.data.ack || 0) + 1;
    root.dataset.nonce = String(S.nonce);
    S.setStateValue("params", {values: S.values, nonce: S.nonce});
    flush();
    F.mark("preview");
  }

  function drawServer() { // once the browser's values and the server's agree, the view is the server's
    const d = S.data, sv = d.server;
    if (!acked() || busy() || !same(S.values, sv.values)) return false;
    const u8 = bytes(sv.u.pixels);
    let v = null;
    if (d.addition) {
      drawAddInput(u8);
      const vs = (sv.vs || []).map((p) => float32s(p.f32));
      (sv.grids || []).forEach((g, k) => drawAddGrid(k, float32s(g.f32), g.h, g.w));
      vs.forEach((x, k) => drawAddV(k, x, sv.vs[k].h, sv.vs[k].w, sv.shares[k]));
      v = vs[0] || null;
      expose.server = {values: {...sv.values}, probs: sv.probs, theta: sv.theta, u: Array.from(u8), v: v && Array.from(v),
                       thetas: sv.thetas, vs: vs.map((x) => Array.from(x)), shares: sv.shares,
                       grids: (sv.grids || []).map((g) => Array.from(float32s(g.f32)))};
    } else {
      drawInput(u8, sv.theta);
      if (sv.v) { v = float32s(sv.v.f32); drawV(v, sv.v.h, sv.v.w); }
      expose.server = {values: {...sv.values}, probs: sv.probs, theta: sv.theta, u: Array.from(u8), v: v && Array.from(v)};
    }
    drawBars("a", d.names[0], sv.probs[0]); drawBars("b", d.names[1], sv.probs[1]);
    el(".cmp-src").textContent = "computed by stn_explore on the server";
    root.dataset.confirmed = String(d.ack || 0);
    mark("server");
    return true;
  }

  function maybeServer() { if (!drawServer()) F.preview(); }

  // both models on a given uint8 input (the server's distorted digit, in the browser test)
  expose.runOn = (u8) => {
    const [a, b] = S.models || [null, null];
    if (!a || !b) return null;
    const u = Float64Array.from(u8, (x) => x / 255), ra = forward(a, u), rb = forward(b, u);
    return {probs: [ra.probs, rb.probs], theta: rb.thetas[0] || null, v: rb.vs.length ? Array.from(rb.vs[0]) : null,
            thetas: rb.thetas, vs: rb.vs.map((v) => Array.from(v)), shares: rb.vs.map((v) => inkShare(v, S.img.c))};
  };
  Object.assign(F, {preview, schedule, commit, sync, maybeServer, mark});
  if (!S.inputs) buildControls();
  sync();
  const nAdd = data.addition ? (data.server.vs || []).length : 0; // the layout: one ST, or MNIST addition's
  if (S.addBuilt !== nAdd || Boolean(data.addition) !== Boolean(root.querySelector(".cmp-addin"))) buildAddition(nAdd);
  el(".cmp-ufig").hidden = Boolean(data.addition);
  el(".cmp-vfig").hidden = !data.st_out || Boolean(data.addition);
  el(".cmp-titlea").textContent = data.card_titles[0];
  el(".cmp-titlev").textContent = data.card_titles[1];
  expose.bytes = S.models ? S.models.map((m) => m && m.w.byteLength) : null;
  if (!S.listening) { // a thumb released outside the slider
    S.listening = true;
    window.addEventListener("pointerup", () => { if (root.__cmp.sliding) { root.__cmp.sliding = null; } });
  }
  root.dataset.ack = String(data.ack || 0);
  root.dataset.models = S.models ? "browser" : (data.models.why ? "server" : "loading");
  maybeServer();
  root.dataset.painted = "1";
}
