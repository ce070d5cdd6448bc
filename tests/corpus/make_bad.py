#!/usr/bin/env python3
"""Writes tests/corpus/bad/: hostile or broken files, one per failure mode, each with the
message it must produce (manifest.json). Used by tests/bad_files.rs (library and CLI) and the
browser e2e (the page). Deterministic; rerun after changing it and commit the output."""
import gzip, hashlib, io, json, os, struct, zlib, zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'bad')
FIX = os.path.join(HERE, '..', '..', '..', 'shared', 'fixtures', 'litemedsam_lung2_z22_image.png')

def png_chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))

def png(w, h, idat=None, color=0, depth=8):
    sig = b'\x89PNG\r\n\x1a\n'
    ihdr = struct.pack('>IIBBBBB', w, h, depth, color, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(b''.join(b'\x00' + bytes((x * 7) % 256 for x in range(w)) for _ in range(h)))
    return sig + png_chunk(b'IHDR', ihdr) + png_chunk(b'IDAT', idat) + png_chunk(b'IEND', b'')

def jpeg_sof(w, h):
    # SOI, a baseline SOF0 for one 8-bit component, then nothing.
    sof = b'\xff\xc0' + struct.pack('>HBHHB', 11, 8, h, w, 1) + b'\x01\x11\x00'
    return b'\xff\xd8' + sof + b'\xff\xd9'

def nrrd(header_lines, data=b''):
    return ('NRRD0004\n' + ''.join(l + '\n' for l in header_lines) + '\n').encode() + data

def nifti(dims, datatype=16, bitpix=32, data=None, sizeof_hdr=348, vox_offset=352.0):
    h = bytearray(348)
    struct.pack_into('<i', h, 0, sizeof_hdr)
    d = [len(dims)] + list(dims) + [1] * (7 - len(dims))
    struct.pack_into('<8h', h, 40, *d)
    struct.pack_into('<hh', h, 70, datatype, bitpix)
    struct.pack_into('<8f', h, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into('<f', h, 108, vox_offset)
    struct.pack_into('<f', h, 112, 0.0)  # scl_slope 0: no scaling
    h[344:348] = b'n+1\x00'
    return bytes(h) + b'\x00' * 4 + (data or b'')

LITE = {'depths': [2, 2, 6, 2], 'embed_dims': [64, 128, 160, 320], 'img_size': 256, 'mbconv_expand_ratio': 4,
        'mlp_ratio': 4, 'num_heads': [2, 4, 5, 10], 'out_chans': 256, 'window_sizes': [7, 7, 14, 7]}

def medseg(arch='litemedsam', tensors=(), payload=b'', fmt=2, sha=None, config=LITE):
    header = {'format': fmt, 'arch': arch, 'config': config,
              'precision': 'f32', 'source_sha256': '0' * 64,
              'payload_sha256': sha or hashlib.sha256(payload).hexdigest(), 'tensors': list(tensors)}
    j = json.dumps(header).encode()
    return b'MEDSEGM1' + struct.pack('<I', len(j)) + j + payload

def tensor(name, shape, offset=0, dtype='f32'):
    return {'name': name, 'shape': shape, 'dtype': dtype, 'offset': offset}

def zip_of(entries):
    b = io.BytesIO()
    with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as z:
        for n, d in entries:
            z.writestr(n, d)
    return b.getvalue()

lung = open(FIX, 'rb').read()
nan4 = struct.pack('<f', float('nan'))
inf4 = struct.pack('<f', float('inf'))
ok_png = png(16, 16)

# (file, kind, expected message as a regex; kind routes it: image, volume, model, checkpoint, zip)
CASES = [
    ('empty.png', b'', 'image', r'the file is empty'),
    ('text_renamed.png', b'this is a text file renamed to png\n', 'image', r'not a PNG or JPEG file'),
    ('png_signature_only.png', ok_png[:8], 'image', r'unexpected end of file'),
    ('truncated.png', lung[:3000], 'image', r'damaged or truncated'),
    ('giant_20000.png', png(20000, 20000, idat=zlib.compress(b'\x00' * 20001)), 'image', r'20000×20000'),
    ('zero_width.png', png(0, 16, idat=zlib.compress(b'')), 'image', r'Invalid image dimensions'),
    ('bad_bit_depth.png', png(4, 4, color=0, depth=3), 'image', r'Invalid bit depth'),
    ('broken_idat.png', png(16, 16, idat=b'\x78\x9c garbage that is not deflate'), 'image', r'damaged or truncated'),
    ('gif_renamed.png', b'GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'image', r'Gif is not supported'),
    ('text_renamed.jpg', b'hello, not a jpeg', 'image', r'not a PNG or JPEG file'),
    ('jpeg_marker_only.jpg', b'\xff\xd8\xff', 'image', r'Not enough bytes'),
    ('jpeg_huge_sof.jpg', jpeg_sof(65000, 65000), 'image', r'Premature End of image'),
    ('empty.nrrd', b'', 'volume', r'the file is empty'),
    ('text_renamed.nrrd', b'hello world\n', 'volume', r'not a NRRD or NIfTI volume'),
    ('header_only.nrrd', b'NRRD0004\ntype: float\n', 'volume', r'header never ends'),
    ('missing_sizes.nrrd', nrrd(['type: float', 'dimension: 3', 'encoding: raw']), 'volume', r'missing sizes'),
    ('truncated_data.nrrd', nrrd(['type: float', 'dimension: 3', 'sizes: 10 10 10', 'encoding: raw', 'endian: little'], b'\0' * 100), 'volume', r'truncated (100 of 4000 bytes)'),
    ('huge_sizes.nrrd', nrrd(['type: float', 'dimension: 3', 'sizes: 100000 100000 100000', 'encoding: raw', 'endian: little'], b'\0' * 16), 'volume', r'too large'),
    ('zero_size.nrrd', nrrd(['type: float', 'dimension: 3', 'sizes: 0 10 10', 'encoding: raw', 'endian: little']), 'volume', r'the volume is empty'),
    ('four_dims.nrrd', nrrd(['type: float', 'dimension: 4', 'sizes: 2 2 2 2', 'encoding: raw', 'endian: little'], b'\0' * 64), 'volume', r'4-dimensional data is not a 2D/3D scan'),
    ('bad_type.nrrd', nrrd(['type: complex', 'dimension: 3', 'sizes: 2 2 2', 'encoding: raw'], b'\0' * 64), 'volume', r'voxel type "complex"'),
    ('bzip2.nrrd', nrrd(['type: float', 'dimension: 3', 'sizes: 2 2 2', 'encoding: bzip2', 'endian: little'], b'BZh9'), 'volume', r'encoding "bzip2" is not supported'),
    ('corrupt_gzip.nrrd', nrrd(['type: float', 'dimension: 3', 'sizes: 2 2 2', 'encoding: gzip', 'endian: little'], b'\x1f\x8b\x08\x00 not gzip at all'), 'volume', r'gzip data is damaged'),
    ('all_nan.nrrd', nrrd(['type: float', 'dimension: 3', 'sizes: 2 2 2', 'encoding: raw', 'endian: little'], nan4 * 8), 'volume', r'no finite voxel values'),
    ('all_inf.nrrd', nrrd(['type: float', 'dimension: 3', 'sizes: 2 2 2', 'encoding: raw', 'endian: little'], inf4 * 8), 'volume', r'no finite voxel values'),
    ('empty.nii', b'', 'volume', r'the file is empty'),
    ('header_cut.nii', nifti([4, 4, 4])[:100], 'volume', r'not a NRRD or NIfTI volume'),
    ('bad_sizeof_hdr.nii', nifti([4, 4, 4], data=b'\0' * 256, sizeof_hdr=999), 'volume', r'header size is not 348'),
    ('truncated_data.nii', nifti([10, 10, 10], data=b'\0' * 100), 'volume', r'truncated (100 bytes for 1000 voxels)'),
    ('huge_dims.nii', nifti([30000, 30000, 30000], data=b'\0' * 16), 'volume', r'too large'),
    ('zero_dim.nii', nifti([0, 4, 4]), 'volume', r'the volume is empty'),
    ('bad_datatype.nii', nifti([2, 2, 2], datatype=2048, bitpix=128, data=b'\0' * 128), 'volume', r'data type 2048'),
    ('all_nan.nii', nifti([2, 2, 2], data=nan4 * 8), 'volume', r'no finite voxel values'),
    ('time_series.nii', nifti([2, 2, 2, 3], data=b'\0' * 96), 'volume', r'time series'),
    ('truncated.nii.gz', (lambda z: z[:len(z) // 2])(gzip.compress(nifti([8, 8, 8], data=bytes(range(256)) * 8), mtime=0)), 'volume', r'gzip data is damaged or truncated'),
    ('empty.medseg', b'', 'model', r'not a medseg model file'),
    ('text_renamed.medseg', b'just some text, not weights', 'model', r'not a medseg model file'),
    ('magic_only.medseg', b'MEDSEGM1', 'model', r'not a medseg model file'),
    ('bad_header.medseg', b'MEDSEGM1' + struct.pack('<I', 20) + b'{"arch": "nonsense"', 'model', r'header is damaged'),
    ('huge_header.medseg', b'MEDSEGM1' + struct.pack('<I', 0xFFFFFFF0) + b'{}', 'model', r'header is damaged'),
    ('format_1.medseg', medseg(fmt=1), 'model', r'format 1 is not supported'),
    ('unknown_arch.medseg', medseg(arch='resnet50'), 'model', r'resnet50'),
    ('wrong_arch.medseg', medseg(arch='universeg_v1'), 'model', r'universeg_v1'),
    ('bad_checksum.medseg', medseg(payload=b'\0' * 16, sha='0' * 64), 'model', r'checksum mismatch'),
    ('tensor_outside.medseg', medseg(tensors=[tensor('w', [1000])], payload=b'\0' * 16), 'model', r'lies outside the file'),
    ('overflowing_shape.medseg', medseg(tensors=[tensor('w', [1 << 40, 1 << 40, 1 << 40])]), 'model', r'lies outside the file'),
    ('overflowing_offset.medseg', medseg(tensors=[tensor('w', [4], offset=(1 << 64) - 2)]), 'model', r'lies outside the file'),
    ('bad_config.medseg', medseg(config={}), 'model', r'config is invalid'),
    ('no_tensors.medseg', medseg(), 'model', r'missing'),
    ('text_renamed.pth', b'not a pytorch checkpoint', 'checkpoint', r'not a PyTorch checkpoint'),
    ('truncated_zip.pth', zip_of([('archive/data.pkl', b'\x80\x02}q\x00.')])[:40], 'checkpoint', r'damaged or truncated'),
    ('no_pickle.pth', zip_of([('archive/version', b'3')]), 'checkpoint', r'no data.pkl'),
    ('text_renamed.zip', b'hello, not a zip', 'zip', r'not a readable zip'),
    ('truncated.zip', zip_of([('a_image.png', ok_png), ('a_mask.png', ok_png)])[:60], 'zip', r'not a readable zip'),
]

def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    manifest = []
    for name, data, kind, expect in CASES:
        with open(os.path.join(OUT, name), 'wb') as f:
            f.write(data)
        manifest.append({'file': name, 'kind': kind, 'expect': expect})
    with open(os.path.join(OUT, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write('\n')
    print(f'{len(CASES)} bad files in {OUT}')

main()
