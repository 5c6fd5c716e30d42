// The latent-space explorer of vae-tutorial (notebook 11b_explorer): the 2-D VAE and CVAE of lesson 11 run in the
// reader's browser. `explorer-data.js` (written by vae_tutorial.explorer.write_explorer) defines window.VAE_EXPLORER_DATA:
// per model the Linear layers of encoder and decoder (float16, little-endian, base64), the posterior means of test
// digits, and a few test digits. No network, no library: the forward passes are the loops below.
(function () {
  'use strict';
  const TAB10 = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  const ZMAX = 4;        // the latent plane shows z in [-ZMAX, ZMAX]^2
  const SIDE = 28;       // MNIST images are 28 x 28

  // ------------------------------------------------------------------ decoding the data file
  function halfToFloat(h) {  // IEEE 754 half precision -> number
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
    if (e === 0) return s * f * Math.pow(2, -24);                 // subnormal
    if (e === 31) return f ? NaN : s * Infinity;
    return s * (1 + f / 1024) * Math.pow(2, e - 15);
  }
  function bytes(b64) { const bin = atob(b64), out = new Uint8Array(bin.length); for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i); return out; }
  function halves(b64) {
    const b = bytes(b64), out = new Float32Array(b.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = halfToFloat(b[2 * i] | (b[2 * i + 1] << 8));
    return out;
  }
  function layers(spec) { return spec.map(l => ({n_in: l.n_in, n_out: l.n_out, w: halves(l.weight), b: halves(l.bias)})); }

  // ------------------------------------------------------------------ the forward passes (models.py's MLPEncoder/MLPDecoder)
  function linear(l, x) {  // y = W x + b, W stored row-major (n_out, n_in) as torch.nn.Linear keeps it
    const y = new Float32Array(l.n_out);
    for (let j = 0; j < l.n_out; j++) {
      let s = l.b[j];
      const row = j * l.n_in;
      for (let i = 0; i < l.n_in; i++) s += l.w[row + i] * x[i];
      y[j] = s;
    }
    return y;
  }
  function mlp(ls, x) {  // Linear -> ReLU -> ... -> Linear
    for (let k = 0; k < ls.length; k++) {
      x = linear(ls[k], x);
      if (k < ls.length - 1) for (let i = 0; i < x.length; i++) x[i] = Math.max(0, x[i]);
    }
    return x;
  }
  function withLabel(x, label, K) {  // models.py's with_label: [x, one-hot(label)]
    if (!K) return Float32Array.from(x);
    const out = new Float32Array(x.length + K);
    out.set(x); out[x.length + label] = 1;
    return out;
  }
  function encode(m, pixels, label) {  // q(z|x[,y]) = N(mean, diag exp(logVar)): the encoder's output, chunked in two
    const h = mlp(m.encoder, withLabel(pixels, label, m.n_classes)), d = m.latent_dim;
    return {mean: Array.from(h.slice(0, d)), logVar: Array.from(h.slice(d, 2 * d))};
  }
  function decode(m, z, label) {  // Bernoulli means sigmoid(logits) of p(x|z[,y])
    const l = mlp(m.decoder, withLabel(z, label, m.n_classes));
    return l.map(v => v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));
  }

  // ------------------------------------------------------------------ a drawing -> an MNIST-like 28 x 28 image
  // MNIST's recipe: the digit's bounding box scaled (aspect kept) into 20 x 20 by averaging, then placed in 28 x 28
  // so that its centre of mass is the image centre.
  function toMnist(gray, W, H) {
    let x0 = W, y0 = H, x1 = -1, y1 = -1;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (gray[y * W + x] > 0.05) {
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
    }
    if (x1 < 0) return null;
    const w = x1 - x0 + 1, h = y1 - y0 + 1, s = Math.max(w, h) / 20;
    const tw = Math.max(1, Math.round(w / s)), th = Math.max(1, Math.round(h / s)), box = new Float32Array(tw * th);
    for (let j = 0; j < th; j++) for (let i = 0; i < tw; i++) {
      const ya = y0 + Math.floor(j * s), yb = Math.max(ya + 1, Math.min(y1 + 1, y0 + Math.floor((j + 1) * s)));
      const xa = x0 + Math.floor(i * s), xb = Math.max(xa + 1, Math.min(x1 + 1, x0 + Math.floor((i + 1) * s)));
      let sum = 0;
      for (let y = ya; y < yb; y++) for (let x = xa; x < xb; x++) sum += gray[y * W + x];
      box[j * tw + i] = sum / ((yb - ya) * (xb - xa));
    }
    let mass = 0, cx = 0, cy = 0;
    for (let j = 0; j < th; j++) for (let i = 0; i < tw; i++) { const v = box[j * tw + i]; mass += v; cx += v * (i + 0.5); cy += v * (j + 0.5); }
    const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
    const ox = clamp(Math.round(SIDE / 2 - cx / mass), SIDE - tw), oy = clamp(Math.round(SIDE / 2 - cy / mass), SIDE - th);
    const img = new Float32Array(SIDE * SIDE);
    for (let j = 0; j < th; j++) for (let i = 0; i < tw; i++) img[(oy + j) * SIDE + ox + i] = Math.min(1, box[j * tw + i]);
    return img;
  }

  // ------------------------------------------------------------------ drawing on canvases
  function showImage(canvas, pixels) {  // 28 x 28 values in [0, 1], white ink on black as MNIST stores them
    const ctx = canvas.getContext('2d'), im = ctx.createImageData(SIDE, SIDE);
    for (let i = 0; i < SIDE * SIDE; i++) {
      const v = Math.round(255 * (pixels ? pixels[i] : 0));
      im.data[4 * i] = im.data[4 * i + 1] = im.data[4 * i + 2] = v; im.data[4 * i + 3] = 255;
    }
    ctx.putImageData(im, 0, 0);
  }

  function Explorer(root, data) {
    const $ = sel => root.querySelector(sel);
    const models = {};
    for (const [name, spec] of Object.entries(data.models)) {
      models[name] = Object.assign({}, spec, {encoder: layers(spec.encoder), decoder: layers(spec.decoder),
                                              means: halves(spec.scatter.means), labels: bytes(spec.scatter.labels)});
    }
    const digits = {pixels: bytes(data.digits.pixels), labels: bytes(data.digits.labels), n: data.digits.n};
    const plane = $('.vx-plane'), board = $('.vx-board'), pctx = plane.getContext('2d'), bctx = board.getContext('2d');
    const st = {model: Object.keys(models)[0], label: 0, z: [0, 0], decoded: null, input: null, posterior: null,
                recon: null, digit: null};
    const S = plane.width, toPx = z => [(z[0] + ZMAX) / (2 * ZMAX) * S, (ZMAX - z[1]) / (2 * ZMAX) * S];
    const toZ = (px, py) => [px / S * 2 * ZMAX - ZMAX, ZMAX - py / S * 2 * ZMAX];
    const m = () => models[st.model];
    const labelOf = () => m().n_classes ? st.label : 0;

    const backgrounds = {};                              // per model: grid, test digits and prior, drawn once
    function background(M) {
      const bg = document.createElement('canvas'); bg.width = bg.height = S;
      const ctx = bg.getContext('2d');
      ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, S, S);
      ctx.strokeStyle = '#eee'; ctx.lineWidth = 1; ctx.fillStyle = '#666'; ctx.font = '11px sans-serif';
      for (let t = -ZMAX + 1; t < ZMAX; t++) {           // grid and tick labels
        const [gx, gy] = toPx([t, t]);
        ctx.beginPath(); ctx.moveTo(gx, 0); ctx.lineTo(gx, S); ctx.moveTo(0, gy); ctx.lineTo(S, gy); ctx.stroke();
        ctx.fillText(String(t), gx + 2, S - 4); ctx.fillText(String(t), 3, gy - 2);
      }
      ctx.fillText('z\u2081 \u2192', S - 34, S - 16); ctx.fillText('z\u2082 \u2191', 20, 12);
      for (let i = 0; i < M.labels.length; i++) {        // posterior means of the test digits, coloured by label
        const [x, y] = toPx([M.means[2 * i], M.means[2 * i + 1]]);
        ctx.fillStyle = TAB10[M.labels[i] % 10]; ctx.globalAlpha = 0.55;
        ctx.beginPath(); ctx.arc(x, y, 1.8, 0, 2 * Math.PI); ctx.fill();
      }
      ctx.globalAlpha = 1; ctx.setLineDash([5, 4]); ctx.strokeStyle = '#333';
      const [cx, cy] = toPx([0, 0]);
      for (const r of [1, 2, 3]) {                        // the prior N(0, I): contours at 1, 2, 3 standard deviations
        ctx.beginPath(); ctx.arc(cx, cy, r / (2 * ZMAX) * S, 0, 2 * Math.PI); ctx.stroke();
        ctx.fillStyle = '#333'; ctx.fillText(r + '\u03c3', cx + r / (2 * ZMAX) * S * 0.707 + 2, cy - r / (2 * ZMAX) * S * 0.707 - 2);
      }
      return bg;
    }
    function drawPlane() {  // the model's background, then q(z|x) and the decoded point on top
      const ctx = pctx;
      ctx.drawImage(backgrounds[st.model] = backgrounds[st.model] || background(m()), 0, 0);
      if (st.posterior) {                                 // q(z|x): mean and the 1- and 2-sigma ellipses
        const [mx, my] = toPx(st.posterior.mean), sx = st.posterior.sigma.map(s => s / (2 * ZMAX) * S);
        ctx.strokeStyle = '#d00'; ctx.fillStyle = 'rgba(221,0,0,0.12)';
        for (const k of [2, 1]) { ctx.beginPath(); ctx.ellipse(mx, my, Math.max(k * sx[0], 0.5), Math.max(k * sx[1], 0.5), 0, 0, 2 * Math.PI); ctx.fill(); ctx.lineWidth = 2; ctx.stroke(); }
        ctx.fillStyle = '#d00'; ctx.beginPath(); ctx.arc(mx, my, 3.5, 0, 2 * Math.PI); ctx.fill();
      }
      const [zx, zy] = toPx(st.z);                        // the decoded point
      ctx.strokeStyle = '#000'; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(zx - 8, zy); ctx.lineTo(zx + 8, zy); ctx.moveTo(zx, zy - 8); ctx.lineTo(zx, zy + 8); ctx.stroke();
    }
    function fmt(v) { return (v >= 0 ? '+' : '\u2212') + Math.abs(v).toFixed(2); }
    function update() {  // the decoder at the pointer's z; the plane
      st.decoded = decode(m(), st.z, labelOf());
      showImage($('.vx-decoded'), st.decoded);
      $('.vx-z').textContent = `z = (${fmt(st.z[0])}, ${fmt(st.z[1])})` + (m().n_classes ? `, label y = ${st.label}` : '');
      drawPlane();
    }
    function infer() {  // the encoder on the input (when the input, the model or the label changed), then the rest
      if (st.input) {
        const q = encode(m(), st.input, labelOf());
        st.posterior = {mean: q.mean, sigma: q.logVar.map(v => Math.exp(v / 2))};
        st.recon = decode(m(), q.mean, labelOf());
        $('.vx-q').textContent = `q(z|x): mean (${fmt(q.mean[0])}, ${fmt(q.mean[1])}), standard deviations (${st.posterior.sigma.map(s => s.toFixed(3)).join(', ')})`;
      } else { st.posterior = null; st.recon = null; $('.vx-q').textContent = 'q(z|x): draw a digit or pick a test digit'; }
      showImage($('.vx-input'), st.input); showImage($('.vx-recon'), st.recon);
      update();
    }
    function setModel(name) {
      if (!models[name]) throw new Error('no model ' + name + '; the models are ' + Object.keys(models).join(', '));
      st.model = name;
      root.querySelectorAll('.vx-model').forEach(b => b.setAttribute('aria-pressed', String(b.dataset.model === name)));
      $('.vx-labels').style.visibility = m().n_classes ? 'visible' : 'hidden';
      $('.vx-about').textContent = m().about;
      infer();
    }
    function setLabel(k) {
      st.label = k;
      root.querySelectorAll('.vx-label').forEach(b => b.setAttribute('aria-pressed', String(Number(b.dataset.label) === k)));
      infer();
    }
    function moveTo(z) { st.z = [Math.max(-ZMAX, Math.min(ZMAX, z[0])), Math.max(-ZMAX, Math.min(ZMAX, z[1]))]; update(); }
    function pickDigit(i) {  // a test digit as the encoder's input; it is shown on the drawing board too
      const n = ((i % digits.n) + digits.n) % digits.n;
      st.digit = n; st.input = Array.from(digits.pixels.slice(n * SIDE * SIDE, (n + 1) * SIDE * SIDE), v => v / 255);
      if (m().n_classes) st.label = digits.labels[n];
      const im = bctx.createImageData(board.width, board.height), f = board.width / SIDE;
      for (let y = 0; y < board.height; y++) for (let x = 0; x < board.width; x++) {
        const v = Math.round(255 * st.input[Math.floor(y / f) * SIDE + Math.floor(x / f)]), p = 4 * (y * board.width + x);
        im.data[p] = im.data[p + 1] = im.data[p + 2] = v; im.data[p + 3] = 255;
      }
      bctx.putImageData(im, 0, 0);
      $('.vx-digit').textContent = `test digit #${n} (a ${digits.labels[n]})`;
      setLabel(m().n_classes ? digits.labels[n] : st.label);
    }
    function clearBoard() {
      bctx.fillStyle = '#000'; bctx.fillRect(0, 0, board.width, board.height);
      st.input = null; st.digit = null; $('.vx-digit').textContent = ''; infer();
    }
    function readBoard() {  // the drawing, as MNIST preprocesses a scanned digit
      const d = bctx.getImageData(0, 0, board.width, board.height).data, g = new Float32Array(board.width * board.height);
      for (let i = 0; i < g.length; i++) g[i] = d[4 * i] / 255;
      const img = toMnist(g, board.width, board.height);
      st.input = img ? Array.from(img) : null; st.digit = null; $('.vx-digit').textContent = img ? 'your drawing' : '';
      infer();
    }

    // pointer on the latent plane: decode where it is; keys move it too
    const planeZ = e => { const r = plane.getBoundingClientRect(); return toZ((e.clientX - r.left) * S / r.width, (e.clientY - r.top) * S / r.height); };
    plane.addEventListener('pointermove', e => moveTo(planeZ(e)));
    plane.addEventListener('pointerdown', e => moveTo(planeZ(e)));
    plane.addEventListener('keydown', e => {
      const step = 0.1, d = {ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step]}[e.key];
      if (d) { e.preventDefault(); moveTo([st.z[0] + d[0], st.z[1] + d[1]]); }
    });
    // drawing: white strokes on the black board; the encoder runs as the stroke grows
    let drawing = false, last = null, pending = false;
    const boardXY = e => { const r = board.getBoundingClientRect(); return [(e.clientX - r.left) * board.width / r.width, (e.clientY - r.top) * board.height / r.height]; };
    board.addEventListener('pointerdown', e => {
      if (st.digit !== null) { bctx.fillStyle = '#000'; bctx.fillRect(0, 0, board.width, board.height); st.digit = null; }
      drawing = true; last = boardXY(e); board.setPointerCapture && board.setPointerCapture(e.pointerId);
    });
    board.addEventListener('pointermove', e => {
      if (!drawing) return;
      const p = boardXY(e);
      bctx.strokeStyle = '#fff'; bctx.lineWidth = board.width / 12; bctx.lineCap = bctx.lineJoin = 'round';
      bctx.beginPath(); bctx.moveTo(last[0], last[1]); bctx.lineTo(p[0], p[1]); bctx.stroke(); last = p;
      if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; readBoard(); }); }
    });
    const stop = () => { if (drawing) { drawing = false; readBoard(); } };
    board.addEventListener('pointerup', stop); board.addEventListener('pointerleave', stop);

    // buttons
    root.querySelectorAll('.vx-model').forEach(b => b.addEventListener('click', () => setModel(b.dataset.model)));
    root.querySelectorAll('.vx-label').forEach(b => b.addEventListener('click', () => setLabel(Number(b.dataset.label))));
    $('.vx-clear').addEventListener('click', clearBoard);
    $('.vx-pick').addEventListener('click', () => pickDigit(st.digit === null ? 0 : st.digit + 1));

    $('.vx-legend').innerHTML = TAB10.map((c, k) => `<span style="--c:${c}">${k}</span>`).join('');
    clearBoard(); setModel(st.model); setLabel(0); moveTo([0, 0]);
    root.classList.add('vx-ready');

    // The hook the browser tests use (and a reader's console): the same functions the page runs.
    return {
      ready: true, models: () => Object.keys(models), digits: digits.n,
      encode: (name, pixels, label) => encode(models[name], pixels, label || 0),
      decode: (name, z, label) => Array.from(decode(models[name], z, label || 0)),
      setModel, setLabel, moveTo, pickDigit, clear: clearBoard,
      planePoint: z => { const r = plane.getBoundingClientRect(), [x, y] = toPx(z); return {x: r.left + x * r.width / S, y: r.top + y * r.height / S}; },
      state: () => JSON.parse(JSON.stringify({model: st.model, label: st.label, z: st.z, decoded: Array.from(st.decoded || []),
                                              input: st.input, posterior: st.posterior, digit: st.digit})),
    };
  }

  function start() {
    const root = document.querySelector('.vae-explorer');
    if (!root) return;
    if (!window.VAE_EXPLORER_DATA) {
      root.querySelector('.vx-status').textContent = 'The explorer\'s data file (explorer-data.js) did not load: build the ' +
        'site with python tools/build_docs.py, or write the page and its files with vae-tutorial explore CHECKPOINT --out DIR.';
      return;
    }
    window.vaeExplorer = Explorer(root, window.VAE_EXPLORER_DATA);
    root.querySelector('.vx-status').textContent = '';
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
