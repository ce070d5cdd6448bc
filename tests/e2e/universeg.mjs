// UniverSeg in the page: weights dropped as the official .pt (converted in the tab, kept in
// IndexedDB), support pairs imported through the UI, the fixture target segmented; the page's
// mask must match the native CLI's on the same files and the same (int8) model file.
import { PNG } from 'pngjs';
import fs from 'node:fs';
import zlib from 'node:zlib';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

const N = 128;

function safetensors(file) {
  const buf = fs.readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString());
  const out = {};
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    const [a, b] = v.data_offsets;
    const bytes = buf.subarray(8 + len + a, 8 + len + b);
    out[k] = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  }
  return out;
}

function writeGray(file, values, scale) {
  const png = new PNG({ width: N, height: N });
  for (let i = 0; i < N * N; i++) {
    const v = Math.max(0, Math.min(255, Math.round(values[i] * scale)));
    png.data[i * 4] = png.data[i * 4 + 1] = png.data[i * 4 + 2] = v;
    png.data[i * 4 + 3] = 255;
  }
  fs.writeFileSync(file, PNG.sync.write(png));
}

// A circular shift keeps an image–mask pair consistent while making a new example.
function shifted(plane, dx, dy) {
  const out = new Float32Array(N * N);
  for (let y = 0; y < N; y++) for (let x = 0; x < N; x++) out[((y + dy) % N) * N + ((x + dx) % N)] = plane[y * N + x];
  return out;
}

/// Writes `count` support pairs (the fixture's 5, then shifted copies) and the target.
export function writeSupport(fixDir, dir, count) {
  const f = safetensors(path.join(fixDir, 'universeg_v1_random_seed20261126.safetensors'));
  fs.mkdirSync(dir, { recursive: true });
  const files = [];
  for (let k = 0; k < count; k++) {
    const i = k % 5, s = Math.floor(k / 5) * 3;
    const im = shifted(f.support_images.subarray(i * N * N, (i + 1) * N * N), s, s);
    const lb = shifted(f.support_labels.subarray(i * N * N, (i + 1) * N * N), s, s);
    const name = `p${String(k).padStart(2, '0')}`;
    writeGray(path.join(dir, `${name}_image.png`), im, 255);
    writeGray(path.join(dir, `${name}_mask.png`), lb, 255);
    files.push(path.join(dir, `${name}_image.png`), path.join(dir, `${name}_mask.png`));
  }
  const target = path.join(dir, '..', `target.png`);
  writeGray(target, f.target, 255);
  return { files, target };
}

/// The native CLI's mask for the same inputs and model file.
export function nativeMask(bin, model, supportDir, target, out) {
  execFileSync(bin, ['universeg', '--weights', model, '--support', supportDir, '--query', target, '--out', out]);
  return out;
}

export function convertNative(bin, checkpoint, out) {
  execFileSync(bin, ['convert', '--arch', 'universeg', '--checkpoint', checkpoint, '--out', out]);
  return out;
}

/// A zip archive (stored, no compression) of `files` under `folder/`.
export function zipOf(files, folder) {
  const u16 = (v) => { const b = Buffer.alloc(2); b.writeUInt16LE(v); return b; };
  const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; };
  const locals = [], central = [];
  let offset = 0;
  for (const f of files) {
    const name = Buffer.from(`${folder}/${path.basename(f)}`);
    const data = fs.readFileSync(f);
    const crc = zlib.crc32(data);
    const common = [u16(20), u16(0), u16(0), u16(0), u16(0), u32(crc), u32(data.length), u32(data.length), u16(name.length), u16(0)];
    const local = Buffer.concat([u32(0x04034b50), ...common, name, data]);
    central.push(Buffer.concat([u32(0x02014b50), u16(20), ...common, u16(0), u16(0), u16(0), u32(0), u32(offset), name]));
    locals.push(local);
    offset += local.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.concat([u32(0x06054b50), u16(0), u16(0), u16(files.length), u16(files.length), u32(cd.length), u32(offset), u16(0)]);
  return Buffer.concat([...locals, cd, end]);
}

/// The files of a zip archive (stored or deflated), by name, read through its central directory.
export function unzip(buf) {
  let end = buf.length - 22;
  while (end >= 0 && buf.readUInt32LE(end) !== 0x06054b50) end--;
  if (end < 0) throw new Error('not a zip archive');
  const count = buf.readUInt16LE(end + 10);
  let p = buf.readUInt32LE(end + 16);
  const out = {};
  for (let k = 0; k < count; k++) {
    const method = buf.readUInt16LE(p + 10), size = buf.readUInt32LE(p + 20);
    const [n, e, c] = [28, 30, 32].map((o) => buf.readUInt16LE(p + o));
    const name = buf.subarray(p + 46, p + 46 + n).toString();
    const local = buf.readUInt32LE(p + 42);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const data = buf.subarray(start, start + size);
    out[name] = method === 8 ? zlib.inflateRawSync(data) : Buffer.from(data);
    p += 46 + n + e + c;
  }
  return out;
}
