#!/usr/bin/python3
"""Trains ddim4j's default KID feature extractor and exports it as TorchScript.

InceptionV3, the usual KID network, cannot be downloaded here; and its ImageNet features say little
about 32-pixel grey clothes. So the default is a small CNN classifier trained on Fashion-MNIST's
training split; its 128 penultimate activations are the features. Writes

  models/fashion-mnist-features.pt       TorchScript: [N, 1, 32, 32] normalised pixels -> [N, 128] features
  models/fashion-mnist-features.pt.json  its preprocessing (input size, pixel mean/std), the per-dimension
                                         feature mean/std over the training split (KID standardises with
                                         them), and its test accuracy

Run with Debian's python3-torch (the pyenv python3 has no torch):
  /usr/bin/python3 scripts/train-feature-extractor.py [--epochs 3] [--threads N]
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/usr/share/datasets/fashion-mnist"
SIZE = 32  # the side ddim4j's Fashion-MNIST models generate


def read_idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(magic & 0xFF)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def images(name):
    """Pixels in [0, 1], resized 28 -> 32 bilinearly as the extractor's preprocessing does."""
    x = torch.from_numpy(read_idx(name).astype(np.float32) / 255.0).unsqueeze(1)
    return F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False).clamp(0, 1)


def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.MaxPool2d(2))


class Features(nn.Module):
    """Widths 16-32-64 at 32 -> 16 -> 8 -> 4 pixels, global average pooling, then one 128-unit layer: the features."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(block(1, 16), block(16, 32), block(32, 64))
        self.head = nn.Sequential(nn.Linear(64, 128), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(ROOT, "models", "fashion-mnist-features.pt"))
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    train_x, train_y = images("train-images-idx3-ubyte.gz"), torch.from_numpy(read_idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    test_x, test_y = images("t10k-images-idx3-ubyte.gz"), torch.from_numpy(read_idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
    mean, std = train_x.mean().item(), train_x.std().item()

    features = Features()
    classifier = nn.Sequential(features, nn.Dropout(0.2), nn.Linear(128, 10))
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=2e-3, weight_decay=1e-4)
    batch = 128
    steps = args.epochs * (len(train_x) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps)
    started = time.time()
    for epoch in range(args.epochs):
        classifier.train()
        order = torch.randperm(len(train_x))
        total = 0.0
        for i in range(len(train_x) // batch):
            index = order[i * batch:(i + 1) * batch]
            x = (train_x[index] - mean) / std
            if torch.rand(()) < 0.5:  # horizontal flips: clothes are left-right symmetric
                x = x.flip(3)
            loss = F.cross_entropy(classifier(x), train_y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {total / (len(train_x) // batch):.4f} "
              f"({time.time() - started:.0f} s)", flush=True)

    classifier.eval()
    with torch.no_grad():
        correct = sum((classifier((test_x[i:i + 1000] - mean) / std).argmax(1) == test_y[i:i + 1000]).sum().item()
                      for i in range(0, len(test_x), 1000))
        train_features = torch.cat([features((train_x[i:i + 1000] - mean) / std) for i in range(0, len(train_x), 1000)])
    accuracy = correct / len(test_x)
    feature_mean = train_features.mean(0)
    # Dead units (always 0) would divide by 0: floor the std.
    feature_std = train_features.std(0).clamp(min=1e-3)
    print(f"test accuracy {accuracy:.4f}")

    scripted = torch.jit.script(features)
    tmp = args.out + ".tmp"
    scripted.save(tmp)
    os.replace(tmp, args.out)
    spec = {
        "description": "ddim4j's default KID feature extractor: the 128 penultimate activations of a CNN classifier "
                       "trained on Fashion-MNIST's training split by scripts/train-feature-extractor.py",
        "input_size": SIZE,
        "input_channels": 1,
        "mean": [mean],
        "std": [std],
        "feature_mean": [round(v, 6) for v in feature_mean.tolist()],
        "feature_std": [round(v, 6) for v in feature_std.tolist()],
        "test_accuracy": accuracy,
        "epochs": args.epochs,
        "seed": args.seed,
        "torch": torch.__version__,
    }
    with open(args.out + ".json.tmp", "w") as f:
        json.dump(spec, f, indent=1)
    os.replace(args.out + ".json.tmp", args.out + ".json")
    print(f"wrote {args.out} and {args.out}.json")


if __name__ == "__main__":
    main()
