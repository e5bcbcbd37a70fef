// Direct-manipulation editor for the θ playground (Streamlit components v2, no build step).
//
// Shows U with the sampling region T_θ(G) and the output V on canvases. Handles can be
// dragged (pointer events: mouse, touch, pen) or moved with the arrow keys when focused;
// on every move the grid and V are recomputed here (bilinear, zero padding — a preview of
// stn_explore.sample) and redrawn; on release the parameters go to Python, which stays the
// source of truth. Convention (CONVENTIONS.md): normalised [-1, 1], align_corners=False,
// x right, y down, transforms map output (target) → input (source).

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

export default function (component) {
  const {data, parentElement, setStateValue} = component;
  const root = parentElement.querySelector(".stn-editor");
  let S = root.__stn;
  if (!S) { S = root.__stn = {version: null}; }
  const fresh = S.version !== data.version;
  S.data = data;
  if (fresh) { // Python changed the parameters (or this is the first render): adopt them,
    S.version = data.version; // except mid-drag, where the pointer wins until release
    if (!S.drag) {
      S.kind = data.kind;
      S.params = JSON.parse(JSON.stringify(data.params));
    }
    S.img = decodeImage(data.image);
  }
  // rebuild the handle elements only for a new kind (keeps keyboard focus across reruns)
  const rebuild = S.builtKind !== S.kind || S.builtCount !== S.params.length;
  if (rebuild) S.handles = handlesFor(S.kind, S.params);
  const img = S.img, pad = data.pad, sc = data.px, [Ho, Wo] = data.out;
  const uW = Math.round((img.w + 2 * pad) * sc), uH = Math.round((img.h + 2 * pad) * sc);
  const stage = root.querySelector(".stn-u"), uCanvas = root.querySelector("canvas.stn-u-img");
  const overlay = root.querySelector("canvas.stn-overlay"), vCanvas = root.querySelector("canvas.stn-v");
  const msg = root.querySelector(".stn-msg");
  stage.style.width = `${uW}px`; stage.style.height = `${uH}px`;
  uCanvas.style.left = `${pad * sc}px`; uCanvas.style.top = `${pad * sc}px`;
  uCanvas.style.width = `${img.w * sc}px`; uCanvas.style.height = `${img.h * sc}px`;
  overlay.width = uW; overlay.height = uH;
  vCanvas.style.width = `${Wo * data.vpx}px`; vCanvas.style.height = `${Ho * data.vpx}px`;
  if (fresh) putPixels(uCanvas, img.w, img.h, imageRGBA(img));
  root.dataset.kind = S.kind;

  // normalised source point ↔ stage pixel
  const toScreen = ([x, y]) => [(((x + 1) * img.w - 1) / 2 + 0.5 + pad) * sc,
                                (((y + 1) * img.h - 1) / 2 + 0.5 + pad) * sc];
  const fromScreen = (sx, sy) => [(2 * (sx / sc - pad - 0.5) + 1) / img.w - 1,
                                  (2 * (sy / sc - pad - 0.5) + 1) / img.h - 1];

  function render(params) { // → null, or why the parameters are refused
    const t0 = performance.now();
    const map = mapFor(S.kind, params);
    if (!map) return "the handles are collinear: no transform fits them";
    const g = sourceGrid(map, Ho, Wo);
    const bad = degenerate(g, Ho, Wo);
    if (bad) return bad;
    putPixels(vCanvas, Wo, Ho, sampleBilinear(img, g, Ho, Wo));
    drawOverlay(map, params);
    root.dataset.params = JSON.stringify(params);
    root.dataset.frameMs = (performance.now() - t0).toFixed(2);
    return null;
  }

  function drawOverlay(map, params) {
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, uW, uH);
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
    const edge = [];
    for (let q = 0; q <= pts; q++) edge.push([-1 + 2 * q / pts, -1]);
    for (let q = 0; q <= pts; q++) edge.push([1, -1 + 2 * q / pts]);
    for (let q = 0; q <= pts; q++) edge.push([1 - 2 * q / pts, 1]);
    for (let q = 0; q <= pts; q++) edge.push([-1, 1 - 2 * q / pts]);
    edge.forEach(([a, b], i) => { const [x, y] = toScreen(map(a, b)); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
    ctx.stroke();
    for (const h of S.handles) {
      const el = S.els[h.id], [x, y] = toScreen(h.pos(params));
      el.style.left = `${x}px`; el.style.top = `${y}px`;
      const [nx, ny] = h.pos(params);
      el.setAttribute("aria-valuetext", `x ${nx.toFixed(3)}, y ${ny.toFixed(3)}`);
    }
  }

  function tryMove(h, x, y) { // refuse moves into a degenerate shape; NaN never leaves here
    if (!Number.isFinite(x) || !Number.isFinite(y)) return false;
    const candidate = h.move(S.params, x, y);
    const why = render(candidate);
    if (why) { msg.textContent = `Move refused: ${why}.`; render(S.params); return false; }
    msg.textContent = "";
    S.params = candidate;
    return true;
  }

  function commit() {
    S.nonce = (S.nonce || 0) + 1;
    setStateValue("params", {kind: S.kind, values: S.params, nonce: S.nonce});
  }

  if (rebuild) {
    const layer = root.querySelector(".stn-handles");
    layer.replaceChildren();
    S.els = {};
    for (const h of S.handles) {
      const el = document.createElement("div");
      el.className = `stn-handle stn-${h.id === "rot" ? "rot" : h.id === "centre" ? "centre" : "corner"}`;
      el.tabIndex = 0;
      el.setAttribute("role", "slider");
      el.setAttribute("aria-label", h.label);
      el.dataset.handle = h.id;
      el.title = `${h.label}: drag, or focus and use the arrow keys (Shift: larger steps)`;
      el.onpointerdown = (e) => {
        e.preventDefault(); el.focus(); S.drag = h;
        try { el.setPointerCapture(e.pointerId); } catch (err) { /* synthetic pointers */ }
      };
      el.onpointermove = (e) => {
        if (S.drag !== h) return;
        const r = stage.getBoundingClientRect();
        tryMove(h, ...fromScreen(e.clientX - r.left, e.clientY - r.top));
      };
      el.onpointerup = el.onpointercancel = (e) => {
        if (S.drag !== h) return;
        S.drag = null; commit();
        try { el.releasePointerCapture(e.pointerId); } catch (err) { /* already released */ }
      };
      el.onkeydown = (e) => {
        const d = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]}[e.key];
        if (!d) return;
        e.preventDefault();
        const step = KEY_STEP * (e.shiftKey ? 5 : 1), [x, y] = h.pos(S.params);
        if (tryMove(h, x + d[0] * step, y + d[1] * step)) commit();
      };
      layer.appendChild(el);
      S.els[h.id] = el;
    }
    S.builtKind = S.kind; S.builtCount = S.params.length;
  }
  const why = render(S.params);
  msg.textContent = why ? `These parameters cannot be previewed: ${why}.` : msg.textContent;
  if (fresh && !S.drag && data.server_v) { // show the V that the server computed (stn_explore)
    const sv = decodeImage(data.server_v);
    putPixels(vCanvas, sv.w, sv.h, imageRGBA(sv));
    root.dataset.confirmed = data.version;
  }
}
