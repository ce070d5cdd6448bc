// GenSeg in the page (CPU session): bad input, a short training run that stays responsive,
// the gallery and its export, synthetic pairs into the support set, the trained segmenter,
// weights kept across a reload.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { writeSupport, unzip } from './universeg.mjs';

export async function gensegChecks(page, prefix, check, assert, fix, art) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'medseg-genseg-'));
  const supportCount = () => page.evaluate(() => document.querySelectorAll('#support-list li').length);
  const genPhase = () => page.getAttribute('.generate', 'data-genseg-phase');
  const expectError = async (re) => {
    await page.waitForSelector('#error', { timeout: 30_000 });
    const msg = await page.textContent('#error');
    await page.click('#error button');
    assert(re.test(msg), `message "${msg}"`);
  };
  const settings = async (size, width, iterations) => {
    await page.selectOption('#genseg-size', String(size));
    await page.fill('#genseg-width', String(width));
    await page.dispatchEvent('#genseg-width', 'change');
    await page.fill('#genseg-iterations', String(iterations));
    await page.dispatchEvent('#genseg-iterations', 'change');
  };

  await check(`${prefix} GenSeg: too few or unusable pairs give clear messages`, async () => {
    await page.click('#support-clear');
    await page.click('#genseg-train');
    await expectError(/GenSeg cannot train: .*at least 2 labelled pairs.*got 0/);
    const set = writeSupport(fix, path.join(work, 'one'), 1);
    await page.setInputFiles('#support-import', set.files);
    await page.waitForFunction(() => document.querySelectorAll('#support-list li').length === 1, null, { timeout: 30_000 });
    await page.click('#genseg-train');
    await expectError(/got 1/);
    // A pair whose mask is empty is named.
    const empty = path.join(work, 'empty');
    fs.mkdirSync(empty);
    const png = new PNG({ width: 40, height: 40 });
    for (let i = 0; i < 40 * 40; i++) { png.data[i * 4] = png.data[i * 4 + 1] = png.data[i * 4 + 2] = (i * 7) % 255; png.data[i * 4 + 3] = 255; }
    fs.writeFileSync(path.join(empty, 'blank_image.png'), PNG.sync.write(png));
    png.data.fill(0); for (let i = 0; i < 40 * 40; i++) png.data[i * 4 + 3] = 255;
    fs.writeFileSync(path.join(empty, 'blank_mask.png'), PNG.sync.write(png));
    await page.setInputFiles('#support-import', [path.join(empty, 'blank_image.png'), path.join(empty, 'blank_mask.png')]);
    await page.waitForFunction(() => document.querySelectorAll('#support-list li').length === 2, null, { timeout: 30_000 });
    await page.click('#genseg-train');
    await expectError(/blank: the mask is empty/);
    await page.click('#support-clear');
    assert(await genPhase() === 'idle', `phase ${await genPhase()}`);
  });

  await check(`${prefix} GenSeg: a short run trains responsively, shows losses and a gallery, exports pairs`, async () => {
    const set = writeSupport(fix, path.join(work, 'four'), 4);
    await page.setInputFiles('#support-import', set.files);
    await page.waitForFunction(() => document.querySelectorAll('#support-list li').length === 4, null, { timeout: 30_000 });
    await settings(32, 4, 40);
    // The delay between a click reaching the page and its handler running: how long the page
    // was busy when the user clicked.
    await page.evaluate(() => {
      window.__clickDelays = [];
      document.addEventListener('click', (e) => window.__clickDelays.push(performance.now() - e.timeStamp), true);
    });
    const t0 = Date.now();
    await page.click('#genseg-train');
    await page.waitForFunction(() => Number(document.querySelector('.generate')?.dataset.gensegIterations) >= 3, null, { timeout: 120_000 });
    await page.click('#genseg-pause');
    await page.waitForFunction(() => document.querySelector('.generate')?.dataset.gensegPhase === 'paused', null, { timeout: 5_000 });
    const atPause = Number(await page.getAttribute('.generate', 'data-genseg-iterations'));
    await new Promise((r) => setTimeout(r, 1500));
    const stillPaused = Number(await page.getAttribute('.generate', 'data-genseg-iterations'));
    assert(stillPaused <= atPause + 1, `training went on while paused (${atPause} → ${stillPaused})`);
    await page.click('#genseg-pause');
    await page.waitForFunction(() => document.querySelector('.generate')?.dataset.gensegPhase === 'trained', null, { timeout: 600_000 });
    const delays = await page.evaluate(() => window.__clickDelays);
    const worst = Math.max(...delays.slice(1));
    console.log(`  ${prefix} GenSeg: 40 iterations at 32², width 4 in ${Date.now() - t0} ms; ${await page.textContent('#status')}; click delays during training ${delays.slice(1).map((d) => d.toFixed(0)).join(', ')} ms`);
    assert(worst < 200, `a click waited ${worst.toFixed(0)} ms`);
    assert(await page.locator('#genseg-plot polyline').count() >= 3, 'loss curves missing');
    await page.waitForFunction(() => document.querySelectorAll('#genseg-gallery img').length === 8, null, { timeout: 60_000 });
    await page.locator('#genseg-gallery').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(art, 'genseg-cpu.png') });
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#genseg-export')]);
    const file = path.join(art, 'genseg_pairs.zip');
    await dl.saveAs(file);
    const entries = unzip(fs.readFileSync(file));
    const names = Object.keys(entries).sort();
    assert(names.length === 16, `zip holds ${names.length} files`);
    for (let k = 0; k < 8; k++) {
      const im = PNG.sync.read(entries[`synth_00${k}_image.png`]);
      const mk = PNG.sync.read(entries[`synth_00${k}_mask.png`]);
      assert(im.width === 32 && mk.width === 32, `pair ${k} is ${im.width}/${mk.width} wide`);
      let on = 0, lo = 255, hi = 0;
      for (let i = 0; i < 32 * 32; i++) {
        const m = mk.data[i * 4], v = im.data[i * 4];
        assert(m === 0 || m === 255, `mask ${k} not binary`);
        on += m > 0; lo = Math.min(lo, v); hi = Math.max(hi, v);
      }
      assert(on > 0, `mask ${k} is empty`);
      assert(hi - lo > 50, `image ${k} is flat (${lo}..${hi})`);
    }
  });

  await check(`${prefix} GenSeg: a time limit ends a long run and keeps what it learnt`, async () => {
    await settings(32, 4, 100000);
    await page.fill('#genseg-minutes', '0.05');
    await page.dispatchEvent('#genseg-minutes', 'change');
    await page.click('#genseg-train');
    await page.waitForFunction(() => document.querySelector('.generate')?.dataset.gensegPhase === 'trained', null, { timeout: 120_000 });
    const its = Number(await page.getAttribute('.generate', 'data-genseg-iterations'));
    const status = await page.textContent('#status');
    assert(/stopped \(time limit of 0\.05 min reached\) after \d+ iterations/.test(status), `status "${status}"`);
    assert(its > 0 && its < 1000, `${its} iterations in 3 s`);
    await page.fill('#genseg-minutes', '15');
    await page.dispatchEvent('#genseg-minutes', 'change');
  });

  await check(`${prefix} GenSeg: synthetic pairs join the task; the segmenter segments; weights survive a reload`, async () => {
    const before = await supportCount();
    await page.click('#genseg-to-support');
    await page.waitForFunction((n) => document.querySelectorAll('#support-list li').length === n + 8, before, { timeout: 30_000 });
    await page.setInputFiles('#file', path.join(work, 'four', 'p00_image.png'));
    await page.waitForFunction(() => document.querySelector('.app')?.dataset.phase === 'ready', null, { timeout: 900_000 });
    await page.click('#genseg-segment');
    await page.waitForFunction(() => document.querySelector('#status')?.textContent.startsWith('GenSeg segmenter mask in'), null, { timeout: 60_000 });
    await page.waitForFunction(() => [...document.querySelectorAll('.objects li')].some((li) => li.textContent.startsWith('GenSeg')), null, { timeout: 10_000 });
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#genseg-save')]);
    const weights = path.join(work, 'genseg.medseg');
    await dl.saveAs(weights);
    assert(fs.readFileSync(weights).subarray(0, 8).toString() === 'MEDSEGM1', 'saved weights are not a model file');
    await page.reload();
    await page.waitForFunction(() => document.querySelector('#genseg-info')?.textContent.includes('kept in this browser'), null, { timeout: 120_000 });
    // The autosaved image comes back and is encoded (the page's thread is busy meanwhile).
    await page.waitForFunction(() => document.querySelector('.app')?.dataset.phase === 'ready', null, { timeout: 900_000 });
    assert(await genPhase() === 'trained', `phase after reload ${await genPhase()}`);
    // A file that is not GenSeg weights is refused by name.
    await page.setInputFiles('#genseg-load', { name: 'other.medseg', mimeType: 'application/octet-stream', buffer: Buffer.from('MEDSEGM1 not really') });
    await expectError(/other\.medseg: /);
    await page.setInputFiles('#genseg-load', weights);
    await page.waitForFunction(() => document.querySelector('#genseg-info')?.textContent.includes('genseg.medseg'), null, { timeout: 60_000 });
  });
  fs.rmSync(work, { recursive: true, force: true });
}

// WebGPU session (SwiftShader, the GPU emulated on the CPU): GenSeg trains on the GPU path too.
export async function gensegWebgpuCheck(page, prefix, check, assert, fix) {
  await check(`${prefix} GenSeg: a tiny run trains on WebGPU and generates`, async () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'medseg-genseg-gpu-'));
    const set = writeSupport(fix, path.join(work, 'three'), 3);
    await page.setInputFiles('#support-import', set.files);
    await page.waitForFunction(() => document.querySelectorAll('#support-list li').length === 3, null, { timeout: 60_000 });
    await page.selectOption('#genseg-size', '32');
    for (const [id, v] of [['#genseg-width', '4'], ['#genseg-iterations', '2']]) {
      await page.fill(id, v);
      await page.dispatchEvent(id, 'change');
    }
    const t0 = Date.now();
    // Training runs in a worker, but the page's own first WebGPU kernels (the gallery) compile
    // on its thread with SwiftShader: click without waiting for the page to answer.
    await page.evaluate(() => setTimeout(() => document.querySelector('#genseg-train').click(), 0));
    await page.waitForFunction(() => document.querySelector('.generate')?.dataset.gensegPhase === 'trained', null, { timeout: 900_000, polling: 1000 });
    await page.waitForFunction(() => document.querySelectorAll('#genseg-gallery img').length === 8, null, { timeout: 300_000 });
    const its = Number(await page.getAttribute('.generate', 'data-genseg-iterations'));
    console.log(`  ${prefix} GenSeg on WebGPU: ${its} iterations at 32², width 4 + gallery in ${Date.now() - t0} ms; ${await page.textContent('#status')}`);
    assert(its === 2, `${its} iterations`);
    fs.rmSync(work, { recursive: true, force: true });
  });
}
