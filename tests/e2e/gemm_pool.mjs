// Unit test of src/models/gemm_pool.js (the browser's helper threads for matrix products), run in
// Node with worker_threads standing in for the browser's workers, on the helper module the web
// build compiled (gemm_pool.wasm, build.rs): a product split over three helpers (more than the
// 2-core machines the browser tests run on have) against a float64 product, an odd number of rows
// and a bias per row (each helper's offsets); an attention's groups and a depthwise convolution's
// channels the same way; then a helper that traps: the caller is told, and
// the pool is dropped so that later products stay on the caller's thread; and helpers that never
// start: the wait for them ends, once.
//   node tests/e2e/gemm_pool.mjs   (after scripts/build-web.sh)
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker as NodeWorker } from 'node:worker_threads';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

function helperModule() {
  const found = [];
  const walk = (dir, depth) => {
    for (const e of fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }) : []) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && depth < 4) walk(p, depth + 1);
      else if (e.name === 'gemm_pool.wasm') found.push(p);
    }
  };
  walk(path.join(ROOT, 'target/wasm32-unknown-unknown'), 0);
  if (!found.length) throw new Error('no gemm_pool.wasm under target/wasm32-unknown-unknown: build the app first');
  found.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
  return fs.readFileSync(found[0]);
}

// What gemm_pool.js needs of a browser worker's global scope.
const blobs = new Map();
globalThis.self = globalThis;
globalThis.WorkerGlobalScope = Object;
globalThis.crossOriginIsolated = true;
globalThis.Blob = class { constructor(parts) { this.text = parts.join(''); } };
URL.createObjectURL = (blob) => { const url = `blob:test/${blobs.size}`; blobs.set(url, blob.text); return url; };
let starting = true; // false: workers are created but never run (as where a policy blocks them)
globalThis.Worker = class {
  constructor(url) {
    if (!starting) return;
    const prelude = "const { parentPort } = require('node:worker_threads'); let onmessage;";
    const epilogue = 'parentPort.on("message", (data) => onmessage({ data }));';
    this.w = new NodeWorker(`${prelude}\n${blobs.get(url)}\n${epilogue}`, { eval: true });
  }
  postMessage(m) { this.w?.postMessage(m); }
  terminate() { this.w?.terminate(); }
};

const POOL_JS = pathToFileURL(path.join(ROOT, 'src/models/gemm_pool.js')).href;
const bytes = helperModule();
// Node 20's V8 has relaxed SIMD behind a flag (later ones ship it): run again with it.
if (!WebAssembly.validate(bytes) && !process.execArgv.includes('--experimental-wasm-relaxed-simd')) {
  const { spawnSync } = await import('node:child_process');
  const args = ['--experimental-wasm-relaxed-simd', new URL(import.meta.url).pathname];
  process.exit(spawnSync(process.execPath, args, { stdio: 'inherit' }).status ?? 1);
}
const pool = await import(POOL_JS);
let failures = 0;
const check = (ok, what) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`); if (!ok) failures++; };

let seed = 5;
const rnd = () => { seed = (seed * 1664525 + 1013904223) >>> 0; return (seed >>> 8) / (1 << 24) - 0.5; };
const [m, k, n] = [37, 300, 45];
const a = Float32Array.from({ length: m * k }, rnd);
const b = Float32Array.from({ length: k * n }, rnd);
const bias = Float32Array.from({ length: m }, rnd);
const erf = (x) => { // Abramowitz & Stegun 7.1.26, |error| < 1.5e-7
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return Math.sign(x) * y;
};

pool.medseg_pool_use(bytes, 3);
await pool.medseg_pool_started(10_000);
check(pool.medseg_pool_helpers() === 3, `three helpers ready (${pool.medseg_pool_helpers()})`);

// rhs kind 0 (rows), bias kind 1 (per row), m, k, n, no im2col image.
check(pool.medseg_pool_start([0, 1, m, k, n, 0, 0, 0, 0, 0], a, b, bias), 'a product handed to the helpers');
const c = new Float32Array(m * n).fill(NaN);
check(pool.medseg_pool_finish(c), 'the helpers finished');
let worst = 0;
for (let i = 0; i < m; i++) {
  for (let j = 0; j < n; j++) {
    let s = bias[i];
    for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
    worst = Math.max(worst, Math.abs(s - c[i * n + j]));
  }
}
check(worst < 1e-4, `every row of C right, shared over three helpers (max error ${worst.toExponential(2)})`);

// The same product with GELU after it (the last word), which each helper applies to its rows.
{
  check(pool.medseg_pool_start([0, 1, m, k, n, 0, 0, 0, 0, 0, 1], a, b, bias), 'a product with GELU handed over');
  const g = new Float32Array(m * n).fill(NaN);
  check(pool.medseg_pool_finish(g), 'the helpers finished it');
  let worstG = 0;
  for (let i = 0; i < m * n; i++) {
    const x = c[i];
    worstG = Math.max(worstG, Math.abs(0.5 * x * (1 + erf(x / Math.SQRT2)) - g[i]));
  }
  check(worstG < 1e-5, `every row of C is GELU of the product (max error ${worstG.toExponential(2)})`);
}

// An attention's groups over three helpers: 7 groups of 5 queries, 6 keys, depth 4, bias per head
// (2 heads; the groups handed over start at index 1, so helper i's heads follow from its first).
{
  const [G, qn, km, d, heads, first, scale] = [7, 5, 6, 4, 2, 1, 0.5];
  const q = Float32Array.from({ length: G * qn * d }, rnd);
  const kk = Float32Array.from({ length: G * km * d }, rnd);
  const v = Float32Array.from({ length: G * km * d }, rnd);
  const hb = Float32Array.from({ length: heads * qn * km }, rnd);
  const bits = new Uint32Array(new Float32Array([scale]).buffer)[0];
  check(pool.medseg_pool_start_attention([G, qn, km, d, d, heads, first, 1, bits], q, kk, v, hb), 'an attention handed over');
  const out = new Float32Array(G * qn * d).fill(NaN);
  check(pool.medseg_pool_finish(out), 'the helpers finished it');
  let worstA = 0;
  for (let g = 0; g < G; g++) {
    const h = (first + g) % heads;
    for (let i = 0; i < qn; i++) {
      const s = [];
      for (let j = 0; j < km; j++) {
        let dot = 0;
        for (let p = 0; p < d; p++) dot += q[(g * qn + i) * d + p] * kk[(g * km + j) * d + p];
        s.push(dot * scale + hb[(h * qn + i) * km + j]);
      }
      const mx = Math.max(...s), e = s.map((x) => Math.exp(x - mx)), z = e.reduce((x, y) => x + y);
      for (let c = 0; c < d; c++) {
        let want = 0;
        for (let j = 0; j < km; j++) want += (e[j] / z) * v[(g * km + j) * d + c];
        worstA = Math.max(worstA, Math.abs(want - out[(g * qn + i) * d + c]));
      }
    }
  }
  check(worstA < 1e-5, `every group's attention right (max error ${worstA.toExponential(2)})`);
}

// A depthwise 3×3 convolution's channels over three helpers, stride 2 (odd plane sizes), GELU
// after it: 7 channels of 9 × 11 (each helper's channel offsets).
{
  const [C, h, w, stride] = [7, 9, 11, 2];
  const [oh, ow] = [Math.floor((h - 1) / stride) + 1, Math.floor((w - 1) / stride) + 1];
  const x = Float32Array.from({ length: C * h * w }, rnd);
  const taps = Float32Array.from({ length: C * 9 }, rnd);
  const db = Float32Array.from({ length: C }, rnd);
  check(pool.medseg_pool_start_depthwise([C, h, w, stride, 1, oh, ow], x, taps, db), 'a depthwise convolution handed over');
  const out = new Float32Array(C * oh * ow).fill(NaN);
  check(pool.medseg_pool_finish(out), 'the helpers finished it');
  let worstD = 0;
  for (let ch = 0; ch < C; ch++) {
    for (let y = 0; y < oh; y++) {
      for (let xo = 0; xo < ow; xo++) {
        let s = db[ch];
        for (let ky = 0; ky < 3; ky++) {
          for (let kx = 0; kx < 3; kx++) {
            const [iy, ix] = [y * stride + ky - 1, xo * stride + kx - 1];
            if (iy >= 0 && iy < h && ix >= 0 && ix < w) s += taps[ch * 9 + ky * 3 + kx] * x[(ch * h + iy) * w + ix];
          }
        }
        const want = 0.5 * s * (1 + erf(s / Math.SQRT2));
        worstD = Math.max(worstD, Math.abs(want - out[(ch * oh + y) * ow + xo]));
      }
    }
  }
  check(worstD < 1e-5, `every channel convolved, GELU after (max error ${worstD.toExponential(2)})`);
}

// A helper that traps: a depth far past the operands given makes it read outside its memory.
check(pool.medseg_pool_start([0, 0, m, 1 << 28, n, 0, 0, 0, 0, 0], a, b, new Float32Array(0)), 'a bad product handed over');
check(pool.medseg_pool_finish(new Float32Array(m * n)) === false, 'the trap is reported, not waited on');
check(pool.medseg_pool_helpers() === 0, 'the pool is dropped: later products stay on the caller');
check(pool.medseg_pool_start([0, 1, m, k, n, 0, 0, 0, 0, 0], a, b, bias) === false, 'and are not handed over');

// A fresh copy of the module (its pool is module state) whose helpers never start.
starting = false;
const stuck = await import(`${POOL_JS}?never-started`);
stuck.medseg_pool_use(bytes, 1);
let t0 = Date.now();
await stuck.medseg_pool_started(300);
check(Date.now() - t0 < 2000 && stuck.medseg_pool_helpers() === 0, `helpers that never start: the wait ends (${Date.now() - t0} ms)`);
t0 = Date.now();
await stuck.medseg_pool_started(300);
check(Date.now() - t0 < 100, `and is not waited again (${Date.now() - t0} ms)`);

// On a page's own thread (not a worker), which may not Atomics.wait: the caller spins instead.
starting = true;
globalThis.WorkerGlobalScope = class {};
const page = await import(`${POOL_JS}?page`);
page.medseg_pool_use(bytes, 1);
await page.medseg_pool_started(10_000);
check(page.medseg_pool_start([0, 1, m, k, n, 0, 0, 0, 0, 0], a, b, bias), "a product handed over from a page's thread");
const cp = new Float32Array(m * n).fill(NaN);
check(page.medseg_pool_finish(cp) && cp.every((v, i) => Math.abs(v - c[i]) < 1e-5), 'its helper finished, the same C as a worker gets');
page.medseg_pool_use(bytes, 0);

console.log(`${failures ? 'FAILED' : 'passed'}: gemm_pool.js`);
process.exit(failures ? 1 : 0);
