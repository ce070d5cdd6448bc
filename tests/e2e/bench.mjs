// Browser benchmark (not a test): the built app (dist/) in headless Chromium, CPU path and/or
// WebGPU, and onnxruntime-web running the official LiteMedSAM ONNX graphs (../shared/peers) in the
// same browser, same run. Prints model load, encode and decode times as median (min–max), then
// the ratios medseg / onnxruntime-web per backend. medseg's decode: the first box on each image
// (the ratio's); also the third box. On a 2D image the app prepares the decoder's image-only part
// right after the encode, so both reuse it (native: `medseg bench`'s "third and later boxes"),
// which onnxruntime-web's decoder graph computes every time. To compare two builds of the app,
// tests/e2e/compare.mjs (paired, alternated encodes) resolves what separate runs cannot.
//   node tests/e2e/bench.mjs [MODES] [RUNS]      (or scripts/bench-web.sh, which builds and installs)
// MODES: comma-separated from cpu, cpu-1 (the CPU path's worker without helper threads for its
// matrix products), cpu-page (the CPU path encoding on the page's thread instead of its worker), webgpu, ort-wasm, ort-wasm2, ort-webgpu, propagate, propagate1
// (3D propagation with the encoder pool / one worker); "both" = cpu,webgpu;
// "peers" = cpu,cpu-1,ort-wasm,ort-wasm2 (default cpu). ort-* need onnxruntime-web in ORT_WEB_DIR
// (default .cache/bench-web/node_modules/onnxruntime-web). ort-wasm runs 1 thread like medseg's
// CPU path; ort-wasm2 runs 2 threads (the page is cross-origin isolated).
// MEDSEG_DIST serves another build than dist/ (e.g. dist-names). MEDSEG_BENCH_TIMEOUT_S bounds
// each encode (default 900); a run past it is reported as not finished. On SwiftShader, WebGPU emulated on the CPU, medseg's encode takes about 3.5 min on 2
// cores; onnxruntime-web's WebGPU run has taken over 15 min here.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serve } from './serve.mjs';
import { decodeTimes } from './boxes.mjs';
import { drawBrain1Box } from './volume.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const FIX = path.resolve(ROOT, '../shared/fixtures');
const PEERS = path.resolve(ROOT, '../shared/peers');
const ORT_DIR = path.resolve(ROOT, process.env.ORT_WEB_DIR || '.cache/bench-web/node_modules/onnxruntime-web');
const arg = process.argv[2] || 'cpu';
const modes = ({ both: 'cpu,webgpu', peers: 'cpu,cpu-1,ort-wasm,ort-wasm2' }[arg] || arg).split(',');
const RUNS = Number(process.argv[3] || 3);
const TIMEOUT = Number(process.env.MEDSEG_BENCH_TIMEOUT_S || 900) * 1000;
const IMAGES = ['lung2_z22', 'brain1_z16', 'lung1_z33'].map((c) => path.join(FIX, `litemedsam_${c}_image.png`));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const stats = (xs) => {
  if (!xs.length) return '—';
  const s = [...xs].sort((a, b) => a - b);
  return `${median(s).toFixed(0)} ms (${s[0].toFixed(0)}–${s[s.length - 1].toFixed(0)}, n=${s.length})`;
};

async function browser(webgpu) {
  const args = ['--no-sandbox', '--disable-background-networking', '--no-first-run', '--disable-gpu-sandbox'];
  if (webgpu) args.push('--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader');
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'medseg-bench-'));
  const ctx = await chromium.launchPersistentContext(userDir, { executablePath: '/usr/bin/chromium', headless: true,
    args, viewport: { width: 1400, height: 900 } });
  const close = async () => { await ctx.close(); fs.rmSync(userDir, { recursive: true, force: true }); };
  return { page: ctx.pages()[0] || await ctx.newPage(), close };
}

// medseg: the app itself, timed from the outside (file chosen → embedding ready; box drawn → the
// decode time the status reports). "Later encodes" leave out the first, which starts the worker.
async function benchApp(mode, origin) {
  const { page, close } = await browser(mode === 'webgpu');
  const phase = (want, ms) => page.waitForFunction((w) => document.querySelector('.app')?.dataset.phase === w, want, { timeout: ms });
  try {
    const t0 = Date.now();
    // SwiftShader is a fallback adapter, on which the page would choose its CPU path.
    await page.goto(origin + ({ webgpu: '/?backend=webgpu', 'cpu-page': '/?encoders=0', 'cpu-1': '/?helpers=0' }[mode] ?? '/'));
    await phase('idle', 120_000);
    const load = Date.now() - t0;
    const backend = await page.textContent('#backend');
    const encodes = [], decodes = [], later = [];
    let note = '';
    for (let i = 0; i < RUNS + 1; i++) {
      const t1 = Date.now();
      await page.setInputFiles('#file', IMAGES[i % IMAGES.length]);
      try {
        await phase('ready', TIMEOUT);
      } catch {
        note = `an encode did not finish within ${TIMEOUT / 1000} s`;
        break;
      }
      encodes.push(Date.now() - t1);
      // Three boxes (tests/e2e/boxes.mjs): the first and the third timed.
      const [first, , third] = await decodeTimes(page, TIMEOUT);
      decodes.push(first);
      later.push(third);
    }
    return { mode, label: backend, load, first: encodes[0], encode: encodes.slice(1), decode: decodes, later, note };
  } finally {
    await close();
  }
}

// 3D propagation in the page (CPU path): brain1's official 7-slice range (slices 11–17) in a fresh
// page, the box drawn on the middle slice (which embeds it), then Propagate: the time the status
// reports, RUNS times. "propagate" lets the page use its encoder pool (one worker per core, at
// most 3), "propagate1" caps it at one worker (?encoders=1), as before the pool.
async function benchPropagate(mode, origin) {
  const scan = path.join(ROOT, '.cache/data/pyradiomics/brain1_image.nrrd');
  const times = [];
  let label = '';
  // A fresh browser per run: autosave would otherwise restore the last run's work.
  for (let i = 0; i < RUNS; i++) {
    const { page, close } = await browser(false);
    try {
      await page.goto(origin + (mode === 'propagate1' ? '/?encoders=1' : '/'));
      await page.waitForFunction(() => document.querySelector('.app')?.dataset.phase === 'idle', null, { timeout: 120_000 });
      await page.setInputFiles('#file', scan);
      await page.waitForFunction(() => document.querySelector('#slice-info')?.textContent.startsWith('Slice 13 / 25'), null, { timeout: 60_000 });
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('[');
      for (let k = 0; k < 6; k++) await page.keyboard.press('ArrowUp');
      await page.keyboard.press(']');
      for (let k = 0; k < 3; k++) await page.keyboard.press('ArrowDown');
      await page.uncheck('#beyond');
      await drawBrain1Box(page);
      await page.waitForFunction(() => document.querySelector('#status')?.textContent.startsWith('Mask in'), null, { timeout: TIMEOUT });
      await page.click('#propagate');
      await page.waitForFunction(() => document.querySelector('#status')?.textContent.startsWith('Propagated'), null, { timeout: TIMEOUT });
      const status = await page.textContent('#status');
      times.push(Number(status.match(/in ([\d.]+) s/)[1]) * 1000);
      label = `${status.match(/(\d+) slices/)[1]} slices, ${mode === 'propagate1' ? '1 encoder worker' : 'encoder pool'}`;
    } finally {
      await close();
    }
  }
  return { mode, label, load: NaN, encode: times, decode: [], note: '' };
}

// onnxruntime-web on the official graphs: session creation, then one warm-up and RUNS timed
// `run()`s of the encoder (256×256 input → embedding read back) and of the decoder (embedding +
// box → logits read back), as the app's encode and decode do.
const ORT_PAGE = `<!doctype html><meta charset="utf-8"><title>onnxruntime-web bench</title>
<script type="module">
import * as ort from './ort/ort.all.min.mjs';
window.bench = async (ep, threads, runs) => {
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
  const opts = { executionProviders: [ep] };
  const t0 = performance.now();
  const enc = await ort.InferenceSession.create('./peers/litemedsam_encoder.onnx', opts);
  const dec = await ort.InferenceSession.create('./peers/litemedsam_decoder.onnx', opts);
  const load = performance.now() - t0;
  const image = new ort.Tensor('float32', Float32Array.from({ length: 3 * 256 * 256 }, (_, i) => (i % 251) / 251), [1, 3, 256, 256]);
  const box = new ort.Tensor('float32', Float32Array.from([77, 77, 154, 179]), [1, 1, 4]);
  const encode = [], decode = [];
  let first = 0;
  for (let i = 0; i <= runs; i++) {
    let t = performance.now();
    const { image_embedding } = await enc.run({ image });
    await image_embedding.getData();
    const te = performance.now() - t;
    t = performance.now();
    const out = await dec.run({ image_embedding, box });
    await out.low_res_logits.getData();
    const td = performance.now() - t;
    if (i === 0) first = te; else { encode.push(te); decode.push(td); }
  }
  return { load, first, encode, decode };
};
window.ready = true;
</script>`;

function ortSite() {
  if (!fs.existsSync(path.join(ORT_DIR, 'dist/ort.all.min.mjs')))
    throw new Error(`onnxruntime-web not found in ${ORT_DIR}: run scripts/bench-web.sh (it installs it)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'medseg-ort-'));
  fs.writeFileSync(path.join(dir, 'index.html'), ORT_PAGE);
  fs.symlinkSync(path.join(ORT_DIR, 'dist'), path.join(dir, 'ort'));
  fs.symlinkSync(PEERS, path.join(dir, 'peers'));
  return dir;
}

async function benchOrt(mode, origin) {
  const ep = mode === 'ort-webgpu' ? 'webgpu' : 'wasm';
  const threads = mode === 'ort-wasm2' ? 2 : 1;
  const { page, close } = await browser(ep === 'webgpu');
  try {
    await page.goto(origin + '/');
    await page.waitForFunction(() => window.ready === true, null, { timeout: 60_000 });
    const label = `onnxruntime-web ${ep}, ${threads} thread${threads > 1 ? 's' : ''}`;
    // The same bound as medseg's encodes, for the warm-up and the timed runs together.
    const limit = TIMEOUT * (RUNS + 1);
    const r = await Promise.race([page.evaluate(([e, t, n]) => window.bench(e, t, n), [ep, threads, RUNS]),
      // unref: the bound (RUNS + 1 encodes' worth) must not keep node running once the race is won.
      new Promise((resolve) => setTimeout(() => resolve(null), limit).unref())]);
    if (!r) return { mode, label, load: NaN, encode: [], decode: [], note: `did not finish within ${limit / 1000} s` };
    return { mode, label, ...r, note: '' };
  } finally {
    await close();
  }
}

const results = [];
const app = await serve(path.resolve(ROOT, process.env.MEDSEG_DIST || 'dist'));
const ortDir = modes.some((m) => m.startsWith('ort-')) ? ortSite() : null;
const peer = ortDir ? await serve(ortDir) : null;
try {
  for (const mode of modes) {
    const origin = `http://127.0.0.1:${app.address().port}`;
    const r = mode.startsWith('ort-') ? await benchOrt(mode, `http://127.0.0.1:${peer.address().port}`)
      : mode.startsWith('propagate') ? await benchPropagate(mode, origin)
        : await benchApp(mode, origin);
    results.push(r);
    if (mode.startsWith('propagate')) { console.log(`${mode} (${r.label}): propagation ${stats(r.encode)}`); continue; }
    console.log(`${mode} (${r.label}): model load ${r.load.toFixed(0)} ms; first encode ${r.first === undefined ? '—' : r.first.toFixed(0) + ' ms'}; ` +
      `later encodes ${stats(r.encode)}; decode ${stats(r.decode)}` +
      `${r.later?.length ? `; decode, third box on an image ${stats(r.later)}` : ''}${r.note ? '; ' + r.note : ''}`);
  }
} finally {
  app.close();
  if (peer) peer.close();
  if (ortDir) fs.rmSync(ortDir, { recursive: true, force: true });
}

// Same backend, same browser, same run: medseg's CPU path against onnxruntime-web's WASM (1 and
// 2 threads), medseg's WebGPU against onnxruntime-web's WebGPU.
const by = Object.fromEntries(results.map((r) => [r.mode, r]));
for (const [ours, theirs] of [['cpu', 'ort-wasm'], ['cpu', 'ort-wasm2'], ['cpu-1', 'ort-wasm'], ['cpu', 'cpu-1'], ['cpu-page', 'ort-wasm'], ['webgpu', 'ort-webgpu'], ['cpu-page', 'cpu']]) {
  const a = by[ours], b = by[theirs];
  if (!a || !b) continue;
  const ratio = (x, y) => (x.length && y.length ? (median(x) / median(y)).toFixed(2) : '—');
  console.log(`ratio medseg ${ours} / ${b.label}: encode ${ratio(a.encode, b.encode)}, decode ${ratio(a.decode, b.decode)}`);
}
if (by.propagate && by.propagate1 && by.propagate.encode.length && by.propagate1.encode.length) {
  console.log(`ratio propagation, encoder pool / 1 worker: ${(median(by.propagate.encode) / median(by.propagate1.encode)).toFixed(2)}`);
}
