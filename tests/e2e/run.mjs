// End-to-end: the built app in headless Chromium segments a real CT slice, with WebGPU
// (SwiftShader) and with WebGPU disabled (CPU fallback). Any request leaving the page's origin,
// or carrying a body, fails the run. Prints "N passed, M failed".
import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import os from 'node:os';
import { serve } from './serve.mjs';
import { writeSupport, nativeMask, convertNative, zipOf, unzip } from './universeg.mjs';
import { execFileSync } from 'node:child_process';
import { volumeChecks, dicomChecks, viewerPixels, measurements, sameStats } from './volume.mjs';
import { gensegChecks, gensegWebgpuCheck } from './genseg.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const FIX = path.resolve(ROOT, '../shared/fixtures');
const ART = path.join(ROOT, 'test-artifacts');
fs.mkdirSync(ART, { recursive: true });
const only = process.argv[2]; // optional: "webgpu" or "cpu"

const readPng = (file) => PNG.sync.read(fs.readFileSync(file));
function dice(a, b) {
  let inter = 0, sa = 0, sb = 0;
  for (let i = 0; i < a.length; i++) { const x = a[i] > 0, y = b[i] > 0; inter += x && y; sa += x; sb += y; }
  return sa + sb === 0 ? 1 : (2 * inter) / (sa + sb);
}
const gray = (png) => { const out = new Uint8Array(png.width * png.height); for (let i = 0; i < out.length; i++) out[i] = png.data[i * 4]; return out; };

// A PNG header claiming 20000×20000 pixels (no need to hold the pixels to test the limit).
function giantPng() {
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(zlib.crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(20000, 0); ihdr.writeUInt32BE(20000, 4); ihdr[8] = 8; ihdr[9] = 0;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.alloc(20001))), chunk('IEND', Buffer.alloc(0))]);
}

const LUNG2_BOX = [321, 334, 392, 398]; // the lung2 fixture's ground-truth box

/// The screen point over the centre of pixel (x, y) of the 512×512 image in view, whose box
/// on the page is `r`.
const pixelAt = (r) => (x, y) => [r.x + (x + 0.5) * r.width / 512, r.y + (y + 0.5) * r.height / 512];

/// Draws a box on the 512×512 image in view with the mouse and waits for its mask.
async function drawBox(page, box) {
  const at = pixelAt(await page.locator('#view').boundingBox());
  await page.mouse.move(...at(box[0], box[1]));
  await page.mouse.down();
  await page.mouse.move(...at((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), { steps: 4 });
  await page.mouse.move(...at(box[2], box[3]), { steps: 4 });
  await page.mouse.up();
  await page.waitForFunction(() => document.querySelector('#status')?.textContent.startsWith('Mask in'), null, { timeout: 300_000 })
    .catch(async (e) => { throw new Error(`no mask: ${e.message} ${await pageState(page)}`); });
}

/// The selected object's pixel count, as its row in the object list shows it.
const selectedPixels = async (page) => Number((await page.textContent('.objects li.selected small')).match(/(\d+) px/)[1]);

/// Exports the selected object's mask (#export-mask) as ART/name and reads it back.
async function exportMask(page, name) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-mask')]);
  const file = path.join(ART, name);
  await dl.saveAs(file);
  return readPng(file);
}

/// Dice of a mask with the official model's mask of the lung2 fixture slice.
const lung2Dice = (png) => dice(gray(png), gray(readPng(path.join(FIX, 'litemedsam_lung2_z22_official_mask.png'))));

/// What the page shows, for a failure's message.
async function pageState(page) {
  return page.evaluate(() => `(phase ${document.querySelector('.app')?.dataset.phase}, status "${document.querySelector('#status')?.textContent}", error "${document.querySelector('#error')?.textContent ?? ''}")`).catch((e) => `(page unreadable: ${e.message})`);
}

let passed = 0, failed = 0;
// MEDSEG_E2E_ONLY=<text>[|<text>…]: run only the checks whose name contains one of them (and the
// model load).
const onlyChecks = process.env.MEDSEG_E2E_ONLY?.split('|');
async function check(name, fn) {
  if (onlyChecks && !onlyChecks.some((t) => name.includes(t)) && !name.includes('model loads')) return;
  const t = Date.now();
  const took = () => `(${((Date.now() - t) / 1000).toFixed(0)} s)`;
  try { await fn(); passed++; console.log(`ok   ${name} ${took()}`); }
  catch (e) { failed++; console.log(`FAIL ${name} ${took()}: ${e.message}`); }
}
const assert = (c, msg) => { if (!c) throw new Error(msg); };

async function session(mode, server) {
  const origin = `http://127.0.0.1:${server.address().port}`;
  const args = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run', '--disable-quic', '--disable-gpu-sandbox'];
  if (mode === 'webgpu') args.push('--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader');
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'medseg-chrome-'));
  const ctx = await chromium.launchPersistentContext(userDir, { executablePath: '/usr/bin/chromium', headless: true,
    args, acceptDownloads: true, viewport: { width: 1400, height: 900 } });
  // A crashed browser fails the session's remaining checks at once; say why in the log.
  let done = false;
  ctx.on('close', () => { if (!done) console.log(`  [${mode}] the browser closed unexpectedly`); });
  try { await checks(mode, ctx, origin); }
  finally {
    done = true;
    await ctx.close().catch(() => {});
    fs.rmSync(userDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 500 });
  }
}

async function checks(mode, ctx, origin) {
  const page = ctx.pages()[0] || await ctx.newPage();
  page.on('crash', () => console.log(`  [${mode}] the page crashed`));
  const egress = [];
  // Which of the app's two builds each page loaded (static/boot.js chooses).
  const wasmFetched = [];
  const builds = (from = 0) => {
    const got = wasmFetched.slice(from);
    return { got, gpu: got.filter((u) => u.startsWith('/medseg-web-gpu_bg')).length, cpu: got.filter((u) => /^\/medseg-web-[0-9a-f]+_bg\.wasm$/.test(u)).length };
  };
  // Context-wide: the page, its workers and its service worker.
  ctx.on('request', (r) => {
    if (!r.url().startsWith(origin) && !r.url().startsWith('blob:') && !r.url().startsWith('data:')) egress.push(r.url());
    if (r.postData()) egress.push(`body sent to ${r.url()}`);
    if (r.url().includes('_bg.wasm')) wasmFetched.push(new URL(r.url()).pathname);
  });
  page.on('console', (m) => { if (m.type() === 'error') console.log(`  [${mode} console] ${m.text()}`); });
  page.on('worker', (w) => w.on('console', (m) => { if (m.type() === 'error') console.log(`  [${mode} worker console] ${m.text()}`); }));
  const t0 = Date.now();
  // SwiftShader is a fallback adapter, on which the page would choose its CPU path.
  await page.goto(origin + (mode === 'webgpu' ? '/?backend=webgpu' : '/'));
  const phase = () => page.getAttribute('.app', 'data-phase');
  const waitPhase = async (want, ms) => {
    await page.waitForFunction((w) => document.querySelector('.app')?.dataset.phase === w, want, { timeout: ms })
      .catch(async (e) => { throw new Error(`waiting for phase ${want}: ${e.message} ${await pageState(page)}`); });
  };
  // Opens a scan and waits for its embedding. The page must leave `ready` as soon as the file
  // is chosen (it said `ready` for the scan before while the new file was read, and a box drawn
  // then was refused as "still being encoded": a lost-GPU run failed that way), so every phase
  // it shows from the choice on is recorded and checked: opening, embedding, ready.
  const openScan = async (file, ms) => {
    await page.evaluate(() => {
      if (window.__phaseObserver) return;
      // From the moment a file is chosen (capture: before the app's own handler runs).
      document.addEventListener('change', () => { window.__phases = []; }, true);
      window.__phaseObserver = new MutationObserver(() => {
        const p = document.querySelector('.app').dataset.phase;
        if (window.__phases && window.__phases[window.__phases.length - 1] !== p) window.__phases.push(p);
      });
      window.__phaseObserver.observe(document.querySelector('.app'), { attributes: true, attributeFilter: ['data-phase'] });
    });
    await page.setInputFiles('#file', file);
    await waitPhase('embedding', 60_000);
    await waitPhase('ready', ms);
    const seen = await page.evaluate(() => window.__phases);
    assert(seen.join() === 'opening,embedding,ready', `phases after choosing ${path.basename(file)}: ${seen.join(', ')}`);
  };
  const prefix = `[${mode}]`;

  await check(`${prefix} model loads and backend is reported`, async () => {
    await waitPhase('idle', 120_000);
    const backend = await page.textContent('#backend');
    console.log(`  ${prefix} backend: ${backend}, model ready after ${Date.now() - t0} ms`);
    assert(mode === 'webgpu' ? backend.includes('WebGPU') : backend.includes('CPU'), `backend ${backend}`);
    // The CPU-only build where the page computes on the CPU; the WebGPU build only with WebGPU.
    const b = builds();
    assert(b.got.length > 0 && (mode === 'webgpu' ? b.gpu : b.cpu) === b.got.length, `wasm fetched: ${b.got.join(', ')}`);
  });

  if (mode === 'webgpu') await check(`${prefix} on a software-emulated WebGPU adapter the page computes on its CPU path unless asked`, async () => {
    const other = await ctx.newPage();
    const from = wasmFetched.length;
    try {
      await other.goto(origin + '/');
      await other.waitForFunction(() => document.querySelector('.app')?.dataset.phase === 'idle', null, { timeout: 120_000 });
      const backend = await other.textContent('#backend');
      console.log(`  ${prefix} without ?backend=webgpu: ${backend}`);
      assert(backend.startsWith('CPU') && backend.includes('software-emulated'), `backend ${backend}`);
      const b = builds(from);
      assert(b.got.length > 0 && b.cpu === b.got.length, `wasm fetched without ?backend=webgpu: ${b.got.join(', ')}`);
    } finally { await other.close(); }
  });

  // Before anything else runs on SwiftShader: an image encode in the background would triple its time.
  if (mode === 'webgpu') await gensegWebgpuCheck(page, prefix, check, assert, FIX);

  await check(`${prefix} segments the lung2 CT slice like the official model (Dice ≥ 0.98)`, async () => {
    const t1 = Date.now();
    await page.evaluate(() => {
      window.__clickDelays = [];
      document.addEventListener('click', (e) => window.__clickDelays.push(performance.now() - e.timeStamp), true);
    });
    await page.setInputFiles('#file', path.join(FIX, 'litemedsam_lung2_z22_image.png'));
    // On the CPU path the encode runs in a worker: the page answers clicks meanwhile.
    const during = [];
    if (mode === 'cpu') {
      await waitPhase('embedding', 30_000);
      // Clicks close together: the first lands well inside even a fast machine's encode.
      for (let k = 0; k < 3; k++) {
        await new Promise((r) => setTimeout(r, 100));
        await page.click('#backend', { timeout: 5_000 });
        during.push(await phase());
      }
    }
    // SwiftShader's encode took 208–413 s on 2 cores (the same build, the same day): room for a slower CI machine.
    await waitPhase('ready', mode === 'webgpu' ? 1_800_000 : 900_000);
    const delays = await page.evaluate(() => window.__clickDelays);
    const encoded = await page.textContent('#status');
    console.log(`  ${prefix} image encoded in ${Date.now() - t1} ms; click delays while encoding ${delays.map((d) => d.toFixed(0)).join(', ')} ms (${during.join(', ')}); ${encoded}`);
    if (mode === 'cpu') {
      assert(during[0] === 'embedding', `the encode ended before the first click (${during})`);
      assert(Math.max(...delays) < 200, `a click waited ${Math.max(...delays).toFixed(0)} ms while encoding`);
      // The page is cross-origin isolated: with a core to spare, the worker's matrix products
      // share their rows with a helper thread (gemm_pool.js), and the mask below is still right.
      if (await page.evaluate(() => navigator.hardwareConcurrency) >= 2) {
        assert(/on [2-9] CPU threads/.test(encoded), `the encode used one thread: ${encoded}`);
      }
    }
    await drawBox(page, LUNG2_BOX);
    const backend = await page.textContent('#backend');
    console.log(`  ${prefix} ${backend}: ${await page.textContent('#status')}`);
    assert(mode === 'webgpu' ? backend.startsWith('WebGPU') : backend.startsWith('CPU'), `computed on ${backend}`);
    // Chromium has relaxed SIMD: the CPU path's matrix tile runs with fused multiply-adds (gemm_fma.rs).
    if (mode === 'cpu') assert(await page.evaluate(() => self.__medsegFma === true), 'the fused multiply-add tile is not in use');
    // The decode runs on the page's own thread, whose products share their rows with a helper
    // thread too (it spins while it waits: a page may not Atomics.wait).
    if (mode === 'cpu' && await page.evaluate(() => navigator.hardwareConcurrency) >= 2) {
      const status = await page.textContent('#status');
      assert(/^Mask in \d+ ms on [2-9] CPU threads/.test(status), `the decode used one thread: ${status}`);
    }
    await page.screenshot({ path: path.join(ART, `segment-${mode}.png`) });
    const got = await exportMask(page, `mask-${mode}.png`);
    assert(got.width === 512 && got.height === 512, `mask is ${got.width}×${got.height}`);
    const d = lung2Dice(got);
    console.log(`  ${prefix} Dice vs official mask ${d.toFixed(4)}`);
    assert(d >= 0.98, `Dice ${d}`);
  });

  await check(`${prefix} the image fills the viewer; + and − zoom, 0 fits again`, async () => {
    const size = async () => {
      const [v, c] = await Promise.all(['.viewer', '#view'].map((s) => page.locator(s).evaluate((e) => [e.clientWidth, e.clientHeight])));
      return { room: Math.min(v[0], v[1]) - 24, w: c[0], h: c[1] };
    };
    const fit = await size();
    // The 512² slice, shown as large as the viewer allows (its smaller side, inside the padding).
    assert(fit.w === fit.h && Math.abs(fit.w - fit.room) <= 1 && fit.w > 512, `fitted: ${JSON.stringify(fit)}`);
    await page.keyboard.press('+');
    const zoomed = await size();
    assert(Math.abs(zoomed.w - fit.w * 1.25) <= 2, `zoomed: ${zoomed.w} px from ${fit.w}`);
    await page.keyboard.press('0');
    assert((await size()).w === fit.w, 'not fitted again after 0');
    // Ctrl+wheel zooms about the pointer: the image point under it stays under it.
    const under = async (x, y) => {
      const r = await page.locator('#view').boundingBox();
      return [(x - r.x) / r.width * 512, (y - r.y) / r.height * 512];
    };
    const r0 = await page.locator('#view').boundingBox();
    const [px, py] = [r0.x + r0.width * 0.7, r0.y + r0.height * 0.3];
    const p0 = await under(px, py);
    await page.mouse.move(px, py);
    await page.keyboard.down('Control');
    for (let k = 0; k < 6; k++) await page.mouse.wheel(0, -100);
    await page.keyboard.up('Control');
    const z = await size();
    const p1 = await under(px, py);
    assert(z.w > fit.w * 1.5, `Ctrl+wheel zoomed to ${z.w} px from ${fit.w}`);
    assert(Math.hypot(p1[0] - p0[0], p1[1] - p0[1]) < 2, `the point under the pointer moved from ${p0} to ${p1}`);
    // Middle-drag pans: the image moves with the pointer.
    await page.mouse.down({ button: 'middle' });
    await page.mouse.move(px - 80, py - 50, { steps: 4 });
    await page.mouse.up({ button: 'middle' });
    const p2 = await under(px - 80, py - 50);
    assert(Math.hypot(p2[0] - p0[0], p2[1] - p0[1]) < 2, `after a middle-drag the image point under the pointer is ${p2}, was ${p0}`);
    await page.keyboard.press('0');
    assert((await size()).w === fit.w, 'not fitted again after 0');
    // ? lists the keys and mouse actions; Esc closes the list.
    await page.keyboard.press('?');
    const help = await page.textContent('#help');
    assert(/Middle-drag\s*pan/.test(help) && /Right-drag/.test(help), `the list: ${help}`);
    await page.keyboard.press('Escape');
    assert(await page.locator('#help').count() === 0, 'the list stayed open after Esc');
  });

  await check(`${prefix} brush and eraser paint whole strokes, however fast; undo takes them back`, async () => {
    const px = () => selectedPixels(page);
    const r = await page.locator('#view').boundingBox();
    const at = pixelAt(r);
    // One quick move: the page sees only the stroke's two ends (far from the lung2 mask).
    const stroke = async (key) => {
      await page.keyboard.press(key);
      await page.mouse.move(...at(40, 470));
      await page.mouse.down();
      await page.mouse.move(...at(240, 470), { steps: 1 });
      await page.mouse.up();
    };
    const n0 = await px();
    await stroke('r');
    const n1 = await px();
    // The brush's outline at the pointer: 13 image pixels across (radius 6), centred on it.
    const ring = await page.locator('.brush-ring').boundingBox();
    const [ex, ey] = at(240, 470);
    assert(Math.abs(ring.width - 13 * r.width / 512) < 1.5 && Math.hypot(ring.x + ring.width / 2 - ex, ring.y + ring.height / 2 - ey) < 1.5,
      `brush outline ${JSON.stringify(ring)} at the pointer ${ex},${ey}`);
    // Radius 6 (the default): 200 px long, 13 wide, round ends.
    assert(n1 - n0 >= 200 * 12, `the brush stroke added ${n1 - n0} px`);
    await stroke('e');
    assert(await px() === n0, `the eraser along the same stroke left ${await px()} px of ${n0}`);
    await page.keyboard.press('Control+z');
    assert(await px() === n1, 'undo did not bring the stroke back');
    await page.keyboard.press('Control+z');
    assert(await px() === n0, 'undo did not take the stroke away');
    await page.keyboard.press('b');
    await page.mouse.move(...at(250, 470));
    assert(!(await page.locator('.brush-ring').isVisible()), 'a brush outline with the box tool');
    // Right-drag: window/level by screen pixels; dragging back restores the display exactly.
    const grey = () => page.evaluate(() => [...document.querySelector('#view').getContext('2d').getImageData(256, 420, 1, 1).data].slice(0, 3).join());
    const g0 = await grey();
    const wl = async (dx, dy) => {
      await page.mouse.move(r.x + r.width / 2, r.y + r.height / 2);
      await page.mouse.down({ button: 'right' });
      await page.mouse.move(r.x + r.width / 2 + dx, r.y + r.height / 2 + dy, { steps: 3 });
      await page.mouse.up({ button: 'right' });
    };
    await wl(-120, 60);
    const g1 = await grey();
    assert(g1 !== g0, `right-drag left the display as it was (${g0})`);
    await wl(120, -60);
    assert(await grey() === g0, `dragging back gave ${await grey()}, was ${g0}`);
    // The pixel under the pointer and its value (the fixture's grey there: 184).
    await page.mouse.move(...at(256, 420));
    const readout = await page.textContent('#readout');
    assert(readout === 'x 256 · y 420 — 184', `readout "${readout}"`);
    // A box released outside the image still segments, clamped to it (the canvas holds the
    // pointer for the drag).
    const before = await page.locator('.objects li').count();
    await page.mouse.move(...at(400, 300));
    await page.mouse.down();
    await page.mouse.move(...at(600, 380), { steps: 4 });
    await page.mouse.up();
    await page.waitForFunction(() => /^Mask in .*box 400,300,512,380/.test(document.querySelector('#status')?.textContent), null, { timeout: 120_000 })
      .catch(async (e) => { throw new Error(`${e.message}: ${await page.textContent('#status')}`); });
    assert(await page.locator('.objects li').count() === before + 1, 'no object from the box released outside');
    await page.keyboard.press('Control+z');
  });

  await check(`${prefix} objects: hidden and shown again (eye button, H), outlined (O), recoloured, renamed in the list (undoable), exported under their names`, async () => {
    const tinted = () => viewerPixels(page, 'tinted');
    const all = await tinted();
    assert(all > 0, 'no object on the viewer');
    const eyes = page.locator('.objects li .eye');
    for (let k = 0; k < await eyes.count(); k++) await eyes.nth(k).click();
    assert(await tinted() === 0, `${await tinted()} tinted pixels with every object hidden`);
    assert(await page.locator('.objects li.hidden-object').count() === await eyes.count(), 'the list does not mark them hidden');
    for (let k = 0; k < await eyes.count(); k++) await eyes.nth(k).click();
    assert(await tinted() === all, `shown again: ${await tinted()} tinted pixels, were ${all}`);
    await page.keyboard.press('h');
    const hid = await tinted();
    assert(hid < all && await page.locator('.objects li.selected.hidden-object').count() === 1, `H: ${hid} of ${all} tinted`);
    await page.keyboard.press('h');
    assert(await tinted() === all, 'H again did not show it');
    // O: the masks as their outlines (fewer pixels, still some), and filled again.
    await page.keyboard.press('o');
    const outlined = await tinted();
    assert(outlined > 0 && outlined < all / 2 && await page.isChecked('#outline'), `outlines: ${outlined} tinted pixels, filled ${all}`);
    await page.keyboard.press('o');
    assert(await tinted() === all && !(await page.isChecked('#outline')), 'O again did not fill the masks');
    // A colour of one's own from the list's colour picker (undoable).
    const green = () => viewerPixels(page, 'green');
    const greenBefore = await green();
    await page.locator('.objects li.selected .swatch').fill('#00ff00');
    await page.locator('.objects li.selected .swatch').focus(); // the keys still reach the page
    const greenAfter = await green();
    assert(greenAfter > greenBefore + 1000 && await tinted() === all, `green pixels ${greenBefore} → ${greenAfter}`);
    await page.keyboard.press('Control+z');
    assert(await green() === greenBefore && await page.inputValue('.objects li.selected .swatch') !== '#00ff00', 'undo did not restore the colour');

    const selected = page.locator('.objects li.selected .object-name');
    const old = await selected.textContent();
    await selected.dblclick();
    const editing = () => page.waitForFunction(() => {
      const e = document.activeElement;
      return e?.id === 'rename' && e.value.length > 0 && e.selectionEnd - e.selectionStart === e.value.length;
    }, null, { timeout: 5_000 }).catch(() => { throw new Error('the name is not open for typing, all of it selected'); });
    await editing();
    await page.keyboard.type('Right lung / nodule');
    await page.keyboard.press('h'); // typed into the name, not a shortcut
    await page.keyboard.press('Enter');
    assert(await selected.textContent() === 'Right lung / noduleh', `renamed to "${await selected.textContent()}"`);
    assert(await tinted() === all, 'typing H into the name hid the object');
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-mask')]);
    assert(dl.suggestedFilename() === 'right_lung___noduleh.png', `exported as ${dl.suggestedFilename()}`);
    await page.keyboard.press('F2');
    await editing();
    await page.keyboard.type('never mind');
    await page.keyboard.press('Escape');
    assert(await selected.textContent() === 'Right lung / noduleh', 'Esc did not keep the name');
    await page.keyboard.press('Control+z');
    assert(await selected.textContent() === old, `undo gave "${await selected.textContent()}", was "${old}"`);
    // A long name: at most 80 characters, cut on the screen, the Hide button still in the row.
    await page.keyboard.press('F2');
    await editing();
    await page.keyboard.type('x'.repeat(100));
    await page.keyboard.press('Enter');
    const row = await page.locator('.objects li.selected').boundingBox();
    const eye = await page.locator('.objects li.selected .eye').boundingBox();
    assert((await selected.textContent()).length === 80 && eye.x + eye.width <= row.x + row.width + 0.5,
      `name of ${(await selected.textContent()).length} characters; Hide button ends at ${eye.x + eye.width}, the row at ${row.x + row.width}`);
    await page.keyboard.press('Control+z');
    assert(await selected.textContent() === old, 'undo did not restore the name');
  });

  await check(`${prefix} refine: holes filled, the largest piece kept, grown and shrunk by a pixel, values kept in a range; each one undo step; measurements`, async () => {
    const px = () => selectedPixels(page);
    const at = pixelAt(await page.locator('#view').boundingBox());
    const said = async (re) => {
      const s = await page.textContent('#status');
      assert(re.test(s), `status "${s}", expected ${re}`);
    };
    await page.locator('.objects li').first().click(); // the lung2 mask
    await page.keyboard.press('f');
    const n0 = await px(); // its own holes (if any) filled
    const dot = async (key, x, y) => {
      await page.keyboard.press(key);
      await page.mouse.move(...at(x, y));
      await page.mouse.down();
      await page.mouse.up();
    };
    // A hole erased deep inside the mask (its deepest point on the official mask: 358, 360).
    await dot('e', 358, 360);
    const holed = await px();
    assert(holed < n0, `the eraser left ${holed} of ${n0} px`);
    await page.click('button:has-text("Fill holes")');
    assert(await px() === n0, `Fill holes gave ${await px()} px, ${n0} before the hole`);
    await said(new RegExp(`^Filled holes: ${n0 - holed} px\\.$`));
    await page.keyboard.press('f');
    await said(/^No holes to fill\.$/);
    // A stray dot far from it: L keeps the largest piece.
    await dot('r', 60, 460);
    const stray = (await px()) - n0;
    assert(stray > 50, `the brush dot added ${stray} px`);
    await page.keyboard.press('l');
    assert(await px() === n0, `Largest piece left ${await px()} px of ${n0}`);
    await said(new RegExp(`^Kept the largest piece: removed 1 other \\(${stray} px\\)\\.$`));
    // G grows by a ring of pixels, Shift+G shrinks; each step undoes alone.
    await page.keyboard.press('b');
    await page.keyboard.press('g');
    const grown = await px();
    assert(grown > n0 + 100 && grown < n0 * 1.2, `grown to ${grown} px from ${n0}`);
    await page.keyboard.press('Shift+G');
    const closed = await px();
    assert(closed >= n0 && closed < grown, `grown then shrunk: ${closed} px (was ${n0}, grown ${grown})`);
    await page.keyboard.press('Shift+G');
    assert(await px() < closed, 'Shift+G did not shrink');
    for (const want of [closed, grown, n0, n0 + stray, n0, holed]) {
      await page.keyboard.press('Control+z');
      assert(await px() === want, `undo gave ${await px()} px, expected ${want}`);
    }
    await page.keyboard.press('Control+z');
    assert(await px() === n0, 'undo did not take the eraser back');
    // Measurements (CSV): a row per object; the lung2 mask's pixels and the grey levels under
    // it, as its exported mask and the image give them.
    const rows = await measurements(page);
    assert(rows.length === await page.locator('.objects li').count(), `${rows.length} rows`);
    const mask = gray(await exportMask(page, `refined-${mode}.png`));
    const image = gray(readPng(path.join(FIX, 'litemedsam_lung2_z22_image.png')));
    const under = [...image].filter((_, i) => mask[i] > 0);
    assert(rows[0].label === '1' && Number(rows[0].pixels) === n0 && under.length === n0 && rows[0].volume_ml === '',
      `the first row ${JSON.stringify(rows[0])}, the mask ${under.length} px, the list ${n0}`);
    const same = sameStats(rows[0], under);
    assert(same === true, same);
    // Keep in range: only the pixels up to grey 100 stay (the image under the mask says which).
    await page.fill('#keep-hi', '100');
    await page.click('#keep-in-range');
    const dark = under.filter((g) => g <= 100).length;
    assert(await px() === dark && await page.textContent('#status') === `Kept the values up to 100: −${n0 - dark} px.`,
      `kept ${await px()} px (${dark} of ${n0} are ≤ 100): "${await page.textContent('#status')}"`);
    await page.fill('#keep-hi', '');
    await page.focus('#keep-in-range'); // out of the number field, whose keys are its own
    await page.keyboard.press('Control+z');
    assert(await px() === n0, 'undo did not bring the pixels out of range back');
  });

  await check(`${prefix} N / Shift+N select through the list; a box's edge or corner dragged segments its object again from the new box; undo restores it; Esc drops a box being dragged`, async () => {
    const at = pixelAt(await page.locator('#view').boundingBox());
    const count = () => page.locator('.objects li').count();
    const px = () => selectedPixels(page);
    const status = (re) => page.waitForFunction((re) => new RegExp(re).test(document.querySelector('#status')?.textContent), re, { timeout: 300_000 })
      .catch(async (e) => { throw new Error(`${e.message}: ${await pageState(page)}`); });
    // A box as the status reports it, each side within a pixel (pointer positions are whole
    // screen pixels).
    await page.keyboard.press('b');
    const boxIs = (...b) => `^Mask in .*box ${b.map((v) => `(${v - 1}|${v}|${v + 1})`).join(',')}`;
    await drawBox(page, [300, 320, 400, 400]);
    await status(boxIs(300, 320, 400, 400));
    const n = await count(), before = await px();
    // N and Shift+N move the selection through the list (wrapping around).
    const selectedAt = () => page.evaluate(() => [...document.querySelectorAll('.objects li')].findIndex((li) => li.classList.contains('selected')));
    assert(await selectedAt() === n - 1, `the new box's object is not the one selected (${await selectedAt()})`);
    await page.keyboard.press('n');
    assert(await selectedAt() === 0, `N selected ${await selectedAt()} after the last`);
    await page.keyboard.press('Shift+N');
    assert(await selectedAt() === n - 1, `Shift+N selected ${await selectedAt()}`);
    // The cursor offers the edge, and the corner, where a press would take them.
    const cursor = async (x, y) => { await page.mouse.move(...at(x, y)); return page.evaluate(() => document.querySelector('#view').style.cursor); };
    assert(await cursor(400, 360) === 'ew-resize' && await cursor(400, 400) === 'nwse-resize' && await cursor(350, 360) === '',
      'no resize cursor on the box edge and corner (or one inside the box)');
    await page.mouse.move(...at(400, 360));
    await page.mouse.down();
    await page.mouse.move(...at(430, 360), { steps: 4 });
    await page.mouse.up();
    await status(boxIs(300, 320, 430, 400));
    assert(await count() === n, `moving the edge made a new object (${await count()}, was ${n})`);
    const wider = await px();
    assert(wider !== before, `the mask did not change (${wider} px)`);
    // The top-left corner moves both its edges.
    await page.mouse.move(...at(300, 320));
    await page.mouse.down();
    await page.mouse.move(...at(310, 335), { steps: 4 });
    await page.mouse.up();
    await status(boxIs(310, 335, 430, 400));
    assert(await count() === n, 'moving the corner made a new object');
    await page.keyboard.press('Control+z');
    await page.keyboard.press('Control+z');
    assert(await px() === before && await count() === n, `undo gave ${await px()} px, was ${before}`);
    await page.keyboard.press('Control+z');
    assert(await count() === n - 1, 'the last undo did not take the box away');
    // Esc while dragging drops the box: nothing is segmented on release.
    await page.mouse.move(...at(100, 100));
    await page.mouse.down();
    await page.mouse.move(...at(200, 200), { steps: 3 });
    await page.keyboard.press('Escape');
    await page.mouse.up();
    await page.waitForTimeout(500);
    assert(await count() === n - 1 && await page.getAttribute('.app', 'data-phase') === 'ready', 'Esc did not drop the box being dragged');
  });

  // After the WebGPU segmentation: from here on the page computes on the CPU.
  if (mode === 'webgpu') await check(`${prefix} a lost GPU: the page says so, goes on on the CPU (segments like the official model), trained weights kept`, async () => {
    const n = await page.evaluate(() => (self.__medsegGpuDevices || []).length);
    assert(n >= 1, 'the page recorded no WebGPU device');
    const objects = await page.locator('.objects li').count();
    assert(objects > 0, 'no mask from the WebGPU check to keep');
    await page.evaluate(() => self.__medsegGpuDevices.forEach((d) => d.destroy()));
    await page.waitForSelector('#error', { timeout: 30_000 });
    const msg = await page.textContent('#error');
    assert(/GPU stopped working.*continues on the CPU.*work is kept/.test(msg), `message "${msg}"`);
    // The open scan is encoded again, on the CPU.
    await waitPhase('ready', 120_000);
    assert(await page.locator('.objects li').count() === objects, 'masks lost with the GPU');
    const backend = await page.textContent('#backend');
    assert(backend.includes('CPU'), `backend ${backend}`);
    await page.click('#error button');
    // GenSeg's weights trained on the GPU just before come back from the browser's storage.
    await page.waitForFunction(() => document.querySelector('#genseg-info')?.textContent.includes('kept in this browser'), null, { timeout: 60_000 });
    const t1 = Date.now();
    await openScan(path.join(FIX, 'litemedsam_lung2_z22_image.png'), 300_000);
    await drawBox(page, LUNG2_BOX);
    const d = lung2Dice(await exportMask(page, 'mask-after-gpu-loss.png'));
    console.log(`  ${prefix} after the GPU loss: ${backend}; ${await page.textContent('#status')} ${Date.now() - t1} ms; Dice vs official ${d.toFixed(4)}`);
    assert(d >= 0.98, `Dice ${d}`);
  });

  await check(`${prefix} bad files give clear messages and keep the work`, async () => {
    const before = await page.locator('.objects li').count();
    const bad = [
      ['notes.png', Buffer.from('this is a text file renamed to png'), /cannot read image/],
      ['truncated.png', fs.readFileSync(path.join(FIX, 'litemedsam_lung2_z22_image.png')).subarray(0, 3000), /damaged|truncated|cannot read/],
      ['giant.png', giantPng(), /20000×20000/],
    ];
    for (const [name, buffer, re] of bad) {
      await page.setInputFiles('#file', { name, mimeType: 'image/png', buffer }, { timeout: 120_000 });
      await page.waitForSelector('#error', { timeout: 20_000 });
      const msg = await page.textContent('#error');
      assert(re.test(msg), `${name}: message "${msg}"`);
      assert((await page.locator('.objects li').count()) === before, `${name}: objects lost`);
      // On SwiftShader the encode of the open image holds the page's thread for long stretches
      // (measured: 22 s + 8 s before burn's autodiff was compiled in, 68 s + 63 s after; see
      // BENCHMARKS.md), so the click may wait for it there.
      await page.click('#error button', { timeout: mode === 'webgpu' ? 300_000 : 30_000 });
    }
    assert(await phase() === 'ready', `phase ${await phase()}`);
    await page.screenshot({ path: path.join(ART, `bad-input-${mode}.png`) });
  });

  if (mode === 'cpu') await check(`${prefix} the bad-file corpus: each image, volume and zip gives its own message; the work is kept`, async () => {
    const dir = path.join(ROOT, 'tests/corpus/bad');
    const cases = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')).filter((c) => ['image', 'volume', 'zip'].includes(c.kind));
    const before = await page.locator('.objects li').count();
    const problems = [];
    for (const c of cases) {
      await page.setInputFiles(c.kind === 'zip' ? '#support-import' : '#file', path.join(dir, c.file));
      await page.waitForSelector('#error', { timeout: 30_000 });
      const msg = await page.textContent('#error');
      await page.click('#error button');
      await page.waitForSelector('#error', { state: 'detached', timeout: 10_000 });
      if (!msg.includes(c.file) || !c.expect.split('|').some((alt) => msg.includes(alt))) problems.push(`${c.file}: "${msg}"`);
    }
    console.log(`  ${prefix} ${cases.length} bad files, ${cases.length - problems.length} with their own message`);
    assert(problems.length === 0, problems.join('; '));
    assert(await page.locator('.objects li').count() === before, 'objects lost');
    assert(await phase() === 'ready', `phase ${await phase()}`);
  });

  if (mode === 'cpu') await check(`${prefix} autosave: a reload restores the scan and its masks exactly; a full disk is reported`, async () => {
    const exportMask = async (name) => {
      const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-mask')]);
      const file = path.join(ART, name);
      await dl.saveAs(file);
      return gray(readPng(file));
    };
    const objects = await page.locator('.objects li').count();
    assert(objects > 0, 'nothing to restore');
    const before = await exportMask(`autosave-before-${mode}.png`);
    await new Promise((r) => setTimeout(r, 1000)); // the debounce
    await page.reload();
    await page.waitForFunction(() => document.querySelector('#status')?.textContent.startsWith('Restored'), null, { timeout: 120_000 });
    assert(await page.locator('.objects li').count() === objects, 'objects lost in the reload');
    const after = await exportMask(`autosave-after-${mode}.png`);
    const d = dice(before, after);
    console.log(`  ${prefix} ${await page.textContent('#status')} Dice of the restored mask ${d}`);
    assert(d === 1 && before.length === after.length, `Dice ${d}`);
    // A full disk: the next save fails with a message that says so, and the work stays.
    await page.evaluate(() => {
      window.__put = IDBObjectStore.prototype.put;
      IDBObjectStore.prototype.put = function () { throw new DOMException('The quota has been exceeded.', 'QuotaExceededError'); };
    });
    await page.keyboard.press('Delete');
    await page.waitForSelector('#error', { timeout: 30_000 });
    const msg = await page.textContent('#error');
    assert(/Autosave failed: the browser's storage is full.*still open in this tab/.test(msg), `message "${msg}"`);
    await page.click('#error button');
    await page.evaluate(() => { IDBObjectStore.prototype.put = window.__put; });
    await page.keyboard.press('Control+z');
    assert(await page.locator('.objects li').count() === objects, 'undo after the failed save');
  });

  if (mode === 'cpu') await universegChecks(page, prefix, waitPhase);
  if (mode === 'cpu') await volumeChecks(page, prefix, check, assert, ROOT, ART);
  if (mode === 'cpu') await dicomChecks(page, prefix, check, assert, ROOT);
  if (mode === 'cpu') await gensegChecks(page, prefix, check, assert, FIX, ART);

  // Last before the reload (which starts a fresh pool): the failed worker is not replaced.
  if (mode === 'cpu') await check(`${prefix} an encoder worker that fails mid-encode: the page encodes the image itself`, async () => {
    await page.setInputFiles('#file', path.join(FIX, 'litemedsam_lung2_z22_image.png'));
    await waitPhase('embedding', 30_000);
    // The app's encoder workers (not their matrix product helpers, blob: workers blocked in Atomics.wait).
    const workers = page.workers().filter((w) => w.url().endsWith('/worker.js'));
    assert(workers.length > 0, 'no encoder worker');
    // What a trap in the wasm's async work looks like from outside: the answer never comes, an
    // unhandled rejection does.
    for (const w of workers) {
      await w.evaluate(() => {
        const post = self.postMessage.bind(self);
        self.postMessage = (m, ...rest) => { if (m?.kind !== 'embedded') post(m, ...rest); };
        Promise.reject(new Error('simulated trap'));
      });
    }
    await waitPhase('ready', 300_000);
    await drawBox(page, LUNG2_BOX);
    const d = lung2Dice(await exportMask(page, 'mask-after-worker-failure.png'));
    console.log(`  ${prefix} after a worker failure (${workers.length} worker(s)): ${await page.textContent('#status')} Dice ${d.toFixed(4)}`);
    assert(d >= 0.98, `Dice ${d}`);
    // A newly opened scan numbers its objects from 1 again.
    const names = await page.locator('.objects li .object-name').allTextContents();
    assert(names.join() === 'Object 1', `objects after opening a new scan: ${names.join(' | ')}`);
  });

  if (mode === 'cpu') await check(`${prefix} an engine without relaxed SIMD: the plain matrix tile segments the same`, async () => {
    // Such an engine rejects the fused multiply-add tile's module (gemm_fma.rs): here validate()
    // says so for it (the app's own wasm is megabytes), and the page encodes on its own thread
    // (?encoders=0), where this applies.
    const other = await page.context().newPage();
    try {
      await other.addInitScript(() => {
        const validate = WebAssembly.validate;
        WebAssembly.validate = (bytes, ...rest) => (bytes.byteLength < 100_000 ? false : validate(bytes, ...rest));
      });
      await other.goto(origin + '/?encoders=0');
      await other.waitForFunction(() => ['idle', 'embedding', 'ready'].includes(document.querySelector('.app')?.dataset.phase), null, { timeout: 120_000 });
      // The page's own thread encodes here and is blocked while it does, so a poll may never see
      // the 'embedding' phase (once it timed out so): a mutation observer keeps every phase left
      // (its records wait for the thread), and the encode is done once 'embedding' was left for
      // 'ready'.
      await other.evaluate(() => {
        window.__left = [];
        new MutationObserver((records) => records.forEach((r) => window.__left.push(r.oldValue)))
          .observe(document.querySelector('.app'), { attributes: true, attributeFilter: ['data-phase'], attributeOldValue: true });
      });
      await other.setInputFiles('#file', path.join(FIX, 'litemedsam_lung2_z22_image.png'));
      await other.waitForFunction(() => window.__left.includes('embedding') && document.querySelector('.app').dataset.phase === 'ready', null, { timeout: 300_000 });
      await drawBox(other, LUNG2_BOX);
      const d = lung2Dice(await exportMask(other, 'mask-plain-tile.png'));
      const fma = await other.evaluate(() => self.__medsegFma === true);
      console.log(`  ${prefix} plain tile: ${await other.textContent('#status')} Dice vs official ${d.toFixed(4)}`);
      assert(!fma, 'the fused multiply-add tile was used although its module was rejected');
      assert(d >= 0.98, `Dice ${d}`);
    } finally { await other.close(); }
  });

  if (mode === 'cpu') await check(`${prefix} offline: after the first visit the app reloads and segments with the network off`, async () => {
    // The service worker has the page, its wasm and the model file.
    const cached = () => page.evaluate(async () => {
      if (!navigator.serviceWorker?.controller) return [];
      return (await (await caches.open('medseg-v1')).keys()).map((r) => r.url);
    });
    const ready = (urls) => urls.some((u) => u.endsWith('.wasm')) && urls.some((u) => u.endsWith('litemedsam.int8.medseg')) && urls.some((u) => u.endsWith('/'));
    for (let i = 0; i < 120 && !ready(await cached()); i++) await new Promise((r) => setTimeout(r, 1000));
    assert(ready(await cached()), `not cached: ${(await cached()).join(', ')}`);
    await page.context().setOffline(true);
    try {
      await page.reload();
      // The app is up once the model is (the autosaved scan may be encoding already).
      await page.waitForFunction(() => ['idle', 'embedding', 'ready'].includes(document.querySelector('.app')?.dataset.phase), null, { timeout: 120_000 });
      await openScan(path.join(FIX, 'litemedsam_lung2_z22_image.png'), 900_000);
      await drawBox(page, LUNG2_BOX);
      const area = await page.evaluate(() => document.querySelector('.objects li small')?.textContent);
      console.log(`  ${prefix} offline: ${await page.textContent('#status')} (${area})`);
      assert(area && parseInt(area) > 1000, `mask area ${area}`);
    } finally {
      await page.context().setOffline(false);
    }
  });

  if (mode === 'cpu') await check(`${prefix} Clear data forgets the scan, masks, support set and weights`, async () => {
    page.once('dialog', (d) => d.accept());
    await page.click('#clear-data');
    await page.waitForLoadState('load');
    await page.waitForFunction(() => ['idle'].includes(document.querySelector('.app')?.dataset.phase), null, { timeout: 120_000 });
    await new Promise((r) => setTimeout(r, 1500));
    await page.reload();
    await waitPhase('idle', 120_000);
    await new Promise((r) => setTimeout(r, 1500));
    const left = await page.evaluate(() => ({
      objects: document.querySelectorAll('.objects li').length,
      support: document.querySelectorAll('#support-list li').length,
      empty: !!document.querySelector('.empty'),
      genseg: document.querySelector('.generate')?.dataset.gensegPhase,
    }));
    assert(left.objects === 0 && left.support === 0 && left.empty && left.genseg === 'idle', `left: ${JSON.stringify(left)}`);
  });

  await check(`${prefix} nothing left the page's origin`, async () => {
    assert(egress.length === 0, `requests: ${egress.join(', ')}`);
  });
}

// UniverSeg, CPU session: the page's masks against the native CLI on the same files.
async function universegChecks(page, prefix, waitPhase) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'medseg-universeg-'));
  const bin = path.join(ROOT, 'target/debug/medseg');
  const pt = path.join(FIX, 'universeg_v1_random_seed20261126.pt');
  const model = convertNative(bin, pt, path.join(work, 'universeg.int8.medseg'));
  const taskPhase = (want, ms) => page.waitForFunction((w) => document.querySelector('.task')?.dataset.taskPhase === w, want, { timeout: ms });
  const supportCount = (n, ms) => page.waitForFunction((k) => document.querySelectorAll('#support-list li').length === k, n, { timeout: ms });
  const expectError = async (re) => {
    await page.waitForSelector('#error', { timeout: 30_000 });
    const msg = await page.textContent('#error');
    await page.click('#error button');
    assert(re.test(msg), `message "${msg}"`);
  };
  const runAndCompare = async (set, label, open) => {
    const native = nativeMask(bin, model, path.dirname(set.files[0]), set.target, path.join(work, `native-${label}.png`));
    if (open) {
      await page.setInputFiles('#file', set.target);
      await waitPhase('ready', 900_000);
    }
    const t1 = Date.now();
    await page.evaluate(() => document.querySelector('#task-run').click());
    // The page keeps answering while it works, and its progress bar advances.
    await page.waitForFunction(() => document.querySelector('.task')?.dataset.taskPhase === 'running', null, { timeout: 30_000 });
    const progress = () => page.evaluate(() => document.querySelector('.progress > div')?.style.width || 'done');
    const p1 = await progress();
    await new Promise((r) => setTimeout(r, 2500));
    const p2 = await progress();
    assert(p1 !== p2, `progress did not move (${p1} → ${p2})`);
    await page.waitForFunction(() => document.querySelector('#status')?.textContent.startsWith('UniverSeg mask in'), null, { timeout: 600_000 });
    const ms = Date.now() - t1;
    const heap = await page.getAttribute('.task', 'data-heap-mb');
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-mask')]);
    const file = path.join(ART, `universeg-${label}.png`);
    await dl.saveAs(file);
    const got = gray(readPng(file)), want = gray(readPng(native));
    const d = dice(got, want), area = got.reduce((a, v) => a + (v > 0), 0);
    console.log(`  ${prefix} UniverSeg ${label}: page vs native Dice ${d.toFixed(4)} (${area} px), ${ms} ms per query, wasm heap ${heap} MB`);
    assert(area > 0 && area < got.length, `degenerate mask (${area} px)`);
    assert(d >= 0.99, `Dice ${d}`);
  };

  await check(`${prefix} UniverSeg: the .pt dropped in the page converts and is kept`, async () => {
    await taskPhase('no-weights', 120_000);
    assert((await page.textContent('#task-weights')).includes('github.com/JJGO/UniverSeg'), 'no instructions without weights');
    await page.setInputFiles('#universeg-weights', { name: 'lite_medsam.pth', mimeType: 'application/octet-stream', buffer: fs.readFileSync(path.join(FIX, 'sam_vit_small_random_seed7.pt')) });
    await expectError(/not a UniverSeg checkpoint/);
    await page.setInputFiles('#universeg-weights', pt);
    await page.waitForFunction(() => document.querySelector('#task-weights')?.textContent.includes('kept in this browser'), null, { timeout: 120_000 });
  });

  await check(`${prefix} UniverSeg: bad support input gives clear messages`, async () => {
    await page.click('#task-run');
    await expectError(/support set is empty/);
    const bad = writeSupport(FIX, path.join(work, 'bad/support'), 2);
    fs.copyFileSync(bad.files[0], bad.files[1]); // p00_mask.png is now a grey image
    await page.setInputFiles('#support-import', bad.files);
    await expectError(/p00: .*not binary/);
    await supportCount(1, 10_000);
    await page.click('#support-clear');
    await supportCount(0, 10_000);
  });

  await check(`${prefix} UniverSeg: support imported in the page, mask equals native (S = 5)`, async () => {
    const set = writeSupport(FIX, path.join(work, 's5/support'), 5);
    await page.setInputFiles('#support-import', set.files);
    await supportCount(5, 60_000);
    await runAndCompare(set, 's5', true);
    await page.screenshot({ path: path.join(ART, 'universeg-cpu.png') });
  });

  await check(`${prefix} UniverSeg: a zip of pairs imports; items can be removed`, async () => {
    await page.click('#support-clear');
    await supportCount(0, 10_000);
    const set = writeSupport(FIX, path.join(work, 'zip/support'), 5);
    const buffer = zipOf(set.files, 'pairs');
    await page.setInputFiles('#support-import', { name: 'pairs.zip', mimeType: 'application/zip', buffer });
    await supportCount(5, 60_000);
    await page.locator('#support-list li').nth(2).hover();
    await page.locator('#support-list li .remove').nth(2).click();
    await supportCount(4, 10_000);
  });

  await check(`${prefix} UniverSeg: a folder imports; Batch segments several images like native`, async () => {
    await page.click('#support-clear');
    await supportCount(0, 10_000);
    const set = writeSupport(FIX, path.join(work, 'folder/support'), 5);
    await page.setInputFiles('.task input[webkitdirectory]', path.dirname(set.files[0]));
    await supportCount(5, 60_000);
    const queries = path.join(work, 'folder/queries');
    fs.mkdirSync(queries);
    fs.copyFileSync(set.target, path.join(queries, 'target.png'));
    fs.copyFileSync(set.files[2], path.join(queries, 'second.png'));
    const names = ['target.png', 'second.png'];
    const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 300_000 }),
      page.setInputFiles('.task input[accept=".png,.jpg,.jpeg"]', names.map((n) => path.join(queries, n)))]);
    const zipFile = path.join(ART, 'universeg-batch.zip');
    await dl.saveAs(zipFile);
    const got = unzip(fs.readFileSync(zipFile));
    const nativeDir = path.join(work, 'folder/native');
    execFileSync(bin, ['universeg', '--weights', model, '--support', path.dirname(set.files[0]), '--query', queries, '--out', nativeDir]);
    for (const n of names) {
      const mask = n.replace('.png', '_mask.png');
      assert(got[mask], `the zip lacks ${mask} (has ${Object.keys(got)})`);
      const d = dice(gray(PNG.sync.read(got[mask])), gray(readPng(path.join(nativeDir, mask))));
      console.log(`  ${prefix} UniverSeg batch ${mask}: page vs native Dice ${d.toFixed(4)}`);
      assert(d >= 0.99, `${mask}: Dice ${d}`);
    }
  });

  await check(`${prefix} UniverSeg: S = 64 runs in chunks and equals native`, async () => {
    await page.click('#support-clear');
    const set = writeSupport(FIX, path.join(work, 's64/support'), 64);
    await page.setInputFiles('#support-import', set.files);
    await supportCount(64, 120_000);
    await runAndCompare(set, 's64', false); // the same target is still open
  });

  await check(`${prefix} UniverSeg: weights are restored from browser storage after a reload`, async () => {
    await page.reload();
    const shown = () => page.evaluate(() => `weights "${document.querySelector('#task-weights')?.textContent}", status "${document.querySelector('#status')?.textContent}", phase ${document.querySelector('.app')?.dataset.phase}`).catch((e) => e.message);
    await page.waitForFunction(() => document.querySelector('#task-weights')?.textContent.includes('kept in this browser'), null, { timeout: 120_000 })
      .catch(async (e) => { throw new Error(`${e.message}: ${await shown()}`); });
    // The autosaved scan comes back too and is encoded.
    await page.waitForFunction(() => ['idle', 'ready'].includes(document.querySelector('.app')?.dataset.phase), null, { timeout: 900_000 });
  });
  fs.rmSync(work, { recursive: true, force: true });
}

// MEDSEG_DIST serves another build than dist/ (e.g. to time an older bundle's checks).
const dist = path.resolve(ROOT, process.env.MEDSEG_DIST || 'dist');
if (!fs.existsSync(path.join(dist, 'index.html'))) { console.log(`${dist} is missing: build the app first`); process.exit(1); }
const server = await serve(dist);
for (const mode of ['cpu', 'webgpu']) if (!only || only === mode) await session(mode, server);
server.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
