// Browser benchmark (not a test): the built app (dist/) in headless Chromium, CPU path and/or
// WebGPU. Prints model load, image encode (first, which includes the encoder worker's start, and
// the rest) and box decode times as median (min–max) over RUNS images/boxes.
//   node tests/e2e/bench.mjs [cpu|webgpu|both] [RUNS]      (build first: scripts/build-web.sh)
// MEDSEG_BENCH_TIMEOUT_S bounds each encode (default 900): on SwiftShader, WebGPU's emulation on
// the CPU, an encode takes longer than that on 2 cores and is reported as not finished.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serve } from './serve.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const FIX = path.resolve(ROOT, '../shared/fixtures');
const modes = (process.argv[2] || 'cpu') === 'both' ? ['cpu', 'webgpu'] : [process.argv[2] || 'cpu'];
const RUNS = Number(process.argv[3] || 3);
const TIMEOUT = Number(process.env.MEDSEG_BENCH_TIMEOUT_S || 900) * 1000;
const IMAGES = ['lung2_z22', 'brain1_z16', 'lung1_z33'].map((c) => path.join(FIX, `litemedsam_${c}_image.png`));

const stats = (xs) => {
  if (!xs.length) return '—';
  const s = [...xs].sort((a, b) => a - b);
  const med = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return `${med.toFixed(0)} ms (${s[0].toFixed(0)}–${s[s.length - 1].toFixed(0)}, n=${s.length})`;
};

async function bench(mode, origin) {
  const args = ['--no-sandbox', '--disable-background-networking', '--no-first-run', '--disable-gpu-sandbox'];
  if (mode === 'webgpu') args.push('--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader');
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'medseg-bench-'));
  const ctx = await chromium.launchPersistentContext(userDir, { executablePath: '/usr/bin/chromium', headless: true,
    args, viewport: { width: 1400, height: 900 } });
  const page = ctx.pages()[0] || await ctx.newPage();
  const phase = (want, ms) => page.waitForFunction((w) => document.querySelector('.app')?.dataset.phase === w, want, { timeout: ms });
  try {
    const t0 = Date.now();
    await page.goto(origin + '/');
    await phase('idle', 120_000);
    const load = Date.now() - t0;
    const backend = await page.textContent('#backend');
    const encodes = [], decodes = [];
    let note = '';
    for (let i = 0; i < RUNS; i++) {
      const t1 = Date.now();
      await page.setInputFiles('#file', IMAGES[i % IMAGES.length]);
      try {
        await phase('ready', TIMEOUT);
      } catch {
        note = `an encode did not finish within ${TIMEOUT / 1000} s`;
        break;
      }
      encodes.push(Date.now() - t1);
      // A box in the middle of the 512×512 image; the status reports the decode's own time.
      const r = await page.locator('#view').boundingBox();
      const at = (x, y) => [r.x + x * r.width / 512, r.y + y * r.height / 512];
      await page.mouse.move(...at(200, 200));
      await page.mouse.down();
      await page.mouse.move(...at(260, 260), { steps: 4 });
      await page.mouse.up();
      await page.waitForFunction(() => document.querySelector('#status')?.textContent.startsWith('Mask in'), null, { timeout: TIMEOUT });
      decodes.push(Number((await page.textContent('#status')).match(/Mask in (\d+) ms/)[1]));
    }
    console.log(`${mode} (${backend}): model load ${load} ms; first encode ${encodes.length ? encodes[0] + ' ms' : '—'}; ` +
      `later encodes ${stats(encodes.slice(1))}; decode ${stats(decodes)}${note ? '; ' + note : ''}`);
  } finally {
    await ctx.close();
    fs.rmSync(userDir, { recursive: true, force: true });
  }
}

const server = await serve(path.join(ROOT, 'dist'));
try {
  for (const mode of modes) await bench(mode, `http://127.0.0.1:${server.address().port}`);
} finally {
  server.close();
}
