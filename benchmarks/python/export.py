#!/usr/bin/python3
"""Exports a ddim4j model's network to ONNX (for ONNX Runtime) and TorchScript (for DJL), for the Java peers.

    /usr/bin/python3 benchmarks/python/export.py --model models/fashion-mnist-32.safetensors --out DIR
    /usr/bin/python3 benchmarks/python/export.py --reference --out DIR [--seed 1]

Both exports take noisy images [B, C, S, S] (float32, the network's normalised space) and noise
variances [B] (noise rate^2, what ddim4j's U-Net is conditioned on) and return the network's output
(the predicted noise for target "noise"); the batch axis is dynamic, traced at --batch. The weights are
the ones sampling uses (EMA when the file has them). DIR gets:

    model.safetensors   the ddim4j model file the exports come from (a copy, or the created reference)
    model.onnx          torch.onnx.export, opset --opset
    model.pt            torch.jit.trace, frozen (torch.jit.freeze), torch.jit.save (DJL loads DIR with model name "model")
    ddim4j.json         config, normaliser and the check files' shapes, for the peers' DDIM loop
    check-*.f32         one check input (raw little-endian float32): noisy images, their t, the noise
                        variances ddim4j computes from t, and eager PyTorch's output (predicted noise)

--reference creates the untrained reference model (3x64x64, widths 32-64-96-128, depth 2) as the core
initialises it (uniform +-1/sqrt(fan_in) from --seed), except that the output convolution is not zeroed:
a zero output makes every engine predict exactly 0 and the accuracy check meaningless. Prints one JSON line.
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
import warnings

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "python"))
import ddim4j_torch  # noqa: E402

REFERENCE = {"block_depth": 2, "channels": 3, "embedding_dim": 32, "image_size": 64,
             "schedule": {"kind": "cosine", "max_signal": 0.95, "min_signal": 0.02}, "target": "noise",
             "widths": [32, 64, 96, 128]}


def reference_model(seed):
    model = ddim4j_torch.DdimModel(REFERENCE)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.net.modules():
            if isinstance(module, nn.Conv2d):
                bound = 1 / math.sqrt(module.weight[0].numel())
                module.weight.uniform_(-bound, bound, generator=generator)
                module.bias.uniform_(-bound, bound, generator=generator)
    return model.eval()


def write_f32(path, tensor):
    with open(path, "wb") as f:
        f.write(tensor.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a ddim4j model file (.safetensors)")
    source.add_argument("--reference", action="store_true", help="create the untrained reference model")
    parser.add_argument("--out", required=True, help="directory to write")
    parser.add_argument("--seed", type=int, default=1, help="weights of --reference, and the check input")
    parser.add_argument("--batch", type=int, default=16, help="batch to trace and check with")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (torch 1.13 writes up to 17; ORT 1.22 reads it)")
    args = parser.parse_args()

    # torch 1.13's ONNX exporter warns about the embedding's constant frequencies, which it folds correctly.
    warnings.filterwarnings("ignore", message="The shape inference of prim::Constant type is missing")
    torch.set_num_threads(os.cpu_count())
    os.makedirs(args.out, exist_ok=True)
    model_file = os.path.join(args.out, "model.safetensors")
    if args.reference:
        ddim4j_torch.save(reference_model(args.seed), model_file)
    elif os.path.abspath(args.model) != os.path.abspath(model_file):
        shutil.copyfile(args.model, model_file)
    # Export from what ddim4j will load: the file, read back, so all engines hold the same weights.
    model = ddim4j_torch.load(model_file)
    config = model.config
    network = model.network(use_ema=True).eval()
    channels, size = config["channels"], config["image_size"]

    # The check input: noisy images at times spread over (0, 1], and the variances ddim4j derives
    # from them (ddim4j_torch's rates are the core's float32 rates, bit for bit on the same libtorch).
    generator = torch.Generator().manual_seed(args.seed)
    noisy = torch.randn(args.batch, channels, size, size, generator=generator)
    t = torch.arange(1, args.batch + 1, dtype=torch.float32) / args.batch
    variances = model.rates(t)[1].square()
    with torch.no_grad():
        noise, image = model.predict(noisy, t)
    eager = noise if config["target"] == "noise" else image
    for name, tensor in (("noisy", noisy), ("t", t), ("variances", variances), ("pytorch-output", eager)):
        write_f32(os.path.join(args.out, f"check-{name}.f32"), tensor)

    started = time.perf_counter()
    with torch.no_grad():
        # Frozen, the embedding's frequencies (linspace, exp) become constants computed here, as the ONNX
        # exporter's constant folding makes them: libtorch 2.7.1's linspace differs from 1.13's in the last
        # bits of 4 of the 16, which moved DJL's predicted noise by 9e-5.
        traced = torch.jit.freeze(torch.jit.trace(network, (noisy, variances)))
        torch.jit.save(traced, os.path.join(args.out, "model.pt"))
        traced_error = (traced(noisy, variances) - network(noisy, variances)).abs().max().item()
        torch.onnx.export(network, (noisy, variances), os.path.join(args.out, "model.onnx"), opset_version=args.opset,
                          input_names=["noisy", "noise_variances"], output_names=["output"],
                          dynamic_axes={"noisy": {0: "batch"}, "noise_variances": {0: "batch"}, "output": {0: "batch"}})
    seconds = time.perf_counter() - started

    with open(model_file, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    meta = {"config": config, "normalizer": {"mean": model.normalizer.mean.tolist(), "std": model.normalizer.std.tolist()},
            "source": "reference" if args.reference else args.model, "seed": args.seed, "model_sha256": digest,
            "weights": "ema" if model.ema is not None else "net", "torch": torch.__version__, "opset": args.opset,
            "inputs": ["noisy", "noise_variances"], "output": "output", "check_batch": args.batch}
    with open(os.path.join(args.out, "ddim4j.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps({"tool": "export", "out": args.out, "source": meta["source"], "model_sha256": digest,
                      "parameters": sum(p.numel() for p in network.parameters()), "opset": args.opset,
                      "torch": torch.__version__, "torchscript_vs_eager_max_abs": traced_error, "seconds": round(seconds, 1)}))


if __name__ == "__main__":
    main()
