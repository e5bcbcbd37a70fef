// A drawing pad for one digit (Streamlit components v2, no build step).
//
// White round strokes on black, as MNIST. When a stroke ends (pointer up), the drawing is
// downscaled to data.out × data.out grayscale and sent to Python as the state value
// "drawing": {w, h, pixels (base64 uint8, row-major), nonce} — or {empty: true} after Clear.

function encode(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return btoa(s);
}

function blank(ctx, size) {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, size, size);
}

export default function (component) {
  const {data, parentElement, setStateValue} = component;
  const root = parentElement.querySelector(".stn-pad");
  const canvas = root.querySelector("canvas.stn-pad-canvas");
  const msg = root.querySelector(".stn-pad-msg");
  const size = data.size, out = data.out;
  let S = root.__stn;
  if (S) { S.data = data; return; } // already set up: the strokes live in the canvas
  S = root.__stn = {data, drawing: false, nonce: 0, strokes: 0};
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(size * dpr); canvas.height = Math.round(size * dpr);
  canvas.style.width = `${size}px`; canvas.style.height = `${size}px`;
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  blank(ctx, size);
  if (data.restore && data.restore.pixels) { // the session's drawing, after a page remount
    const r = data.restore, bin = atob(r.pixels), small = document.createElement("canvas");
    small.width = r.w; small.height = r.h;
    const img = small.getContext("2d").createImageData(r.w, r.h);
    for (let n = 0; n < r.w * r.h; n++) {
      const v = bin.charCodeAt(n);
      img.data[4 * n] = img.data[4 * n + 1] = img.data[4 * n + 2] = v; img.data[4 * n + 3] = 255;
    }
    small.getContext("2d").putImageData(img, 0, 0);
    ctx.drawImage(small, 0, 0, size, size);
    S.strokes = 1;
  }
  root.dataset.strokes = String(S.strokes);
  msg.textContent = S.strokes ? "" : "Draw one digit, as large as the square.";

  function send() {
    const small = document.createElement("canvas");
    small.width = out; small.height = out;
    const sctx = small.getContext("2d");
    sctx.imageSmoothingEnabled = true; sctx.imageSmoothingQuality = "high";
    sctx.drawImage(canvas, 0, 0, out, out);
    const rgba = sctx.getImageData(0, 0, out, out).data, gray = new Uint8Array(out * out);
    for (let n = 0; n < out * out; n++) gray[n] = rgba[4 * n];
    S.nonce += 1;
    setStateValue("drawing", {w: out, h: out, pixels: encode(gray), nonce: S.nonce});
  }

  const at = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  canvas.onpointerdown = (e) => {
    e.preventDefault();
    S.drawing = true;
    try { canvas.setPointerCapture(e.pointerId); } catch (err) { /* synthetic pointers */ }
    const [x, y] = at(e);
    ctx.strokeStyle = "#fff"; ctx.fillStyle = "#fff";
    ctx.lineWidth = S.data.brush; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.arc(x, y, S.data.brush / 2, 0, 2 * Math.PI); ctx.fill(); // a dot for a tap
    ctx.beginPath(); ctx.moveTo(x, y);
    msg.textContent = "";
  };
  canvas.onpointermove = (e) => {
    if (!S.drawing) return;
    const [x, y] = at(e);
    ctx.lineTo(x, y); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(x, y);
  };
  canvas.onpointerup = canvas.onpointercancel = (e) => {
    if (!S.drawing) return;
    S.drawing = false;
    try { canvas.releasePointerCapture(e.pointerId); } catch (err) { /* already released */ }
    S.strokes += 1;
    root.dataset.strokes = String(S.strokes);
    send();
  };
  root.querySelector(".stn-pad-clear").onclick = () => {
    blank(ctx, size);
    S.strokes = 0;
    root.dataset.strokes = "0";
    msg.textContent = "Cleared: draw one digit, as large as the square.";
    S.nonce += 1;
    setStateValue("drawing", {empty: true, nonce: S.nonce});
  };
}
