#!/usr/bin/env bash
# The reference's experiment table: its 8 configurations (loss mae|mse x target noise|image x
# schedule cosine|linear), each trained on Fashion-MNIST 32x32 at the same budget from the same
# seed, then judged by KID against Fashion-MNIST's test split (which no run trains on).
# Writes experiments/runs/<loss>-<target>-<schedule>/ (model, losses, eval.json, samples.png) and
# experiments/RESULTS.md.
#
#   scripts/experiments.sh                       # the budget below
#   STEPS=2000 COUNT=1000 scripts/experiments.sh # a larger one
#   ONLY="mae-noise-cosine mae-image-cosine" STEPS=1600 RUNS=experiments/longer/runs OUT=experiments/longer/RESULTS.md \
#     scripts/experiments.sh                     # some of them
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$DDIM_ROOT"

steps=${STEPS:-400}         # optimisation steps per run
batch=${BATCH:-64}          # images per step
count=${COUNT:-500}         # images generated (and test images compared) for KID
sample_steps=${SAMPLE_STEPS:-20}
test_images=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
runs=${RUNS:-experiments/runs}
out=${OUT:-experiments/RESULTS.md}
only=${ONLY:-}              # e.g. "mae-noise-cosine mae-image-cosine": just these runs

scripts/setup.sh >/dev/null
mkdir -p "$runs"
for loss in mae mse; do
  for target in noise image; do
    for schedule in cosine linear; do
      run="$runs/$loss-$target-$schedule"
      [[ -z "$only" || " $only " == *" $loss-$target-$schedule "* ]] || continue
      rm -rf "$run"
      echo "== $loss / $target / $schedule: training $steps steps of $batch images"
      start=$(date +%s)
      scripts/ddim train --data fashion-mnist --channels 1 --image-size 32 --loss "$loss" --target "$target" \
        --schedule "$schedule" --steps "$steps" --batch-size "$batch" --seed 0 --validation-split 0.05 \
        --checkpoint-every 0 --no-progress --out "$run" > "$run.log"
      echo "$(( $(date +%s) - start ))" > "$run/train-seconds.txt"
      mv "$run.log" "$run/train.log"
      scripts/ddim eval --model "$run/model.safetensors" --data "$test_images" --count "$count" --steps "$sample_steps" \
        --no-progress --json "$run/eval.json" | tee "$run/eval.txt"
      scripts/ddim sample --model "$run/model.safetensors" --count 16 --steps "$sample_steps" --out "$run/samples.png" --no-progress
    done
  done
done
mkdir -p "$(dirname "$out")"
/usr/bin/python3 experiments/report.py "$runs" "$steps" "$batch" "$count" "$sample_steps" "$out" > "$out.tmp"
mv "$out.tmp" "$out"
echo "experiments: wrote $out"
