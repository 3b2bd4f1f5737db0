#!/usr/bin/env python3
"""Renders the class-guidance experiment (benchmarks' ClassGuidance, run by scripts/class-guidance.sh) as Markdown:
python3 experiments/class_guidance.py experiments/class-guidance.json > experiments/class-guidance.md"""
import json
import sys

with open(sys.argv[1]) as f:
    r = json.load(f)
names = r["class_names"]
rows = r["guidance"]
unc = r["unconditional"]
head = r["classifier"]
per = r["samples_per_class"]
out = []
w = out.append
w("## Class-conditional model: classifier-free guidance")
w("")
w(f"Model `{r['class_model']}` against the unconditional `{r['unconditional_model']}`. For each guidance weight w, "
  f"{per} samples of each of the {len(names)} classes ({per * len(names)} in all; {r['steps']} steps of {r['sampler']}, "
  "seed 2026). The prediction is uncond + w (cond - uncond): w = 0 ignores the class, w = 1 is the plain conditional model.")
w("")
w(f"**Which class is it?** A softmax-regression head on the shipped KID feature extractor's 128 features "
  f"(`models/fashion-mnist-features.pt`), trained on the first {head['train_images']:,} of Fashion-MNIST's training images: "
  f"**{100 * head['test_accuracy']:.2f}% accuracy on the {head['test_images']:,} test images** "
  f"({100 * head['train_accuracy']:.2f}% on the training images). A sample counts as in its class when the head says so.")
w("")
w("**KID** (lower is better): per class, the class's samples against that class's 1,000 test images (100 subsets of "
  f"{min(per, 50)}); over all classes, all {per * len(names)} samples against {per * len(names)} test images spread over the "
  "test split (100 subsets of 100). The unconditional model's samples are grouped by the head's predicted class for its "
  "per-class KID.")
w("")
w("| guidance w | in the requested class | mean per-class KID | KID, all classes |")
w("|---:|---:|---:|---:|")
for row in rows:
    w(f"| {row['guidance']:g} | {100 * row['in_requested_class']:.1f}% | {row['kid_per_class_mean']:.4f} | {row['kid_all']:.4f} |")
w(f"| unconditional model | - | {unc['kid_per_predicted_class_mean']:.4f} | {unc['kid_all']:.4f} |")
w("")
best = max(rows, key=lambda row: (row["in_requested_class"], -row["kid_per_class_mean"]))
w(f"Best guidance by class accuracy: **w = {best['guidance']:g}**, {100 * best['in_requested_class']:.1f}% of samples in the "
  f"requested class (target: at least 90%), mean per-class KID {best['kid_per_class_mean']:.4f} against the unconditional "
  f"model's {unc['kid_per_predicted_class_mean']:.4f}, KID over all classes {best['kid_all']:.4f} against {unc['kid_all']:.4f}.")
w("")
w(f"For scale: the head itself puts {100 * head['test_accuracy']:.1f}% of real test images in their class, so a sample "
  "can hardly score much higher (its per-class accuracy on real images is the table's first column). The "
  "unconditional model's per-class KID groups its samples by the head's prediction, which keeps only samples the head "
  "finds typical of the class; the class model's KID per class takes every sample it was asked for.")
w("")
w("Per class (share in the requested class / KID against the class's test images):")
w("")
real = head.get("test_accuracy_per_class")
w("| class | " + ("head on real test images | " if real else "") + " | ".join(f"w = {row['guidance']:g}" for row in rows)
  + " | unconditional KID (samples it drew of the class) |")
w("|---|" + "---:|" * (len(rows) + 1 + (1 if real else 0)))
for c, name in enumerate(names):
    cells = ([f"{100 * real[c]:.0f}%"] if real else []) + [
        f"{100 * row['in_requested_class_per_class'][c]:.0f}% / {row['kid_per_class'][c]:.3f}" for row in rows]
    kid = unc["kid_per_predicted_class"][c]
    known = isinstance(kid, (int, float)) and kid == kid  # Jackson writes NaN (too few samples) as "NaN"
    cells.append((f"{kid:.3f}" if known else "-") + f" ({unc['predicted_class_counts'][c]})")
    w(f"| {c} {name} | " + " | ".join(cells) + " |")
w("")
w("![one row per class, guidance 3](../models/fashion-mnist-32-classes-samples.png)")
w("")
w("Reproduce: `scripts/class-guidance.sh` (the model from `models/README.md`; about half an hour on 2 cores).")
print("\n".join(out))
