#!/usr/bin/env bash
# The class-conditional model's experiment: how often samples land in the requested class, and their
# KID per class, at guidance 0, 1, 2, 3 and 5, against the unconditional shipped model. Writes
# experiments/class-guidance.json and .md, and puts the section at the end of experiments/RESULTS.md.
#
#   scripts/class-guidance.sh                      # 50 samples per class, 20 steps
#   PER_CLASS=100 STEPS=20 scripts/class-guidance.sh
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$DDIM_ROOT"
select_jdk

per_class=${PER_CLASS:-50}
steps=${STEPS:-20}
class_model=${CLASS_MODEL:-models/fashion-mnist-32-classes.safetensors}
unconditional=${UNCONDITIONAL_MODEL:-models/fashion-mnist-32.safetensors}

scripts/setup.sh >/dev/null
"$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp benchmarks/target/benchmarks.jar org.ddim4j.benchmarks.ClassGuidance \
  "$class_model" "$unconditional" experiments/class-guidance.json "$per_class" "$steps" 0 1 2 3 5
/usr/bin/python3 experiments/class_guidance.py experiments/class-guidance.json > experiments/class-guidance.md
# RESULTS.md keeps everything before the section's marker; report.py appends the same file when it regenerates.
marker='<!-- class-guidance: scripts/class-guidance.sh writes the rest of this file -->'
{ sed "/^$(printf '%s' "$marker" | sed 's/[.[\*^$/]/\\&/g')\$/,\$d" experiments/RESULTS.md; echo "$marker"; echo; cat experiments/class-guidance.md; } \
  > experiments/RESULTS.md.tmp
mv experiments/RESULTS.md.tmp experiments/RESULTS.md
echo "class guidance: wrote experiments/class-guidance.md and its section of experiments/RESULTS.md"
