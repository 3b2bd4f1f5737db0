#!/usr/bin/python3
"""Writes benchmarks/RESULTS.md (to stdout) from the raw figures scripts/bench.sh leaves in benchmarks/results/."""
import datetime
import json
import os
import subprocess
import sys

results, threads = sys.argv[1], int(sys.argv[2])


def lines(name):
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


native, python, flops = lines("native.jsonl"), lines("python.jsonl"), lines("flops.jsonl")
one_thread = lines("one-thread.jsonl")
interleaved = lines("interleaved.jsonl")
with open(os.path.join(results, "jmh.json")) as f:
    jmh = json.load(f)
with open(os.path.join(results, "accuracy.txt")) as f:
    accuracy = f.read()


def find(rows, **keys):
    for row in rows:
        if all(row.get(k) == v for k, v in keys.items()):
            return row
    raise KeyError(keys)


def jmh_score(name, **params):
    for row in jmh:
        if row["benchmark"].endswith(name) and all(row["params"].get(k) == str(v) for k, v in params.items()):
            return row["primaryMetric"]["score"], row["primaryMetric"]["scoreError"], row["primaryMetric"]["scoreUnit"]
    raise KeyError((name, params))


def cpu():
    info = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if ":" in line:
                key, value = (part.strip() for part in line.split(":", 1))
                info.setdefault(key, value)
    return info


info = cpu()
cores = os.cpu_count()
mhz = float(info.get("cpu MHz", "0"))
flags = info.get("flags", "").split()
# FLOPs per cycle per core for float32: 2 FMA pipes x (16 lanes with AVX-512 as on Zen 5, or 8 with AVX2) x 2.
flops_per_cycle = 64 if "avx512f" in flags else 32
peak = cores * mhz * 1e6 * flops_per_cycle / 1e9
java_version = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
torch_version = python[0]["torch"] if python else "?"

out = []
w = out.append
w("# Benchmark results")
w("")
w(f"Written by `scripts/bench.sh` on {datetime.date.today()}; every figure below comes from that one run on one machine, side by side. "
  "Raw figures: `benchmarks/results/`. This machine is a shared VM and noisy: compare the ratios, which come from the same run, "
  "more than the absolute figures.")
w("")
w(f"- CPU: {info.get('model name', '?')}, {cores} cores at {mhz:.0f} MHz, flags include "
  f"{', '.join(f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16') if f in flags)}")
w(f"- Threads: {threads} for ddim4j (libtorch intra-op) and for PyTorch; libtorch {torch_version} in both (Debian)")
w(f"- Java: {java_version}; JMH 1.37, 1 fork, 2 warm-up + 3 measured iterations of 10 s (throughput), with `MALLOC_ARENA_MAX=1` "
  "as `scripts/ddim` sets it (without it, reference sampling through Java ran at 2.1 instead of 5.7 images/s)")
w("- Native driver `build/ddim_bench` and Python `benchmarks/python/baseline.py`: 2 warm-up operations, then throughput over at least "
  "3 operations and 20 s of timed work, like JMH's measurement")
w("- Work: sampling = 16 images x 20 deterministic DDIM steps from fresh noise; training = one step on 16 images "
  "(forward, MAE, backward, AdamW, EMA). Untrained reference U-Net (weights do not change the cost). "
  "`fashion` = 1x32x32, `reference` = 3x64x64, both widths 32-64-96-128, depth 2.")
w("")
w("## Throughput (images/s) and ratios")
w("")
w("| config | work | Java (JMH) | native driver | Python (PyTorch) | ddim4j / Python | Java / native - 1 (separate runs) |")
w("|---|---|---|---|---|---|---|")
for config in ("fashion", "reference"):
    for mode, bench, per_op in (("sample", "SamplingBenchmark.sample", 16), ("train", "TrainingBenchmark.step", 16)):
        score, error, _ = jmh_score(bench, config=config)
        java_rate = score * per_op
        native_rate = find(native, mode=mode, config=config, precision="fp32")["images_per_second"]
        python_rate = find(python, mode=mode, config=config)["images_per_second"]
        overhead = native_rate / java_rate - 1
        w(f"| {config} | {mode} | {java_rate:.2f} ± {error * per_op:.2f} | {native_rate:.2f} | {python_rate:.2f} | "
          f"**{java_rate / python_rate:.2f}x** | {overhead * 100:+.1f}% |")
w("")
w("The last column compares JMH with the driver, separate processes minutes apart: on this VM that difference is mostly "
  "the machine's drift, not Java. The next table measures the overhead properly.")
w("")
w("## Java overhead, interleaved in one process")
w("")
w("`JavaOverhead` (benchmarks module) runs the same work round after round in one JVM, alternately through the Java API "
  "(`Ddim.sample`, `Trainer.step`) and as the driver does it (one bare downcall per operation into preallocated native "
  "memory), in alternating order (AB, BA, ...), so that the machine's drift falls on both alike. "
  "Overhead = Java time / native time - 1, per round; the median over rounds is the estimate.")
w("")
w("| config | work | Java (images/s) | native (images/s) | rounds x s | overhead: median | pooled | middle half of rounds |")
w("|---|---|---|---|---|---|---|---|")
for row in interleaved:
    rounds = sorted(row["overhead_rounds"])
    n = len(rounds)
    low, high = rounds[n // 4], rounds[(3 * n - 1) // 4]
    w(f"| {row['config']} | {row['mode']} | {row['java_images_per_second']:.2f} | {row['native_images_per_second']:.2f} | "
      f"{row['rounds']} x {row['seconds_per_round']:.0f} | **{row['overhead_median'] * 100:+.1f}%** | "
      f"{row['overhead_pooled'] * 100:+.1f}% | {low * 100:+.1f}% .. {high * 100:+.1f}% |")
w("")
w("## bfloat16 sampling (`SampleOptions.precision(BFLOAT16)`, `--precision bfloat16`)")
w("")
w("| config | float32 (native) | bfloat16 (native) | speed-up | bfloat16 / Python float32 |")
w("|---|---|---|---|---|")
for config in ("fashion", "reference"):
    fp32 = find(native, mode="sample", config=config, precision="fp32")["images_per_second"]
    bf16 = find(native, mode="sample", config=config, precision="bf16")["images_per_second"]
    py = find(python, mode="sample", config=config)["images_per_second"]
    w(f"| {config} | {fp32:.2f} | {bf16:.2f} | **{bf16 / fp32:.2f}x** | {bf16 / py:.2f}x |")
w("")
bf16_line = next((line for line in accuracy.splitlines() if line.startswith("mean")), "?")
w(f"Error of the bfloat16 network against float32 from the same noise (trained model `models/fashion-mnist-32.safetensors`, "
  f"16 images, 20 DDIM steps, pixels in [0, 1]): {bf16_line}.")
w("")
w("## Achieved GFLOP/s against this machine's peak")
w("")
w(f"Peak float32 = {cores} cores x {mhz / 1000:.2f} GHz x {flops_per_cycle} FLOP/cycle (2 FMA pipes x "
  f"{flops_per_cycle // 4} lanes x 2) = **{peak:.0f} GFLOP/s** (the nominal clock; the VM's boost clock is unknown). "
  "FLOPs: the convolutions of one forward pass, counted by `baseline.py --flops` (other layers add < 1%); "
  "a training step counts 3 forward passes (forward, and backward for inputs and weights).")
w("")
w("| config | forward GFLOP / image | sampling GFLOP/s (native) | % of peak | training GFLOP/s (native) | % of peak |")
w("|---|---|---|---|---|---|")
for config in ("fashion", "reference"):
    per_image = find(flops, config=config)["forward_flops_per_image"] / 1e9
    sample_rate = find(native, mode="sample", config=config, precision="fp32")
    train_rate = find(native, mode="train", config=config)["images_per_second"]
    sampling = per_image * sample_rate["images_per_second"] * sample_rate["steps"]
    training = 3 * per_image * train_rate
    w(f"| {config} | {per_image:.3f} | {sampling:.0f} | {sampling / peak * 100:.0f}% | {training:.0f} | {training / peak * 100:.0f}% |")
w("")
w("## FFM against JNI")
w("")
w("A trivial call (`ddim_status_name`, a switch), ns per call:")
w("")
w("| jextract binding (FFM) | FFM, `Linker.Option.critical` | JNI shim |")
w("|---|---|---|")
calls = [jmh_score("CallOverheadBenchmark." + name) for name in ("ffm", "ffmCritical", "jni")]
w("| " + " | ".join(f"{score:.2f} ± {error:.2f}" for score, error, _ in calls) + " |")
w("")
w("Handing over a 16x3x64x64 float batch (768 KiB) that native code reads in full (`ddim_check_pixels`), µs per call:")
w("")
w("| FFM: heap array copied to native | FFM: off-heap segment | FFM: heap segment, critical call | JNI: copied | JNI: critical (pinned) |")
w("|---|---|---|---|---|")
transfers = [jmh_score("TransferBenchmark." + name) for name in ("ffmHeapCopied", "ffmOffHeap", "ffmCriticalHeap", "jniCopied", "jniCritical")]
w("| " + " | ".join(f"{score:.1f} ± {error:.1f}" for score, error, _ in transfers) + " |")
w("")
w("## Malloc caching")
w("")
no_caching = lines("no-malloc-caching.jsonl")
if no_caching:
    off = no_caching[0]["images_per_second"]
    on = find(native, mode="train", config="fashion", precision="fp32")["images_per_second"]
    w(f"Fashion training, native: glibc's default malloc {off:.2f} images/s, with `ddim_set_malloc_caching(1)` (the default) "
      f"{on:.2f} images/s: **{on / off:.2f}x**. The Python baseline runs with glibc's defaults, as PyTorch users do; "
      "it speeds up too with `MALLOC_MMAP_THRESHOLD_`/`MALLOC_TRIM_THRESHOLD_` set.")
w("")
w("## Thread count")
w("")
if one_thread:
    single = one_thread[0]["images_per_second"]
    many = find(native, mode="sample", config="reference", precision="fp32")["images_per_second"]
    w(f"Reference sampling, native: 1 thread (libtorch's start-up default here) {single:.2f} images/s, {threads} threads "
      f"(ddim4j's default: all processors) {many:.2f} images/s: **{many / single:.2f}x**.")
w("")
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "optimisations.md")) as f:
    w(f.read().rstrip())
w("")
w("## Commands")
w("")
w("```sh")
w("scripts/bench.sh                           # all of the above; THREADS=N ITERATIONS=N to change")
w("build/ddim_bench --mode sample|train --config reference|fashion [--precision bf16] [--threads N]")
w("/usr/bin/python3 benchmarks/python/baseline.py --mode sample|train --config reference|fashion --threads N")
w("java -jar benchmarks/target/benchmarks.jar SamplingBenchmark   # or TrainingBenchmark, CallOverheadBenchmark, TransferBenchmark")
w("java -cp benchmarks/target/benchmarks.jar org.ddim4j.benchmarks.SamplerAccuracy")
w("MALLOC_ARENA_MAX=1 java -cp benchmarks/target/benchmarks.jar org.ddim4j.benchmarks.JavaOverhead --rounds 10 --seconds 6")
w("```")
print("\n".join(out))
