// Browser profile (not a test): V8's sampling profiler over medseg's CPU-path encode in headless
// Chromium, on the page's own thread (`?encoders=0`), with function names (a bundle built with
// them: scripts/profile-web.sh). Prints self time by function and inclusive time of our model's
// functions, summed over RUNS encodes of the lung2 slice after one warm-up; with `decode`, over
// RUNS rounds of the benchmarks' three boxes (tests/e2e/boxes.mjs) on it instead.
//   node tests/e2e/profile.mjs DIST [RUNS] [encode|decode]
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serve } from './serve.mjs';
import { decodeTimes } from './boxes.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const FIX = path.resolve(ROOT, '../shared/fixtures');
const DIST = path.resolve(process.argv[2] || 'dist-names');
const RUNS = Number(process.argv[3] || 2);
const WHAT = process.argv[4] || 'encode';
const IMAGE = path.join(FIX, 'litemedsam_lung2_z22_image.png');

const server = await serve(DIST);
const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'medseg-profile-'));
const ctx = await chromium.launchPersistentContext(userDir, { executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--no-first-run'], viewport: { width: 1400, height: 900 } });
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  const phase = (want) => page.waitForFunction((w) => document.querySelector('.app')?.dataset.phase === w, want, { timeout: 600_000 });
  await page.goto(`http://127.0.0.1:${server.address().port}/?backend=cpu&encoders=0`);
  await phase('idle');
  const encode = async () => {
    await page.setInputFiles('#file', IMAGE);
    await phase('embedding');
    await phase('ready');
    return page.textContent('#status');
  };
  console.log(`warm-up: ${await encode()}`);
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 1000 });
  await cdp.send('Profiler.start');
  for (let i = 0; i < RUNS; i++) {
    console.log(`profiled: ${WHAT === 'decode' ? `Mask in ${await decodeTimes(page, 60_000)} ms` : await encode()}`);
  }
  const { profile } = await cdp.send('Profiler.stop');
  report(profile);
} finally {
  await ctx.close();
  fs.rmSync(userDir, { recursive: true, force: true });
  server.close();
}

function report(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
  const self = new Map(), incl = new Map();
  let total = 0;
  const add = (m, k, dt) => m.set(k, (m.get(k) || 0) + dt);
  // Rust's names end in a hash (`::h0123…`): dropped, so that copies of a generic sum up.
  const name = (n) => n.callFrame.functionName.replace(/::h[0-9a-f]{16}$/, '') || `(${n.callFrame.url.split('/').pop() || 'anonymous'})`;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i] || 0) / 1000;
    const leaf = byId.get(id);
    if (['(idle)', '(program)', '(garbage collector)'].includes(leaf.callFrame.functionName)) return add(self, leaf.callFrame.functionName, dt);
    total += dt;
    add(self, name(leaf), dt);
    const seen = new Set();
    for (let n = leaf; n; n = byId.get(parent.get(n.id))) {
      const k = name(n);
      if (!seen.has(k)) { seen.add(k); add(incl, k, dt); }
    }
  });
  const table = (title, m, filter, k = 30) => {
    console.log(`\n${title}`);
    [...m].filter(([n]) => filter(n)).sort((a, b) => b[1] - a[1]).slice(0, k)
      .forEach(([n, ms]) => console.log(`${(100 * ms / total).toFixed(1).padStart(5)} %  ${ms.toFixed(0).padStart(6)} ms  ${n.slice(0, 150)}`));
  };
  console.log(`\nbusy ${total.toFixed(0)} ms over ${RUNS} ${WHAT === 'decode' ? 'rounds of 3 boxes' : 'encodes'} (idle/program/GC: ${['(idle)', '(program)', '(garbage collector)'].map((k) => (self.get(k) || 0).toFixed(0)).join('/')} ms)`);
  table('self time by function', self, (n) => !n.startsWith('('));
  table('inclusive time, medseg functions', incl, (n) => n.includes('medseg::'), 40);
  table('inclusive time, gemm and burn-flex operations', incl, (n) => /^(gemm|burn_flex::ops)/.test(n), 30);
}
