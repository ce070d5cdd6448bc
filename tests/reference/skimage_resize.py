"""Reference outputs for MedSAM ViT-B's resize (tests/medsam_vit_resize.rs).

The official MedSAM_Inference.py resizes the H×W×3 uint8 image with
    skimage.transform.resize(img_3c, (1024, 1024), order=3, preserve_range=True,
                             anti_aliasing=True).astype(np.uint8)
This script runs exactly that call on three inputs built from the lung2 fixture slice and writes
the results as PNGs next to it. Run once with scikit-image 0.26.0 / scipy 1.17.1 (numbers kept in
git; the tests need no Python):
    python3 -m venv /tmp/sk && /tmp/sk/bin/pip install scikit-image==0.26.0 scipy==1.17.1
    /tmp/sk/bin/python tests/reference/skimage_resize.py
"""
import os
import numpy as np
from skimage import io, transform

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "skimage_resize")
SRC = os.path.join(HERE, "../../../shared/fixtures/litemedsam_lung2_z22_image.png")


def medsam_resize(img_3c, h, w):
    return transform.resize(img_3c, (h, w), order=3, preserve_range=True,
                            anti_aliasing=True).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    grey = io.imread(SRC)
    assert grey.ndim == 2 and grey.dtype == np.uint8, grey.shape
    grey3 = np.repeat(grey[:, :, None], 3, axis=-1)
    # 1. The real path: a 512×512 CT slice up to 1024×1024 (no anti-aliasing).
    io.imsave(os.path.join(OUT, "lung2_1024.png"), medsam_resize(grey3, 1024, 1024), check_contrast=False)
    # 2. Colour, shrunk along x (anti-aliasing on that axis only) and enlarged along y; the
    #    tests rebuild the input from the same slice: R = rows 100..220 × cols 50..350,
    #    G = rows 200..320 × cols 150..450, B = 255 − R.
    r = grey[100:220, 50:350]
    rgb = np.stack([r, grey[200:320, 150:450], 255 - r], axis=-1)
    io.imsave(os.path.join(OUT, "rgb_300x120_to_128x200.png"), medsam_resize(rgb, 200, 128), check_contrast=False)
    # 3. A strong shrink of the grey slice (sigma 2.06 along both axes, 17-tap Gaussian).
    io.imsave(os.path.join(OUT, "lung2_100x90.png"), medsam_resize(grey3, 90, 100), check_contrast=False)


if __name__ == "__main__":
    main()
