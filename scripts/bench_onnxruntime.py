"""Peer benchmark: the official LiteMedSAM ONNX graphs (../shared/peers) on onnxruntime CPU.

Prints encoder/decoder medians in the same format as `medseg bench`. Not a test.
"""
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

peers = sys.argv[1] if len(sys.argv) > 1 else "../shared/peers"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2

opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
opts.inter_op_num_threads = 1
enc = ort.InferenceSession(f"{peers}/litemedsam_encoder.onnx", opts, providers=["CPUExecutionProvider"])
dec = ort.InferenceSession(f"{peers}/litemedsam_decoder.onnx", opts, providers=["CPUExecutionProvider"])

img = (np.arange(3 * 256 * 256) % 251 / 250.0).astype(np.float32).reshape(1, 3, 256, 256)
box = np.array([[[77.0, 77.0, 154.0, 179.0]]], dtype=np.float32)

def timed(f):
    t = time.perf_counter()
    out = f()
    return out, (time.perf_counter() - t) * 1e3

emb = enc.run(None, {"image": img})[0]
dec.run(None, {"image_embedding": emb, "box": box})
e_times, d_times = [], []
for _ in range(runs):
    emb, te = timed(lambda: enc.run(None, {"image": img})[0])
    _, td = timed(lambda: dec.run(None, {"image_embedding": emb, "box": box}))
    e_times.append(te)
    d_times.append(td)
print(f"onnxruntime {ort.__version__} cpu, {threads} threads")
print(f"encoder median {statistics.median(e_times):.1f} ms (min {min(e_times):.1f}, max {max(e_times):.1f})")
print(f"decoder median {statistics.median(d_times):.1f} ms (min {min(d_times):.1f}, max {max(d_times):.1f})")
