#!/usr/bin/python3
"""The Python baseline: the same model, training step and DDIM loop as ddim4j, in eager PyTorch.

Run with Debian's python3-torch (the same libtorch 1.13 as ddim4j here) and the same thread count:

    /usr/bin/python3 benchmarks/python/baseline.py --mode sample|train --config reference|fashion \
        [--batch 16] [--steps 20] [--iterations 3] [--min-seconds 20] [--warmup 2] [--threads 2] [--device cpu|cuda]

Prints one JSON object in the native driver's format. The model is the Keras DDIM example's U-Net
as ddim4j builds it (3,562,211 parameters at 3x64x64; checked at start-up), the schedule the offset
cosine, the step MAE on the noise with AdamW and an EMA of weights and BatchNorm statistics.
"""
import argparse
import copy
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn

# The U-Net lives in one place, the module that loads ddim4j model files into PyTorch.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "python"))
from ddim4j_torch import UNet  # noqa: E402


MIN_SIGNAL, MAX_SIGNAL = 0.02, 0.95


def rates(t):
    start, end = math.acos(MAX_SIGNAL), math.acos(MIN_SIGNAL)
    angles = start + t * (end - start)
    return torch.cos(angles), torch.sin(angles)


def sample(net, count, steps, channels, size, device):
    """The reference's deterministic DDIM loop; returns the last predicted image."""
    x = torch.randn(count, channels, size, size, device=device)
    times = torch.linspace(1.0, 0.0, steps + 1, device=device)
    for k in range(steps):
        signal, noise = rates(times[k].expand(count).reshape(-1, 1, 1, 1))
        next_signal, next_noise = rates(times[k + 1].expand(count).reshape(-1, 1, 1, 1))
        predicted_noise = net(x, noise.reshape(-1) ** 2)
        image = (x - noise * predicted_noise) / signal
        x = next_signal * image + next_noise * predicted_noise
    return image.clamp(0, 1)


def train_step(net, ema, optimizer, images, step):
    t = torch.rand(images.shape[0], device=images.device)
    signal, noise = rates(t.reshape(-1, 1, 1, 1))
    epsilon = torch.randn_like(images)
    noisy = signal * images + noise * epsilon
    loss = (net(noisy, noise.reshape(-1) ** 2) - epsilon).abs().mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    decay = min(0.999, (1 + step) / (10 + step))
    with torch.no_grad():
        for e, p in zip(ema.parameters(), net.parameters()):
            e.mul_(decay).add_(p, alpha=1 - decay)
        for e, b in zip(ema.buffers(), net.buffers()):
            if e.dtype.is_floating_point:
                e.mul_(decay).add_(b, alpha=1 - decay)
            else:
                e.copy_(b)
    return loss.item()


def convolution_flops(net, channels, size):
    """Multiply-adds x 2 of every convolution in one forward pass of one image (the other layers are < 1%)."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        kh, kw = module.kernel_size
        total += 2 * output.shape[1] * (module.in_channels // module.groups) * kh * kw * output.shape[2] * output.shape[3]

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net.eval()
        net(torch.zeros(1, channels, size, size), torch.ones(1))
    for hook in hooks:
        hook.remove()
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["sample", "train"], default="sample")
    parser.add_argument("--config", choices=["reference", "fashion"], default="reference")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=3, help="at least this many timed operations")
    parser.add_argument("--min-seconds", type=float, default=20, help="and at least this much timed time")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--flops", action="store_true", help="print the convolution FLOPs of one forward pass per image and exit")
    args = parser.parse_args()

    torch.set_num_threads(args.threads if args.threads > 0 else os.cpu_count())
    torch.manual_seed(1)
    channels, size = (3, 64) if args.config == "reference" else (1, 32)
    net = UNet(channels)
    if args.config == "reference":
        count = sum(p.numel() for p in net.parameters())
        assert count == 3_562_211, f"the baseline's U-Net has {count} parameters, ddim4j's has 3,562,211"

    if args.flops:
        print(json.dumps({"tool": "flops", "config": args.config, "forward_flops_per_image": convolution_flops(net, channels, size)}))
        return

    device = torch.device(args.device)
    net = net.to(device)

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize()

    seconds = []
    if args.mode == "sample":
        net.eval()
        with torch.inference_mode():
            i = 0
            while i < args.warmup or len(seconds) < args.iterations or sum(seconds) < args.min_seconds:
                i += 1
                synchronize()
                start = time.perf_counter()
                sample(net, args.batch, args.steps, channels, size, device)
                synchronize()
                if i > args.warmup:
                    seconds.append(time.perf_counter() - start)
    else:
        net.train()
        ema = copy.deepcopy(net)
        optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
        images = torch.rand(args.batch, channels, size, size, device=device)
        i = 0
        while i < args.warmup or len(seconds) < args.iterations or sum(seconds) < args.min_seconds:
            synchronize()
            start = time.perf_counter()
            train_step(net, ema, optimizer, images, i)
            synchronize()
            i += 1
            if i > args.warmup:
                seconds.append(time.perf_counter() - start)

    median = statistics.median(seconds)
    print(json.dumps({"tool": "python", "mode": args.mode, "config": args.config, "batch": args.batch,
                      "steps": args.steps if args.mode == "sample" else 1, "threads": torch.get_num_threads(),
                      "precision": "fp32", "device": args.device, "median_seconds": median, "images_per_second": args.batch * len(seconds) / sum(seconds),
                      "seconds": seconds, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
