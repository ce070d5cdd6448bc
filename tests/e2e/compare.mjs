// Paired comparison (not a test): two builds of the app (or one build with two sets of URL
// parameters) open side by side in headless Chromium, CPU path, their encodes alternated so that
// this machine's drift (±10–25 % within minutes) hits both alike; after each encode, three boxes
// (the status line's "Mask in" times). Prints each side's encode and decode times and the medians
// of the paired ratios B/A; a change of a few percent shows where separate bench.mjs runs cannot
// tell it from drift.
//   node tests/e2e/compare.mjs DIST_A[?PARAMS] DIST_B[?PARAMS] [PAIRS]
// e.g. compare.mjs dist-old dist               (default params: backend=cpu)
//      compare.mjs 'dist?backend=cpu' 'dist?backend=cpu&encoders=0'
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serve } from './serve.mjs';
import { decodeTimes } from './boxes.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const FIX = path.resolve(ROOT, '../shared/fixtures');
const IMAGES = ['lung2_z22', 'brain1_z16', 'lung1_z33'].map((c) => path.join(FIX, `litemedsam_${c}_image.png`));
const sides = process.argv.slice(2, 4);
const PAIRS = Number(process.argv[4] || 8);
if (sides.length !== 2) {
  console.error('usage: node tests/e2e/compare.mjs DIST_A[?PARAMS] DIST_B[?PARAMS] [PAIRS]');
  process.exit(2);
}
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

const open = [];
for (const side of sides) {
  const [dir, params = 'backend=cpu'] = side.split('?');
  const server = await serve(path.resolve(dir));
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'medseg-compare-'));
  const ctx = await chromium.launchPersistentContext(userDir, { executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--no-first-run'], viewport: { width: 1400, height: 900 } });
  const page = ctx.pages()[0] || await ctx.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/?${params}`);
  await page.waitForFunction(() => document.querySelector('.app')?.dataset.phase === 'idle', null, { timeout: 120_000 });
  open.push({ side, page, ctx, server, userDir, ms: [], boxes: [] });
}
// The time the app reports for an encode of `image` (a new image each time, so never cached).
const encode = async (page, image) => {
  const before = await page.textContent('#status');
  await page.setInputFiles('#file', image);
  await page.waitForFunction((b) => {
    const t = document.querySelector('#status')?.textContent ?? '';
    return t !== b && /encoded in \d+ ms/.test(t);
  }, before, { timeout: 900_000 });
  return Number((await page.textContent('#status')).match(/encoded in (\d+) ms/)[1]);
};
try {
  for (const o of open) await encode(o.page, IMAGES[0]); // warm-up
  for (let i = 0; i < PAIRS; i++) {
    // A then B, then B then A: neither side always runs right after the other's encode.
    for (const o of (i % 2 ? [...open].reverse() : open)) {
      o.ms.push(await encode(o.page, IMAGES[(i + 1) % 3]));
      o.boxes.push(...await decodeTimes(o.page, 120_000));
    }
  }
  const paired = (what, a, b) => {
    const r = b.map((x, i) => x / a[i]);
    console.log(`paired ratio B/A, ${what}: median ${median(r).toFixed(3)} (min ${Math.min(...r).toFixed(3)}, max ${Math.max(...r).toFixed(3)})`);
  };
  for (const o of open) {
    console.log(`${o.side}: encode median ${median(o.ms)} ms (min ${Math.min(...o.ms)}): ${o.ms.join(' ')}`);
    console.log(`${o.side}: decode median ${median(o.boxes)} ms (min ${Math.min(...o.boxes)}): ${o.boxes.join(' ')}`);
  }
  paired('encode', open[0].ms, open[1].ms);
  paired('decode', open[0].boxes, open[1].boxes);
} finally {
  for (const o of open) {
    await o.ctx.close();
    o.server.close();
    fs.rmSync(o.userDir, { recursive: true, force: true });
  }
}
