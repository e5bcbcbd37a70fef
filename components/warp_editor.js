// The θ controls of the playground in one component (Streamlit components v2, no build step).
//
// Sliders (real <input type="range">, keyboard-operable, labelled), the editable θ, presets,
// and U with the sampling region T_θ(G) and draggable handles, next to the output V. On every
// input event of a slider and every pointer move of a handle the grid and V are recomputed
// here (bilinear, zero padding — a preview of stn_explore.sample) and redrawn; on release
// (change event, pointer up, key press, click) the whole state goes to Python, which stays the
// source of truth: it recomputes V with stn_explore and the editor then draws the server's V.
// Convention (CONVENTIONS.md): normalised [-1, 1], align_corners=False, x right, y down,
// transforms map output (target) → input (source).
//
// Lost key presses: each edit carries a nonce; Python echoes the last nonce it applied
// (data.ack). Until the editor sees its own last nonce acknowledged it keeps its local state
// and ignores the server's (older) one, so fast presses are never undone by a late rerun.

const KEY_STEP = 0.02; // normalised units per arrow key press (×5 with Shift)

// ---------------------------------------------------------------- transforms (target → source)
function affineMap(t) { // t: [[a, b, c], [d, e, f]]
  return (x, y) => [t[0][0] * x + t[0][1] * y + t[0][2], t[1][0] * x + t[1][1] * y + t[1][2]];
}

function homographyFromCorners(src) { // frame corners TL, TR, BR, BL → src (4×[x, y]); DLT
  const tgt = [[-1, -1], [1, -1], [1, 1], [-1, 1]];
  const A = [], b = [];
  for (let i = 0; i < 4; i++) {
    const [x, y] = tgt[i], [u, v] = src[i];
    A.push([x, y, 1, 0, 0, 0, -u * x, -u * y]); b.push(u);
    A.push([0, 0, 0, x, y, 1, -v * x, -v * y]); b.push(v);
  }
  const h = solve(A, b.map((v) => [v]));
  if (!h) return null;
  return [[h[0][0], h[1][0], h[2][0]], [h[3][0], h[4][0], h[5][0]], [h[6][0], h[7][0], 1]];
}

function projectiveMap(H) {
  return (x, y) => {
    let w = H[2][0] * x + H[2][1] * y + H[2][2];
    if (Math.abs(w) < 1e-6) w = w >= 0 ? 1e-6 : -1e-6; // as stn_explore (PROJECTIVE_EPS)
    return [(H[0][0] * x + H[0][1] * y + H[0][2]) / w, (H[1][0] * x + H[1][1] * y + H[1][2]) / w];
  };
}

function controlPoints(n) { // uniform n×n grid over [-1, 1], row-major (x fastest)
  const pts = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) pts.push([-1 + 2 * j / (n - 1), -1 + 2 * i / (n - 1)]);
  return pts;
}

function tpsU(r2) { return r2 > 0 ? r2 * Math.log(r2) : 0; } // U(r) = r² log r²

function tpsMap(src) { // thin plate spline through the uniform target grid → src points
  const k = src.length, n = Math.round(Math.sqrt(k)), tgt = controlPoints(n), m = k + 3;
  const L = [];
  for (let i = 0; i < m; i++) L.push(new Array(m).fill(0));
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const dx = tgt[i][0] - tgt[j][0], dy = tgt[i][1] - tgt[j][1];
      L[i][j] = tpsU(dx * dx + dy * dy);
    }
    L[i][k] = L[k][i] = 1; L[i][k + 1] = L[k + 1][i] = tgt[i][0]; L[i][k + 2] = L[k + 2][i] = tgt[i][1];
  }
  const rhs = [];
  for (let i = 0; i < m; i++) rhs.push(i < k ? [src[i][0], src[i][1]] : [0, 0]);
  const W = solve(L, rhs);
  if (!W) return null;
  return (x, y) => {
    let fx = W[k][0] + W[k + 1][0] * x + W[k + 2][0] * y;
    let fy = W[k][1] + W[k + 1][1] * x + W[k + 2][1] * y;
    for (let i = 0; i < k; i++) {
      const dx = x - tgt[i][0], dy = y - tgt[i][1], u = tpsU(dx * dx + dy * dy);
      fx += W[i][0] * u; fy += W[i][1] * u;
    }
    return [fx, fy];
  };
}

function solve(A, B) { // Gaussian elimination with partial pivoting; A (n×n), B (n×r)
  const n = A.length, r = B[0].length;
  const M = A.map((row, i) => row.concat(B[i]));
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let i = c + 1; i < n; i++) if (Math.abs(M[i][c]) > Math.abs(M[p][c])) p = i;
    if (Math.abs(M[p][c]) < 1e-12) return null;
    [M[c], M[p]] = [M[p], M[c]];
    for (let i = c + 1; i < n; i++) {
      const f = M[i][c] / M[c][c];
      if (f !== 0) for (let j = c; j < n + r; j++) M[i][j] -= f * M[c][j];
    }
  }
  const X = [];
  for (let i = n - 1; i >= 0; i--) {
    const row = [];
    for (let j = 0; j < r; j++) {
      let s = M[i][n + j];
      for (let q = i + 1; q < n; q++) s -= M[i][q] * X[q - i - 1][j];
      row.push(s / M[i][i]);
    }
    X.unshift(row);
  }
  return X;
}

function mapFor(kind, p) {
  if (kind === "affine") return affineMap(p);
  if (kind === "attention") return affineMap([[p[0], 0, p[1]], [0, p[0], p[2]]]);
  if (kind === "projective") { const H = homographyFromCorners(p); return H && projectiveMap(H); }
  return tpsMap(p);
}

// ---------------------------------------------------------------- handles per kind
// Each handle: {id, label, pos(params) → [x, y] normalised source point, move(params, x, y) → params}
function affineCorner(i) { // TL (-1,-1), TR (1,-1), BL (-1,1): three corners define θ
  const tgt = [[-1, -1], [1, -1], [-1, 1]];
  return (t, x, y) => {
    const f = affineMap(t), P = tgt.map(([a, b]) => f(a, b));
    P[i] = [x, y];
    const a0 = [(P[1][0] - P[0][0]) / 2, (P[1][1] - P[0][1]) / 2];
    const a1 = [(P[2][0] - P[0][0]) / 2, (P[2][1] - P[0][1]) / 2];
    return [[a0[0], a1[0], P[0][0] + a0[0] + a1[0]], [a0[1], a1[1], P[0][1] + a0[1] + a1[1]]];
  };
}

function handlesFor(kind, params) {
  if (kind === "affine") {
    const names = ["top-left corner", "top-right corner", "bottom-left corner"];
    const tgt = [[-1, -1], [1, -1], [-1, 1]];
    const hs = tgt.map(([a, b], i) => ({
      id: `c${i}`, label: names[i], pos: (t) => affineMap(t)(a, b), move: affineCorner(i)}));
    hs.push({id: "centre", label: "centre (translate)", pos: (t) => [t[0][2], t[1][2]],
             move: (t, x, y) => [[t[0][0], t[0][1], x], [t[1][0], t[1][1], y]]});
    hs.push({id: "rot", label: "rotation handle", pos: (t) => affineMap(t)(0, -1.35),
             move: (t, x, y) => { // rotate about the centre so that the knob points at (x, y)
               const c = [t[0][2], t[1][2]], k = affineMap(t)(0, -1.35);
               const a = Math.atan2(y - c[1], x - c[0]) - Math.atan2(k[1] - c[1], k[0] - c[0]);
               const co = Math.cos(a), si = Math.sin(a);
               return [[co * t[0][0] - si * t[1][0], co * t[0][1] - si * t[1][1], t[0][2]],
                       [si * t[0][0] + co * t[1][0], si * t[0][1] + co * t[1][1], t[1][2]]];
             }});
    return hs;
  }
  if (kind === "attention") {
    return [
      {id: "centre", label: "centre (translate)", pos: (p) => [p[1], p[2]], move: (p, x, y) => [p[0], x, y]},
      {id: "corner", label: "corner (scale)", pos: (p) => [p[1] + p[0], p[2] + p[0]],
       move: (p, x, y) => [Math.max(Math.abs(x - p[1]), Math.abs(y - p[2]), 0.02), p[1], p[2]]},
    ];
  }
  if (kind === "projective") {
    const names = ["top-left", "top-right", "bottom-right", "bottom-left"];
    return names.map((nm, i) => ({id: `c${i}`, label: `${nm} corner`, pos: (p) => p[i],
      move: (p, x, y) => p.map((q, j) => (j === i ? [x, y] : q))}));
  }
  return params.map((_, i) => ({id: `p${i}`, label: `control point ${i}`, pos: (p) => p[i],
    move: (p, x, y) => p.map((q, j) => (j === i ? [x, y] : q))}));
}

// ---------------------------------------------------------------- grid and sampling
function sourceGrid(map, H, W) { // (H·W) source points of the output pixel centres
  const g = new Float64Array(H * W * 2);
  for (let i = 0; i < H; i++) {
    const yt = (2 * i + 1) / H - 1;
    for (let j = 0; j < W; j++) {
      const [xs, ys] = map((2 * j + 1) / W - 1, yt);
      g[2 * (i * W + j)] = xs; g[2 * (i * W + j) + 1] = ys;
    }
  }
  return g;
}

function degenerate(g, H, W) { // null if the grid is a valid (non-folded) sampling region
  if (g.some((v) => !Number.isFinite(v))) return "the transform is not finite there";
  if (H < 2 || W < 2) return null;
  let pos = 0, neg = 0, tiny = 0;
  for (let i = 0; i + 1 < H; i++) for (let j = 0; j + 1 < W; j++) {
    const a = 2 * (i * W + j), b = a + 2, c = a + 2 * W;
    const cross = (g[b] - g[a]) * (g[c + 1] - g[a + 1]) - (g[b + 1] - g[a + 1]) * (g[c] - g[a]);
    if (Math.abs(cross) < 1e-10) tiny++; else if (cross > 0) pos++; else neg++;
  }
  if (pos && neg) return "the sampling region would fold over itself (not invertible)";
  if (tiny > 0.5 * (H - 1) * (W - 1)) return "the sampling region would collapse to a line or a point";
  return null;
}

function sampleBilinear(img, g, H, W) { // zero padding, align_corners=False; → RGBA bytes
  const out = new Uint8ClampedArray(H * W * 4), iw = img.w, ih = img.h, c = img.c, px = img.px;
  for (let n = 0; n < H * W; n++) {
    const x = ((g[2 * n] + 1) * iw - 1) / 2, y = ((g[2 * n + 1] + 1) * ih - 1) / 2;
    const x0 = Math.floor(x), y0 = Math.floor(y), fx = x - x0, fy = y - y0;
    const acc = [0, 0, 0];
    for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) {
      const xi = x0 + dx, yi = y0 + dy;
      if (xi < 0 || yi < 0 || xi >= iw || yi >= ih) continue;
      const w = (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy), o = (yi * iw + xi) * c;
      for (let ch = 0; ch < 3; ch++) acc[ch] += w * px[o + (c === 3 ? ch : 0)];
    }
    out[4 * n] = Math.round(acc[0]); out[4 * n + 1] = Math.round(acc[1]);
    out[4 * n + 2] = Math.round(acc[2]); out[4 * n + 3] = 255;
  }
  return out;
}

// ---------------------------------------------------------------- drawing
function decodeImage(d) {
  const bin = atob(d.pixels), px = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) px[i] = bin.charCodeAt(i);
  return {w: d.w, h: d.h, c: d.c, px};
}

function putPixels(canvas, w, h, rgba) {
  canvas.width = w; canvas.height = h;
  canvas.getContext("2d").putImageData(new ImageData(rgba, w, h), 0, 0);
}

function imageRGBA(img) {
  const out = new Uint8ClampedArray(img.w * img.h * 4);
  for (let n = 0; n < img.w * img.h; n++) for (let ch = 0; ch < 3; ch++) {
    out[4 * n + ch] = img.px[n * img.c + (img.c === 3 ? ch : 0)];
    out[4 * n + 3] = 255;
  }
  return out;
}

// ---------------------------------------------------------------- sliders ↔ parameters
function thetaFromSliders(v) { // geometry.theta_from_params: [R(angle) · Sh(shear) · diag(sx, sy) | t]
  const a = v.pg_angle * Math.PI / 180, c = Math.cos(a), s = Math.sin(a), k = v.pg_shear;
  return [[c * v.pg_sx, (c * k - s) * v.pg_sy, v.pg_tx], [s * v.pg_sx, (s * k + c) * v.pg_sy, v.pg_ty]];
}

function decompose(t) { // geometry.params_from_theta (a QR decomposition); null if singular
  const [a00, a01] = t[0], [a10, a11] = t[1];
  const sx = Math.hypot(a00, a10), det = a00 * a11 - a01 * a10;
  if (!(sx >= 1e-12) || !(Math.abs(det) >= 1e-12)) return null;
  const c = a00 / sx, s = a10 / sx, u01 = c * a01 + s * a11, sy = -s * a01 + c * a11;
  return {pg_angle: Math.atan2(s, c) * 180 / Math.PI, pg_sx: sx, pg_sy: sy, pg_shear: u01 / sy,
          pg_tx: t[0][2], pg_ty: t[1][2]};
}

function onStep(v, spec) { // as playground_state._on_step: on the step, clamped, no float noise
  const q = Math.round(v / spec.step) * spec.step;
  return +Math.min(spec.max, Math.max(spec.min, q)).toFixed(6);
}

function decimals(step) { const s = String(step); return s.includes(".") ? s.split(".")[1].length : 0; }

const CORNERS = ["pg_c0", "pg_c1", "pg_c2", "pg_c3"];

function paramsFromSliders(kind, v, tps) { // the transform the sliders describe
  if (kind === "affine") return thetaFromSliders(v);
  if (kind === "attention") return [v.pg_s, v.pg_atx, v.pg_aty];
  if (kind === "projective") return CORNERS.map((c) => [v[c + "x"], v[c + "y"]]);
  const b = v.pg_tps_bend;
  return controlPoints(4).map(([x, y], i) => [x + b * tps.offsets[i][0], y + b * tps.offsets[i][1]]);
}

function slidersFromParams(kind, p, specs, old) { // what the sliders show for parameters p
  const v = {...old}, put = (key, x) => { if (specs[key]) v[key] = onStep(x, specs[key]); };
  if (kind === "affine") { const d = decompose(p); if (d) for (const k in d) put(k, d[k]); }
  else if (kind === "attention") { put("pg_s", p[0]); put("pg_atx", p[1]); put("pg_aty", p[2]); }
  else if (kind === "projective") CORNERS.forEach((c, i) => { put(c + "x", p[i][0]); put(c + "y", p[i][1]); });
  return v;
}

// ---------------------------------------------------------------- the component
export default function (component) {
  const {parentElement, setStateValue, setTriggerValue} = component;
  const data = component.data[0]; // (sent as [data]: see warp_editor.py)
  const root = parentElement.querySelector(".stn-editor");
  let S = root.__stn;
  if (!S) S = root.__stn = {version: null, nonce: data.ack || 0, uid: Math.random().toString(36).slice(2, 8)};
  S.data = data;
  S.setStateValue = setStateValue;
  // event handlers outlive this call: they reach the current functions through F (S.fn)
  const F = (S.fn = S.fn || {});
  const el = (sel) => root.querySelector(sel);
  const stage = el(".stn-u"), uCanvas = el("canvas.stn-u-img"), overlay = el("canvas.stn-overlay");
  const vCanvas = el("canvas.stn-v"), msg = el(".stn-msg"), vsrc = el(".stn-vsrc");

  if (S.imageKey !== data.image_key) { S.img = decodeImage(data.image); S.imageKey = data.image_key; S.uDrawn = false; }
  const acked = () => (S.data.ack || 0) >= S.nonce;
  // busy: a drag, a held slider thumb, typing, or edits not sent yet — the server's state waits
  const busy = () => Boolean(S.drag || S.sliding || S.typing || S.dirty);

  function adopt() { // take Python's state (a preset, a kind switch, a new image, the rounded release …)
    const d = S.data;
    S.version = d.version;
    S.kind = d.kind;
    S.params = JSON.parse(JSON.stringify(d.params));
    S.specs = Object.fromEntries(d.controls.sliders.map((sp) => [sp.key, sp]));
    S.values = Object.fromEntries(d.controls.sliders.map((sp) => [sp.key, sp.value]));
    S.exact = d.controls.exact;
    S.tps = d.controls.tps ? JSON.parse(JSON.stringify(d.controls.tps)) : null;
    S.refused = false;
  }
  if (S.version === null || (S.version !== data.version && acked() && !busy())) adopt();

  // ------------------------------------------------------------ layout: U and V sized for themselves
  const img = S.img, pad = data.pad, [Ho, Wo] = data.out;
  function layout() {
    const cw = el(".stn-views").clientWidth, W = Math.max(200, (cw || 480) - 6), gap = 24; // (slack: rounding)
    let uSide = Math.min(400, W), vSide = Math.min(300, W);
    if (W >= 2 * 190 + gap) { uSide = Math.min(400, Math.floor((W - gap) * 0.56)); vSide = Math.min(300, W - gap - uSide); }
    S.sc = uSide / (Math.max(img.w, img.h) + 2 * pad);
    S.uW = Math.round((img.w + 2 * pad) * S.sc); S.uH = Math.round((img.h + 2 * pad) * S.sc);
    stage.style.width = `${S.uW}px`; stage.style.height = `${S.uH}px`;
    uCanvas.style.left = `${pad * S.sc}px`; uCanvas.style.top = `${pad * S.sc}px`;
    uCanvas.style.width = `${img.w * S.sc}px`; uCanvas.style.height = `${img.h * S.sc}px`;
    overlay.width = S.uW; overlay.height = S.uH;
    const vpx = vSide / Math.max(Ho, Wo);
    vCanvas.style.width = `${Math.round(Wo * vpx)}px`; vCanvas.style.height = `${Math.round(Ho * vpx)}px`;
    el(".stn-vfig").style.width = `${Math.max(Math.round(Wo * vpx), 120)}px`; // its notes wrap under it
    S.layoutWidth = cw;
  }
  layout();
  if (!S.uDrawn) { putPixels(uCanvas, img.w, img.h, imageRGBA(img)); S.uDrawn = true; }
  el(".stn-vtitle").textContent = `V (${Ho}×${Wo})`;
  root.dataset.kind = S.kind;

  // normalised source point ↔ stage pixel
  const toScreen = ([x, y]) => [(((x + 1) * img.w - 1) / 2 + 0.5 + pad) * S.sc,
                                (((y + 1) * img.h - 1) / 2 + 0.5 + pad) * S.sc];
  const fromScreen = (sx, sy) => [(2 * (sx / S.sc - pad - 0.5) + 1) / img.w - 1,
                                  (2 * (sy / S.sc - pad - 0.5) + 1) / img.h - 1];

  function render(params) { // → null, or why the parameters cannot be previewed
    const t0 = performance.now();
    const map = mapFor(S.kind, params);
    if (!map) return "the handles are collinear: no transform fits them";
    const g = sourceGrid(map, Ho, Wo);
    const bad = degenerate(g, Ho, Wo);
    if (bad) { drawOverlay(map, params, false); return bad; }
    putPixels(vCanvas, Wo, Ho, sampleBilinear(img, g, Ho, Wo));
    drawOverlay(map, params, true);
    S.showing = "preview";
    vsrc.textContent = "preview (in the browser: bilinear, zero padding)";
    root.dataset.params = JSON.stringify(params);
    root.dataset.frameMs = (performance.now() - t0).toFixed(2);
    return null;
  }

  function drawOverlay(map, params, ok) {
    const ctx = overlay.getContext("2d"), uW = S.uW, uH = S.uH;
    ctx.clearRect(0, 0, uW, uH);
    if (ok) {
      const lines = Math.min(16, Math.max(Ho, Wo)), pts = 24;
      ctx.strokeStyle = "rgba(0, 200, 255, 0.8)"; ctx.lineWidth = 1; ctx.beginPath();
      for (let l = 0; l <= lines; l++) {
        const s = -1 + 2 * l / lines;
        for (const horizontal of [true, false]) {
          for (let q = 0; q <= pts; q++) {
            const r = -1 + 2 * q / pts, [x, y] = toScreen(horizontal ? map(r, s) : map(s, r));
            if (q === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
          }
        }
      }
      ctx.stroke();
      ctx.strokeStyle = "#ff4b4b"; ctx.lineWidth = 2.5; ctx.beginPath();
      const edge = [], pts2 = 24;
      for (let q = 0; q <= pts2; q++) edge.push([-1 + 2 * q / pts2, -1]);
      for (let q = 0; q <= pts2; q++) edge.push([1, -1 + 2 * q / pts2]);
      for (let q = 0; q <= pts2; q++) edge.push([1 - 2 * q / pts2, 1]);
      for (let q = 0; q <= pts2; q++) edge.push([-1, 1 - 2 * q / pts2]);
      edge.forEach(([a, b], i) => { const [x, y] = toScreen(map(a, b)); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
      ctx.stroke();
    }
    for (const h of S.handles) {
      const hel = S.els[h.id], pos = h.pos(params), [x, y] = toScreen(pos);
      hel.style.left = `${x}px`; hel.style.top = `${y}px`;
      hel.setAttribute("aria-valuetext", `x ${pos[0].toFixed(3)}, y ${pos[1].toFixed(3)}`);
    }
  }

  function setMsg(text) { if (msg.textContent !== text) msg.textContent = text; }

  function showPreview() { // draw S.params; say why not if it cannot be drawn
    const why = render(S.params);
    if (why) setMsg(`The browser cannot preview these parameters: ${why}. V shows the server's result.`);
    else if (!S.refused) setMsg("");
    return why;
  }

  // ------------------------------------------------------------ sending the state to Python
  function commit() {
    S.dirty = false;
    S.nonce += 1;
    root.dataset.nonce = String(S.nonce);
    S.setStateValue("params", {kind: S.kind, values: S.params, sliders: S.values, exact: S.exact,
                               tps: S.tps, nonce: S.nonce});
  }

  function maybeAdopt() { // an interaction ended: catch up with a server state that arrived meanwhile
    if (S.data.version !== S.version && acked() && !busy()) { adopt(); syncControls(); showPreview(); drawServerV(); }
  }

  // ------------------------------------------------------------ controls (built per kind)
  function fmt(key, v) {
    const sp = S.specs[key];
    return sp ? Number(v).toFixed(decimals(sp.step)) : Number(v).toFixed(2);
  }

  function syncControls() { // show S.values / S.params / S.tps on the controls
    for (const [key, input] of Object.entries(S.inputs || {})) {
      let v = S.values[key];
      if (key === "tps_dx" || key === "tps_dy") v = S.tps.offsets[S.tps.k][key === "tps_dx" ? 0 : 1];
      if (v === undefined) continue;
      if (!(S.sliding === input)) input.value = String(v);
      input.setAttribute("value", String(v));
      S.outputs[key].textContent = key.startsWith("tps_d") ? Number(v).toFixed(2) : fmt(key, v);
    }
    if (S.tpsSelect) S.tpsSelect.value = String(S.tps.k);
    if (S.thetaInputs) {
      S.thetaInputs.forEach((inp, n) => {
        const v = S.params[Math.floor(n / 3)][n % 3].toFixed(4);
        if (inp !== S.typing) inp.value = v;
        inp.setAttribute("value", v);
      });
    }
  }

  function fromSliders() { // the sliders moved: the transform follows them
    S.params = paramsFromSliders(S.kind, S.values, S.tps);
    if (S.kind === "affine") S.exact = false;
    S.refused = false;
  }

  function sliderRow(parent, key, label, min, max, step, value, note) {
    const id = `stn-${S.uid}-${key}`;
    const lab = document.createElement("label");
    lab.htmlFor = id; lab.textContent = label;
    const input = document.createElement("input");
    Object.assign(input, {type: "range", id, min: String(min), max: String(max), step: String(step)});
    input.value = String(value);
    input.dataset.key = key;
    const out = document.createElement("output");
    out.htmlFor = id;
    parent.append(lab, input, out);
    if (note) {
      const p = document.createElement("div");
      p.className = "stn-note"; p.id = `${id}-note`; p.textContent = note;
      input.setAttribute("aria-describedby", p.id);
      parent.append(p);
    }
    input.addEventListener("pointerdown", () => { S.sliding = input; });
    input.addEventListener("input", () => { // every input event: preview at display rate
      const v = parseFloat(input.value);
      if (!Number.isFinite(v)) return;
      if (key === "tps_dx" || key === "tps_dy") {
        S.tps.offsets = S.tps.offsets.map((q, i) => (i === S.tps.k ? (key === "tps_dx" ? [v, q[1]] : [q[0], v]) : q));
      } else {
        S.values = {...S.values, [key]: v};
      }
      S.dirty = true;
      F.fromSliders();
      F.syncControls();
      F.showPreview();
    });
    input.addEventListener("change", () => { S.sliding = null; F.commit(); }); // release or key press
    S.inputs[key] = input; S.outputs[key] = out;
  }

  function buildControls() {
    const sliders = el(".stn-sliders"), presets = el(".stn-presets"), theta = el(".stn-theta");
    sliders.replaceChildren(); presets.replaceChildren(); theta.replaceChildren();
    S.inputs = {}; S.outputs = {}; S.thetaInputs = null; S.tpsSelect = null;
    const c = S.data.controls;
    if (c.presets) {
      for (const [name, vals] of Object.entries(c.presets)) {
        const b = document.createElement("button");
        b.type = "button"; b.textContent = name; b.dataset.preset = name;
        b.title = `set the sliders to “${name}”`;
        b.onclick = () => { S.values = {...S.values, ...vals}; F.fromSliders(); F.syncControls(); F.showPreview(); F.commit(); };
        presets.append(b);
      }
    }
    if (S.kind === "tps") {
      const id = `stn-${S.uid}-tpsk`, lab = document.createElement("label"), sel = document.createElement("select");
      lab.htmlFor = id; lab.textContent = "control point"; sel.id = id;
      for (let i = 0; i < 16; i++) {
        const o = document.createElement("option");
        o.value = String(i); o.textContent = `${i} (row ${Math.floor(i / 4) + 1}, col ${(i % 4) + 1})`;
        sel.append(o);
      }
      sel.title = "points are numbered row by row from the top-left";
      sel.onchange = () => { S.tps = {...S.tps, k: parseInt(sel.value, 10)}; F.syncControls(); F.commit(); };
      const out = document.createElement("span");
      sliders.append(lab, sel, out);
      S.tpsSelect = sel;
      const [lo, hi, st] = c.tps.range;
      sliderRow(sliders, "tps_dx", "point dx", lo, hi, st, 0, null);
      sliderRow(sliders, "tps_dy", "point dy", lo, hi, st, 0, null);
    }
    for (const sp of c.sliders) sliderRow(sliders, sp.key, sp.label, sp.min, sp.max, sp.step, sp.value, sp.note);
    if (S.kind === "affine") {
      const title = document.createElement("div");
      title.className = "stn-theta-title";
      title.textContent = "θ (editable; maps output → input, eq. (1))";
      theta.append(title);
      S.thetaInputs = [];
      for (let r = 0; r < 2; r++) {
        const rl = document.createElement("span"); rl.textContent = r ? "y\u209B =" : "x\u209B ="; theta.append(rl);
        for (let q = 0; q < 3; q++) {
          const inp = document.createElement("input");
          Object.assign(inp, {type: "number", step: "0.05"});
          inp.setAttribute("aria-label", `θ[${r},${q}]`);
          inp.addEventListener("input", () => { S.typing = inp; });
          inp.addEventListener("change", () => {
            S.typing = null;
            const t = [0, 1].map((i) => [0, 1, 2].map((j) => parseFloat(S.thetaInputs[3 * i + j].value)));
            if (!t.flat().every(Number.isFinite)) { F.syncControls(); return; }
            S.params = t; S.exact = true; S.refused = false;
            const d = decompose(t);
            if (d) S.values = slidersFromParams("affine", t, S.specs, S.values);
            F.syncControls(); F.showPreview();
            if (!d) F.setMsg("This θ cannot be shown on the sliders: its 2×2 part is singular.");
            F.commit();
          });
          inp.addEventListener("blur", () => { if (S.typing === inp) { S.typing = null; F.maybeAdopt(); } });
          theta.append(inp);
          S.thetaInputs.push(inp);
        }
      }
    }
    S.builtFor = S.data.version + S.kind;
    S.builtKind = S.kind; S.builtKeys = c.sliders.map((sp) => sp.key).join();
  }

  // ------------------------------------------------------------ handles on U
  function tryMove(h, x, y) { // refuse moves into a degenerate shape; NaN never leaves here
    if (!Number.isFinite(x) || !Number.isFinite(y)) return false;
    const candidate = h.move(S.params, x, y);
    const why = render(candidate);
    if (why) { S.refused = true; F.setMsg(`Move refused: ${why}.`); render(S.params); return false; }
    S.refused = false; F.setMsg("");
    S.params = candidate;
    if (S.kind === "affine") S.exact = true;
    if (S.kind === "tps") { // bake the bending strength into the offsets, then move this point
      const t = controlPoints(4);
      S.tps = {...S.tps, offsets: candidate.map((p, i) => [p[0] - t[i][0], p[1] - t[i][1]]),
               k: parseInt(h.id.slice(1), 10)};
      S.values = {...S.values, pg_tps_bend: 1};
    } else {
      S.values = slidersFromParams(S.kind, candidate, S.specs, S.values);
    }
    F.syncControls();
    return true;
  }

  function buildHandles() {
    S.handles = handlesFor(S.kind, S.params);
    const layer = el(".stn-handles");
    layer.replaceChildren();
    S.els = {};
    for (const h of S.handles) {
      const hel = document.createElement("div");
      hel.className = `stn-handle stn-${h.id === "rot" ? "rot" : h.id === "centre" ? "centre" : "corner"}`;
      hel.tabIndex = 0;
      hel.setAttribute("role", "slider");
      hel.setAttribute("aria-label", h.label);
      hel.dataset.handle = h.id;
      hel.title = `${h.label}: drag, or focus and use the arrow keys (Shift: larger steps)`;
      hel.onpointerdown = (e) => {
        e.preventDefault(); hel.focus(); S.drag = h;
        try { hel.setPointerCapture(e.pointerId); } catch (err) { /* synthetic pointers */ }
      };
      hel.onpointermove = (e) => {
        if (S.drag !== h) return;
        const r = stage.getBoundingClientRect();
        F.tryMove(h, ...F.fromScreen(e.clientX - r.left, e.clientY - r.top));
      };
      hel.onpointerup = hel.onpointercancel = (e) => {
        if (S.drag !== h) return;
        S.drag = null; F.commit();
        try { hel.releasePointerCapture(e.pointerId); } catch (err) { /* already released */ }
      };
      hel.onkeydown = (e) => {
        const d = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]}[e.key];
        if (!d) return;
        e.preventDefault();
        const step = KEY_STEP * (e.shiftKey ? 5 : 1), [x, y] = h.pos(S.params);
        if (F.tryMove(h, x + d[0] * step, y + d[1] * step)) F.commit();
      };
      layer.appendChild(hel);
      S.els[h.id] = hel;
    }
    S.handlesKind = S.kind; S.handleCount = S.params.length;
  }

  // ------------------------------------------------------------ the server's V
  function drawServerV() { // once the browser's state and the server's agree, V is the server's
    const d = S.data;
    if (!d.server_v || d.version !== S.version || !acked() || busy()) return;
    const sv = decodeImage(d.server_v);
    putPixels(vCanvas, sv.w, sv.h, imageRGBA(sv));
    S.showing = "server";
    vsrc.textContent = d.server_note || "computed by stn_explore (server)";
    root.dataset.confirmed = d.version;
  }

  Object.assign(F, {render, showPreview, setMsg, commit, maybeAdopt, syncControls, fromSliders, tryMove,
                    fromScreen, drawServerV});

  // ------------------------------------------------------------ this render
  // rebuild controls/handles only for a new kind (keeps keyboard focus across reruns)
  const keys = S.data.controls.sliders.map((sp) => sp.key).join();
  if (S.builtKind !== S.kind || S.builtKeys !== keys) buildControls();
  if (S.handlesKind !== S.kind || S.handleCount !== S.params.length) buildHandles();
  syncControls();
  showPreview();
  drawServerV();

  if (!S.listening) { // interactions that end outside the component; resizing
    S.listening = true;
    window.addEventListener("pointerup", () => {
      if (root.__stn.sliding) { root.__stn.sliding = null; root.__stn.fn.maybeAdopt(); }
    });
    new ResizeObserver(() => {
      const st = root.__stn, w = el(".stn-views").clientWidth;
      if (st.layoutWidth !== undefined && Math.abs(w - st.layoutWidth) > 1 && st.rerender) st.rerender();
    }).observe(el(".stn-views"));
  }
  S.rerender = () => { layout(); showPreview(); drawServerV(); };
  if (!root.dataset.painted) root.dataset.firstV = data.server_v ? "server" : "preview"; // (cold start test)
  root.dataset.painted = "1";
  if (data.warm_up && S.warmed !== data.version) { // first view drawn: now let the server load torch
    S.warmed = data.version;
    requestAnimationFrame(() => setTimeout(() => setTriggerValue("warm", Date.now()), 0));
  }
}
