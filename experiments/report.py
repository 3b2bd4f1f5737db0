#!/usr/bin/python3
"""Writes experiments/RESULTS.md (to stdout) from the runs scripts/experiments.sh leaves in experiments/runs/."""
import datetime
import json
import os
import sys

runs, steps, batch, count, sample_steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
out_path = sys.argv[6]  # where the report goes, so that its image links resolve from there

rows = []
for loss in ("mae", "mse"):
    for target in ("noise", "image"):
        for schedule in ("cosine", "linear"):
            name = f"{loss}-{target}-{schedule}"
            if not os.path.exists(os.path.join(runs, name, "eval.json")):
                continue  # a run left out (ONLY=...)
            with open(os.path.join(runs, name, "eval.json")) as f:
                figures = json.load(f)
            with open(os.path.join(runs, name, "train-seconds.txt")) as f:
                seconds = int(f.read().strip())
            rows.append((name, loss, target, schedule, figures, seconds))

best = min(rows, key=lambda row: row[4]["kid"])
mean_seconds = sum(row[5] for row in rows) / len(rows)
here = os.path.relpath(runs, os.path.dirname(os.path.abspath(out_path)))
out = []
w = out.append
w("# The reference's experiment table on Fashion-MNIST")
w("")
w(f"Written by `scripts/experiments.sh` on {datetime.date.today()}. Every run: the reference U-Net (widths 32-64-96-128, depth 2, "
  f"embedding 32) on Fashion-MNIST's training split at 1x32x32, **{steps} AdamW steps of {batch} images** "
  f"({steps * batch:,} images, about {steps * batch / 57000:.2f} epochs; lr 1e-3, weight decay 1e-4, EMA 0.999), seed 0 for "
  "everything, so the runs differ only in loss, target and schedule. The budget is sized for this 2-core machine "
  f"({mean_seconds / 60:.1f} minutes of training per run on average); the reference trains for hours, so compare the runs with "
  "each other, not with it.")
w("")
w(f"KID: {count} images generated with {sample_steps} deterministic DDIM steps (EMA weights) against {count} images of "
  "Fashion-MNIST's test split (never trained on), features from the shipped extractor `models/fashion-mnist-features.pt` "
  "(standardised, 128 dimensions), 100 subsets. noise_loss and image_loss: the reference's validation MAEs on those "
  "test images. Lower is better everywhere.")
w("")
w("| loss | target | schedule | KID | KID std | noise_loss | image_loss | training s |")
w("|---|---|---|---|---|---|---|---|")
for name, loss, target, schedule, figures, seconds in rows:
    mark = "**" if name == best[0] else ""
    w(f"| {loss} | {target} | {schedule} | {mark}{figures['kid']:.4f}{mark} | {figures['kid_std']:.4f} | "
      f"{figures['noise_loss']:.4f} | {figures['image_loss']:.4f} | {seconds} |")
w("")
ranking = sorted(rows, key=lambda row: row[4]["kid"])
w("noise_loss and image_loss are measured at t drawn uniformly and mapped through each run's own schedule, so they compare "
  "runs of one schedule, not runs across schedules (the linear schedule spends more of t at high noise).")
w("")
w("Ranked by KID: " + ", ".join(f"{row[1]}/{row[2]}/{row[3]} ({row[4]['kid']:.4f})" for row in ranking) + ".")
w("")
reference_choice = next((row for row in rows if row[0] == "mae-noise-cosine"), None)
if reference_choice is not None:
    position = [row[0] for row in ranking].index("mae-noise-cosine") + 1
    w(f"The reference's conclusion, MAE on the noise with the cosine schedule is best: here that run ranks **{position} of {len(rows)}** "
      f"(KID {reference_choice[4]['kid']:.4f}; best {best[1]}/{best[2]}/{best[3]} at {best[4]['kid']:.4f}).")
    w("")
longer = os.path.join(os.path.dirname(os.path.abspath(out_path)), "longer")
if os.path.abspath(runs) != os.path.join(longer, "runs") and os.path.exists(os.path.join(longer, "RESULTS.md")):
    w("## A longer budget for the deciding pair")
    w("")
    w("The short budget above ranks the image target first. To see whether that is a property of the targets or of 0.45 "
      "epochs, the two cosine MAE runs were repeated at 4x the budget ([longer/RESULTS.md](longer/RESULTS.md)):")
    w("")
    longer_kids = {}
    w("| loss | target | schedule | KID at 400 steps | KID at the longer budget |")
    w("|---|---|---|---|---|")
    for name, loss, target, schedule, figures, seconds in rows:
        path = os.path.join(longer, "runs", name, "eval.json")
        if os.path.exists(path):
            with open(path) as f:
                longer_kid = json.load(f)["kid"]
            w(f"| {loss} | {target} | {schedule} | {figures['kid']:.4f} | **{longer_kid:.4f}** |")
            longer_kids[name] = longer_kid
    w("")
    if {"mae-noise-cosine", "mae-image-cosine"} <= longer_kids.keys():
        holds = longer_kids["mae-noise-cosine"] < longer_kids["mae-image-cosine"]
        w("With more training the noise target " + ("overtakes" if holds else "still trails") + " the image target: "
          + ("the reference's choice (MAE on the noise, cosine schedule) is the better of the two once the runs are past the "
             "early phase, where predicting the image converges faster to blurry but garment-shaped samples."
             if holds else "the short-budget ranking stands at this budget too."))
        w("")
w("## Samples (16 per run, seed 42, 20 DDIM steps)")
w("")
for name, loss, target, schedule, figures, seconds in rows:
    w(f"**{loss} / {target} / {schedule}** (KID {figures['kid']:.4f})")
    w("")
    w(f"![{name}]({here}/{name}/samples.png)")
    w("")
w("## Commands")
w("")
w("```sh")
w(f"STEPS={steps} BATCH={batch} COUNT={count} SAMPLE_STEPS={sample_steps} scripts/experiments.sh   "
  "# ONLY='mae-noise-cosine ...' RUNS=DIR OUT=FILE for a subset")
w("# one run by hand:")
w(f"scripts/ddim train --data fashion-mnist --channels 1 --image-size 32 --loss mae --target noise --schedule cosine "
  f"--steps {steps} --batch-size {batch} --seed 0 --validation-split 0.05 --out experiments/runs/mae-noise-cosine")
w(f"scripts/ddim eval --model experiments/runs/mae-noise-cosine/model.safetensors "
  f"--data /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz --count {count} --steps {sample_steps}")
w("```")
# scripts/class-guidance.sh's section, kept when the table above is regenerated.
class_guidance = os.path.join(os.path.dirname(os.path.abspath(__file__)), "class-guidance.md")
if os.path.exists(class_guidance):
    w("<!-- class-guidance: scripts/class-guidance.sh writes the rest of this file -->")
    w("")
    with open(class_guidance) as f:
        w(f.read().rstrip("\n"))
print("\n".join(out))
