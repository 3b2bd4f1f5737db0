#!/usr/bin/python3
"""Writes benchmarks/RESULTS.md (to stdout) from the raw figures scripts/bench.sh leaves in benchmarks/results/."""
import datetime
import json
import os
import statistics
import subprocess
import sys

results, threads = sys.argv[1], int(sys.argv[2])


def lines(name):
    path = os.path.join(results, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


native_python, variants, flops = lines("native-python.jsonl"), lines("variants.jsonl"), lines("flops.jsonl")
interleaved = lines("interleaved.jsonl")
distributed = lines("distributed.jsonl")
serve_rows = lines("serve.jsonl")
serve = [row for row in serve_rows if row.get("group") == "serve"]
scaling = [row for row in serve_rows if row.get("group") == "serve-scaling"]
soak = lines("serve-soak.jsonl")
natives_load = lines("natives-load.jsonl")
fused_layers, fused_pixels = lines("fused-layers.jsonl"), lines("fused-pixels.jsonl")
guidance_cost, peer_batches = lines("guidance-cost.jsonl"), lines("peers-batches.jsonl")
fused_quality = None
if os.path.exists(os.path.join(results, "fused-quality.json")):
    with open(os.path.join(results, "fused-quality.json")) as f:
        fused_quality = json.load(f)
peers, peer_checks = lines("peers.jsonl"), lines("peers-check.jsonl")
measured_peak = next((row["gflops"] for row in lines("peak.jsonl")), None)
with open(os.path.join(results, "jmh.json")) as f:
    jmh = json.load(f)
with open(os.path.join(results, "accuracy.txt")) as f:
    accuracy = f.read()


def rate(row):
    """Images per second of one run of the driver, baseline.py or PeerSampling."""
    return row["images_per_second"]


def ab_ratios(rows, group, numerator_side=1):
    """Per-round speed ratios of an A/B group of bench.sh: side `numerator_side`'s images/s over the other side's."""
    by_round = {}
    for row in rows:
        if row.get("group") == group:
            by_round.setdefault(row["round"], {})[row["side"]] = rate(row)
    return sorted(sides[numerator_side] / sides[1 - numerator_side] for sides in by_round.values() if len(sides) == 2)


def median_rate(rows, group, side):
    return statistics.median(rate(row) for row in rows if row.get("group") == group and row["side"] == side)


def ratio_cells(ratios):
    return f"**{statistics.median(ratios):.2f}x** | {ratios[0]:.2f}x - {ratios[-1]:.2f}x"


# The engines of benchmarks/peers.sh, in the order the report lists them.
PEER_NAMES = {"ddim4j": "ddim4j (default: fused network)", "ddim4j-eager": "ddim4j eager network", "ddim4j-bf16": "ddim4j bfloat16 (fused)", "ddim4j-avx2": "ddim4j default, oneDNN capped at AVX2", "ort": "ONNX Runtime", "djl": "DJL (PyTorch)",
              "pytorch": "PyTorch eager (Python)", "pytorch-eager": "PyTorch eager (export.py)"}


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
# FLOPs per cycle per core for float32: 2 FMA pipes x (16 lanes with AVX-512 as on Zen 5, 8 with AVX2 + FMA) x 2.
flops_per_cycle = 64 if "avx512f" in flags else 32 if {"avx2", "fma"} <= set(flags) else 16
peak = cores * mhz * 1e6 * flops_per_cycle / 1e9
java_version = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
torch_version = next((row["torch"] for row in native_python if "torch" in row), "?")
peak_text = (f"{measured_peak:.0f} GFLOP/s measured (`build/ddim_fma_peak`: AVX2 FMAs on every core, no memory traffic)"
             if measured_peak else f"{peak:.0f} GFLOP/s nominal")
best_peak = measured_peak or peak

out = []
w = out.append
w("# Benchmark results")
w("")
w(f"Written by `scripts/bench.sh` on {datetime.date.today()}; every figure below comes from that one run on one machine, unless its "
  "section says it ran on its own. "
  "Raw figures: `benchmarks/results/`. This machine is a shared VM whose speed drifts by 2-3x over minutes, so **every ratio "
  "comes from A/B rounds**: each round runs every side once, in an order rotated round by round, so that the drift falls on "
  "all sides alike; a ratio is computed within each round, and the tables give the median and the range over rounds. "
  "Absolute figures (images/s, ms) are medians over rounds and move with the machine.")
w("")
w(f"- CPU: {info.get('model name', '?')} (family {info.get('cpu family', '?')}, model {info.get('model', '?')}), {cores} cores at "
  f"{mhz:.0f} MHz, flags include {', '.join(f for f in ('avx2', 'fma', 'avx512f', 'avx512_bf16', 'amx_bf16') if f in flags)}"
  f"{'' if 'avx512_bf16' in flags else ' (no AVX512-BF16: bfloat16 has no native instructions here, so the bfloat16 option is emulated and slow, and was not benchmarked)'}")
w(f"- Float32 peak: {peak_text}; nominal {cores} cores x {mhz / 1000:.2f} GHz x {flops_per_cycle} FLOP/cycle = {peak:.0f} GFLOP/s")
w(f"- Threads: {threads} for every engine; ddim4j and Python on libtorch {torch_version} (Debian); plain `java` and plain "
  "processes, no `MALLOC_ARENA_MAX` or other environment tuning")
w(f"- Java: {java_version}")
w("- Work: sampling = 16 images x 20 deterministic DDIM steps (20 network evaluations at batch 16) from fresh noise; "
  "training = one step on 16 images (forward, MAE, backward, AdamW, EMA). Untrained U-Nets (weights do not change the cost). "
  "`fashion` = 1x32x32, `reference` = 3x64x64, both widths 32-64-96-128, depth 2.")
w("")
if peers:
    w("## Java peers, interleaved")
    w("")
    rounds = sorted({row["round"] for row in peers})
    engines = [engine for engine in PEER_NAMES if engine in {row["engine"] for row in peers}]
    ms = {(row["engine"], row["round"]): row["ms_median"] for row in peers}
    versions = {row["engine"]: row.get("version", "?") for row in peers}
    first = peers[0]
    w(f"`benchmarks/peers.sh`: {len(rounds)} rounds; each round runs every engine once, each in its own process, in an order "
      f"rotated every round, so that the machine's drift falls on all alike. Work: {first['batch']} images x {first['steps']} "
      "deterministic DDIM steps (one network evaluation per step, batch 16) from fresh noise, untrained reference U-Net "
      f"(3x64x64), {first['threads']} threads for every engine; per engine and round, {first.get('warmup', 2)} warm-up run(s), "
      f"then the median of runs over at least {first.get('runs', 3)} runs and {first.get('seconds', '?')} s. ddim4j samples through `Ddim.sample` (plain `java`, no environment "
      "tuning; its defaults (`Network.AUTO`: the fused network), `Network.EAGER`, or `Precision.BFLOAT16` (the fused bfloat16 plan)); ONNX Runtime and DJL run the network exported by `benchmarks/python/export.py` from the same model file "
      "(same weights) and do the DDIM update in Java arrays with ddim4j's schedule; PyTorch is `baseline.py` (its own "
      "untrained weights: weights do not change the cost)." +
      (" `ddim4j default, oneDNN capped at AVX2` is the default run with `DNNL_MAX_CPU_ISA=AVX2`, the one environment "
       "variable set anywhere here: the AVX2 plan (nChw8c, ddim4j's own Winograd F(2x2, 3x3)) on this AVX-512 machine. Its "
       "peers keep AVX-512, so its ratios bound from below what an AVX2-only CPU would show." if "ddim4j-avx2" in engines else ""))
    w("")
    per_image = next((row["forward_flops_per_image"] for row in flops if row.get("config") == "reference"), None)
    w("| engine | version and settings | ms per run: median of rounds | min - max of rounds | images/s | GFLOP/s | % of peak |")
    w("|---|---|---|---|---|---|---|")
    for engine in engines:
        values = sorted(ms[(engine, r)] for r in rounds if (engine, r) in ms)
        median = statistics.median(values)
        gflops = per_image * first["batch"] * first["steps"] / (median / 1000) / 1e9 if per_image else None
        w(f"| {PEER_NAMES.get(engine, engine)} | {versions[engine]} | **{median:.0f}** | {values[0]:.0f} - {values[-1]:.0f} | "
          f"{first['batch'] * 1000 / median:.2f} | {f'{gflops:.0f}' if gflops else '?'} | "
          f"{f'{gflops / best_peak * 100:.0f}%' if gflops else '?'} |")
    w("")
    w("GFLOP/s count the direct convolutions' FLOPs for every engine; the fused network's Winograd convolutions do ~4x fewer "
      "multiplications, so its effective figure passes the FMA peak.")
    w("")
    w("Speed ratio = the peer's time / ddim4j's time in the same round (above 1: ddim4j is faster); median and range over rounds.")
    w("")
    w("| ddim4j | against | speed ratio: median | min - max |")
    w("|---|---|---|---|")
    def ratio_rows(ours_list):
        for ours in ours_list:
            for other in ("ort", "djl", "pytorch"):
                ratios = sorted(ms[(other, r)] / ms[(ours, r)] for r in rounds if (other, r) in ms and (ours, r) in ms)
                if ratios:
                    w(f"| {PEER_NAMES[ours]} | {PEER_NAMES[other]} | **{statistics.median(ratios):.2f}x** | "
                      f"{ratios[0]:.2f}x - {ratios[-1]:.2f}x |")

    ratio_rows(("ddim4j", "ddim4j-eager", "ddim4j-bf16"))
    w("")
    if "ddim4j-avx2" in engines:
        w("**Not a plain-`java` figure**: the AVX2 plan, run in the same rounds with `DNNL_MAX_CPU_ISA=AVX2` to stand in for "
          "an AVX2-only CPU, which this machine is not. Every ratio above is plain `java`; these are the one exception, and "
          "a bound from below (the peers keep AVX-512), not what a user of this machine runs.")
        w("")
        w("| ddim4j | against | speed ratio: median | min - max |")
        w("|---|---|---|---|")
        ratio_rows(("ddim4j-avx2",))
        w("")
    checks = [row for row in peer_checks if row.get("tool") == "peer-check"]
    if checks:
        w("Do they compute the same? `PeerCheck` on the check input `export.py` writes (16 noisy images at t = 1/16 ... 1, "
          "and the noise variances ddim4j derives from t): largest absolute difference from ddim4j's eager float32 network of one network "
          "evaluation (`Ddim.predict`), and of the pixels (in [0, 1]) after 20 DDIM steps from the same noise. "
          "`reference` is the benchmarked model (its output convolution not zeroed, so that the output is not 0 everywhere); "
          "`fashion` the trained `models/fashion-mnist-32.safetensors`.")
        w("")
        w("| model | engine | output: max abs diff | mean abs diff | largest output | pixels after 20 steps: max abs diff | mean |")
        w("|---|---|---|---|---|---|---|")
        for row in checks:
            pixels = (f"{row['pixels_max_abs_diff']:.1e} | {row['pixels_mean_abs_diff']:.1e}" if "pixels_max_abs_diff" in row
                      else "- | -")
            w(f"| {os.path.basename(row['model'])} | {PEER_NAMES.get(row['engine'], row['engine'])} | "
              f"{row['output_max_abs_diff']:.1e} | {row['output_mean_abs_diff']:.1e} | {row['output_max_abs']:.2f} | {pixels} |")
        w("")
if peer_batches:
    w("## Batch-size scaling, interleaved")
    w("")
    rounds = sorted({row["round"] for row in peer_batches})
    batches = sorted({row["batch"] for row in peer_batches})
    engines = [engine for engine in PEER_NAMES if engine in {row["engine"] for row in peer_batches}]
    ms = {(row["engine"], row["batch"], row["round"]): row["ms_median"] for row in peer_batches}
    w(f"`BATCHES=\"{' '.join(map(str, batches))}\" benchmarks/peers.sh`: {len(rounds)} rounds; in each round every batch size "
      "and every engine once, engines in an order rotated every round. 20 deterministic DDIM steps of the reference U-Net "
      "(3x64x64); the network sees the whole batch (ddim4j's micro-batch = the batch). Images/s: median over rounds; "
      "ratio: ORT's time / ddim4j's in the same round, median and range.")
    w("")
    w("| batch | " + " | ".join(f"{PEER_NAMES[e]} (images/s)" for e in engines) + " | speed ratio to ONNX Runtime: median | min - max |")
    w("|---|" + "---|" * len(engines) + "---|---|")
    for batch in batches:
        cells = []
        for engine in engines:
            values = [ms[(engine, batch, r)] for r in rounds if (engine, batch, r) in ms]
            cells.append(f"{batch * 1000 / statistics.median(values):.2f}" if values else "-")
        ratios = sorted(ms[("ort", batch, r)] / ms[("ddim4j", batch, r)] for r in rounds
                        if ("ort", batch, r) in ms and ("ddim4j", batch, r) in ms)
        w(f"| {batch} | " + " | ".join(cells) + f" | {ratio_cells(ratios) if ratios else '- | -'} |")
    w("")
if fused_layers:
    w("## The fused network, layer by layer")
    w("")
    w(f"`build/ddim_fused_layers` times every step of the fused plan on its own (the fastest of 5 runs, batch 16, "
      f"{threads} threads), for each "
      "convolution algorithm. GFLOP/s count a convolution's direct FLOPs (2 x multiply-adds): Winograd F(4x4, 3x3) does "
      "~4x fewer multiplications, F(2x2, 3x3) 2.25x fewer, so their effective figures can pass the FMA peak. With AVX-512 "
      "the Winograd side is oneDNN's F(4x4, 3x3) (`jit_wino_4x3`); with AVX2, where oneDNN 2.6 has none, ddim4j's own "
      "F(2x2, 3x3) (`ddim4j_winograd_2x3`, native/src/winograd_f2x3.h). On an AVX-512 machine the AVX2 plan is timed with "
      "`DNNL_MAX_CPU_ISA=AVX2` (the \"instructions\" column). `norm shift + swish` rows (AVX-512): on the Winograd side each "
      "block's BatchNorm is folded into conv_a (scaled weights), and the norm's shift map is added in the SiLU pass that a "
      "Winograd conv_a needs anyway (oneDNN's Winograd kernel fuses sums, not SiLU); ddim4j's own Winograd adds the map and "
      "applies SiLU in its output transform, so no pass of its own runs; the direct side keeps BatchNorm passes.")
    w("")
    totals = [row for row in fused_layers if row["layer"] == "total"]
    w("| config | instructions | precision | 3x3 convolutions | layout | steps, each repeated alone, ms | steps within a forward, ms | "
      "whole forward, ms | effective GFLOP/s | % of peak |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for row in totals:
        within = f"{row['in_forward_ms']:.1f}" if "in_forward_ms" in row else "-"
        w(f"| {row['config']} | {row.get('isa', '?')} | {row['precision']} | {row['algorithm']} | {row['layout']} | {row['ms']:.1f} | {within} | "
          f"{row['forward_ms']:.1f} | {row['gflops']:.0f} | {row['gflops'] / best_peak * 100:.0f}% |")
    w("")
    w("A step repeated alone finds its input in cache; within a forward it reads what the step before wrote, which is "
      "where most of the difference to the whole forward goes (the rest, ~1 ms, is the embeddings and conversions).")
    w("")
    for isa in dict.fromkeys(row.get("isa", "?") for row in fused_layers):  # the machine's own first, then AVX2
        steps = {}
        for row in fused_layers:
            if row["layer"] != "total" and row["config"] == "reference" and row["precision"] == "fp32" and row.get("isa", "?") == isa:
                steps.setdefault(row["layer"], {})[row["algorithm"]] = row
        if not steps:
            continue
        w(f"Reference U-Net, float32, {isa}, every convolution (other steps summed in the last row):")
        w("")
        w("| layer | direct: ms | GFLOP/s | % of peak | Winograd: ms | GFLOP/s | % of peak | kernel |")
        w("|---|---|---|---|---|---|---|---|")
        other = {"direct": 0.0, "winograd": 0.0}
        for layer, by in steps.items():
            if not all(a in by for a in ("direct", "winograd")):
                continue
            if by["direct"]["flops"] == 0:
                for a in other:
                    other[a] += by[a]["ms"]
                continue
            d, g = by["direct"], by["winograd"]
            w(f"| {layer} | {d['ms']:.2f} | {d['gflops']:.0f} | {d['gflops'] / best_peak * 100:.0f}% | {g['ms']:.2f} | "
              f"{g['gflops']:.0f} | {g['gflops'] / best_peak * 100:.0f}% | {g['implementation']} |")
        for layer, by in steps.items():  # passes on one side only: SiLU and norm shift (Winograd), BatchNorm (direct)
            for a in other:
                if a in by and len(by) == 1:
                    other[a] += by[a]["ms"]
        w(f"| other steps (BatchNorm or norm shift + SiLU passes, joins, pooling, upsampling, conversions) | {other['direct']:.2f} | | | "
          f"{other['winograd']:.2f} | | | |")
        w("")
if fused_pixels:
    w("## Pixels: the fused network against the eager one")
    w("")
    w("`build/ddim_fused_layers --pixels MODEL`: the same 64 images x 20 deterministic DDIM steps (seed 2026; the class model "
      "with classes 0..9 in turn and guidance 3) through each network; largest and mean absolute difference of the pixels "
      "(in [0, 1]).")
    w("")
    w("| model | instructions | network | against | max abs | mean abs |")
    w("|---|---|---|---|---|---|")
    for row in fused_pixels:
        w(f"| {os.path.basename(row['model'])} | {row.get('isa', '?')} | {row['network']} | {row['against']} | {row['max_abs']:.2g} | {row['mean_abs']:.2g} |")
    w("")
if fused_quality:
    w("## bfloat16 fused: quality")
    w("")
    kid = fused_quality["kid"]
    w(f"`FusedQuality`: {fused_quality['count']} samples ({fused_quality['steps']} DDIM steps, one seed) of "
      f"`{os.path.basename(fused_quality['model'])}` per network; KID with the shipped extractor against Fashion-MNIST's "
      "10,000 test images (100 subsets). The bar: bfloat16 within 0.01 of float32.")
    w("")
    w("| network | KID | std over subsets | sampling, s |")
    w("|---|---|---|---|")
    for name, row in kid.items():
        w(f"| {name} | {row['kid']:.4f} | {row['std']:.4f} | {row['sample_seconds']:.1f} |")
    w("")
    if "kid_difference_bf16_minus_f32" in fused_quality:
        w(f"KID bfloat16 - float32: {fused_quality['kid_difference_bf16_minus_f32']:+.4f} "
          f"({'within' if fused_quality['within_0_01'] else 'outside'} 0.01).")
    else:
        w(fused_quality.get("note", ""))
    w("")
if guidance_cost:
    row = guidance_cost[-1]
    w("## Classifier-free guidance: cost per image")
    w("")
    ratios = sorted(row["guided_over_unconditional_all"])
    w(f"`GuidanceCost`: {row['count']} images x {row['steps']} steps, default network, {len(ratios)} interleaved rounds in one "
      "process. Guided sampling of the shipped class model (guidance 3: both halves in one plan call of twice the micro-batch) "
      f"takes **{row['guided_over_unconditional_median']:.2f}x** the time of the shipped unconditional model "
      f"(range {ratios[0]:.2f}x - {ratios[-1]:.2f}x), and {row['guided_over_no_class_median']:.2f}x the class model "
      "without classes (the bar: 2.1x).")
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
w("## ddim4j (native driver) against PyTorch")
w("")
w("The same training step, and fashion sampling, in the native driver `build/ddim_bench` (the C ABI alone) and in "
  "`benchmarks/python/baseline.py` (eager PyTorch on the same libtorch); reference sampling is in the peers table above. "
  "Speed ratio = ddim4j's images/s / Python's, per round.")
w("")
w("| work | config | ddim4j (images/s) | Python (images/s) | speed ratio: median | min - max |")
w("|---|---|---|---|---|---|")
for group in ("train-fashion", "train-reference", "sample-fashion"):
    ratios = ab_ratios(native_python, group, numerator_side=0)
    if ratios:
        mode, config = group.split("-")
        w(f"| {mode} | {config} | {median_rate(native_python, group, 0):.2f} | {median_rate(native_python, group, 1):.2f} | "
          f"{ratio_cells(ratios)} |")
w("")
w("## Distributed training (c10d, Gloo on 127.0.0.1)")
w("")
if distributed:
    single = [row for row in distributed if row["side"] == 0]
    ranked = [row for row in distributed if row["side"] == 1]
    world = ranked[0]["world_size"]
    ratios = sorted(
        statistics.median(row["images_per_second"] for row in ranked if row["round"] == r and row["rank"] == 0)
        / next(row["images_per_second"] for row in single if row["round"] == r)
        for r in sorted({row["round"] for row in single}))
    step_single = statistics.median(row["median_seconds"] for row in single)
    step_ranked = statistics.median(row["median_seconds"] for row in ranked)
    # A rank's collective time includes waiting for the slowest rank; the least of the ranks' is closest to the transfer alone.
    by_round = {}
    for row in ranked:
        by_round.setdefault(row["round"], []).append(row["collective_seconds_per_step"])
    transfer = statistics.median(min(values) for values in by_round.values())
    waiting = statistics.median(max(values) for values in by_round.values())
    nbytes = ranked[0]["collective_bytes_per_step"]
    calls = ranked[0]["collective_calls_per_step"]
    if single[0].get("window") != "bench":
        w(f"These rounds ran on their own, `benchmarks/distributed.sh` started {single[0].get('started', '?')} on this machine, not "
          "in the window of the rest of this report; the ratio below comes from their own interleaved A/B rounds.")
        w("")
    w(f"Reference model (3.56 M parameters, 3x64x64), global batch 64, native driver (`benchmarks/distributed.sh`): one process "
      f"with {single[0]['threads']} threads against {world} ranks with 1 thread each, {len(ratios)} A/B rounds. Each step "
      "averages the gradients in 4 MiB buckets, then the BatchNorm statistics and the loss in one more call.")
    w("")
    w("| side | ms per step | images/s | collectives per step | MB reduced per step (per rank) | allreduce ms per step | share of the step |")
    w("|---|---|---|---|---|---|---|")
    w(f"| 1 process x {single[0]['threads']} threads | {step_single * 1000:.0f} | {statistics.median(rate(r) for r in single):.2f} | 0 | 0 | 0 | 0% |")
    w(f"| {world} ranks x 1 thread | {step_ranked * 1000:.0f} | {statistics.median(rate(r) for r in ranked if r['rank'] == 0):.2f} | "
      f"{calls:.0f} | {nbytes / 1e6:.1f} | {transfer * 1000:.0f} (least-waiting rank) - {waiting * 1000:.0f} (rank that waits) | "
      f"{transfer / step_ranked * 100:.1f}% - {waiting / step_ranked * 100:.1f}% |")
    w("")
    w(f"Speed ratio, {world} ranks / 1 process, per round: {ratio_cells(ratios)}. The larger allreduce figure is mostly one "
      "rank waiting for the other to finish its backward pass (the two vCPUs do not run equally fast); the smaller is the "
      "transfer itself over the loopback.")
    w("")
    w("**Paper estimate of scaling to more machines** (not measured: this machine has no network). Ring allreduce of S bytes "
      "over N machines with link bandwidth B and per-message latency a, in c calls per step:")
    w("")
    w("    T_allreduce(N) = 2 (N - 1) / N * S / B  +  2 (N - 1) * c * a")
    w("    efficiency(N)  = T_step / (T_step + T_allreduce(N))      (ddim4j reduces after the backward pass: no overlap)")
    w("")
    w(f"with S = {nbytes / 1e6:.1f} MB and c = {calls:.0f} as measured, a = 50 us (TCP on a data-centre network), and a fixed batch "
      f"of 64 per machine (weak scaling). T_step: {step_single:.2f} s is this 2-core VM's measured step; 0.05 s stands for a "
      "machine ~100x faster (a GPU), where communication starts to matter.")
    w("")
    w("| machines | link | T_allreduce | efficiency, T_step = " + f"{step_single:.2f} s" + " | efficiency, T_step = 0.05 s |")
    w("|---|---|---|---|---|")
    for n in (8, 64):
        for gbits in (10, 100):
            t = 2 * (n - 1) / n * nbytes / (gbits * 1e9 / 8) + 2 * (n - 1) * calls * 50e-6
            w(f"| {n} | {gbits} Gb/s | {t * 1000:.1f} ms | {step_single / (step_single + t) * 100:.1f}% | {0.05 / (0.05 + t) * 100:.0f}% |")
    w("")
else:
    w("Not measured in this run: `benchmarks/distributed.sh`.")
    w("")
w("## Serving: dynamic batching under load (`ddim serve`)")
w("")
if serve:
    on = [row for row in serve if row["side"] == 1]
    off = [row for row in serve if row["side"] == 0]
    ratios = sorted(next(r["requests_per_second"] for r in on if r["round"] == n)
                    / next(r["requests_per_second"] for r in off if r["round"] == n)
                    for n in sorted({row["round"] for row in on}))
    first = serve[0]
    w(f"`benchmarks/serve-load.sh`, started {first['started']} on its own (not in the window of the rest of this report): "
      f"the shipped Fashion-MNIST model (1x32x32, 1.74 M parameters) behind `ddim serve` on 127.0.0.1, plain `java`, "
      f"{first['requests']} POST /v1/samples of one image each ({first['steps']} DDIM steps, a seed per request) from "
      f"{first['clients']} concurrent clients after a warm-up, {len(ratios)} A/B rounds (a fresh server per side, order "
      "rotated every round). Medians over rounds; RSS is the server's resident memory after the warm-up, at the end and "
      "at its peak.")
    w("")
    w("| side | requests/s | p50 latency ms | p99 latency ms | failed | requests that shared a call | RSS MiB: after warm-up, end (peak) |")
    w("|---|---|---|---|---|---|---|")
    for name, rows in (("batching on (`--max-batch 64`)", on), ("batching off (`--max-batch 1`)", off)):
        med = lambda key: statistics.median(r[key] for r in rows)
        w(f"| {name} | {med('requests_per_second'):.2f} | {med('p50_ms'):.0f} | {med('p99_ms'):.0f} | "
          f"{sum(r['failed'] for r in rows)} of {sum(r['requests'] for r in rows)} | {sum(r['batched_requests'] for r in rows)} | "
          f"{med('rss_after_warmup_mib'):.0f}, {med('rss_end_mib'):.0f} ({max(r['rss_peak_mib'] for r in rows):.0f}) |")
    w("")
    w(f"Throughput ratio, on / off, per round: **{statistics.median(ratios):.2f}x** ({ratios[0]:.2f}x - {ratios[-1]:.2f}x). Alone, every one-image request pays for a whole "
      "micro-batch of 16 (the network's fixed shape, which keeps images batch invariant); batched, up to 16 requests share "
      "it, and each still gets exactly its own pixels (SampleServerTest).")
    w("")
else:
    w("Not measured in this run: `benchmarks/serve-load.sh`.")
    w("")
if scaling:
    first = scaling[0]
    w(f"Concurrency (the same script, {first['requests']} one-image requests of {first['steps']} DDIM steps per row, after a "
      "warm-up): the shipped model unconditional, and the shipped class model class-guided, every request its own class "
      f"(i mod {next(r['classes'] for r in scaling if r['classes'])}, so a batch mixes them) at guidance "
      f"{next(r['guidance'] for r in scaling if r['classes']):g}, behind `--token-file` (every request carries the token). "
      "Both servers ran side by side and the two kinds alternated at each client count, in one window.")
    w("")
    w("| clients | unconditional: requests/s | p50 ms | p99 ms | class-guided + token: requests/s | p50 ms | p99 ms | failed |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for clients in sorted({r["clients"] for r in scaling}):
        plain = next(r for r in scaling if r["clients"] == clients and r["kind"] == "unconditional")
        guided = next(r for r in scaling if r["clients"] == clients and r["kind"] == "class-guided")
        w(f"| {clients} | {plain['requests_per_second']:.2f} | {plain['p50_ms']:.0f} | {plain['p99_ms']:.0f} | "
          f"{guided['requests_per_second']:.2f} | {guided['p50_ms']:.0f} | {guided['p99_ms']:.0f} | {plain['failed'] + guided['failed']} |")
    w("")
    w("Guidance evaluates the network on the conditional and the unconditional half of every image (one batch of twice "
      "the micro-batch), so a guided image costs about twice an unconditional one; batching over clients lifts both.")
    w("")
soak_summary = next((row for row in soak if row.get("summary")), None)
if soak_summary:
    minutes = [row for row in soak if not row.get("summary")]
    w(f"Soak (`benchmarks/serve-soak.sh`, started {soak_summary['started']} on its own): one server of the same model under "
      f"steady load (one-image requests from 16 concurrent clients, back to back) for {soak_summary['minutes']} minutes, "
      f"{soak_summary['requests']:,} requests, {soak_summary['failures']} failed. Resident memory every minute, MiB: "
      + ", ".join(f"{row['rss_mib']:.0f}" for row in minutes) + ". "
      f"After the {soak_summary['warmup_minutes']}-minute warm-up it went from {soak_summary['rss_after_warmup_mib']:.0f} to "
      f"{soak_summary['rss_end_mib']:.0f} MiB (**{soak_summary['growth_after_warmup_percent']:+.1f}%**; the script fails above +5%).")
    w("")
w("## The CPU memory cache")
w("")
w("libddim installs a caching CPU allocator in libtorch with its first model (`native/src/cpu_allocator.h`): freed blocks of 256 KiB "
  "and more are kept by size, up to 1 GiB, and reused at the next step instead of being unmapped and page-faulted in again. "
  "It replaces the process-wide `mallopt` and the `MALLOC_ARENA_MAX=1` that ddim4j needed before. Off = `-Dddim4j.cpuCache=0` "
  "(Java) or `--cpu-cache off` (driver). Speed ratio = on / off, per round.")
w("")
w("| work | through | off (images/s) | on (images/s) | speed ratio: median | min - max |")
w("|---|---|---|---|---|---|")
for group, work, through in (("cpu-cache-sample", "reference sampling (eager network)", "plain `java` (PeerSampling)"),
                             ("cpu-cache-train", "reference training", "native driver")):
    ratios = ab_ratios(variants, group)
    if ratios:
        w(f"| {work} | {through} | {median_rate(variants, group, 0):.2f} | {median_rate(variants, group, 1):.2f} | {ratio_cells(ratios)} |")
w("")
bf16 = ab_ratios(variants, "bfloat16")
if bf16:
    w("## bfloat16 sampling (native driver)")
    w("")
    w(f"Reference sampling, bfloat16 / float32 speed, per round: {ratio_cells(bf16)}.")
    w("")
w("## Accuracy of the faster options")
w("")
accuracy_lines = [line for line in accuracy.splitlines() if line.startswith("mean")]
if len(accuracy_lines) >= 2:
    w("Pixels (in [0, 1]) from the same noise against the eager float32 network, trained model "
      "`models/fashion-mnist-32.safetensors`, 16 images, 20 DDIM steps (`SamplerAccuracy`):")
    w("")
    w(f"- bfloat16 network: {accuracy_lines[0]}")
    w(f"- fused network: {accuracy_lines[1]}")
    w("")
w("## Achieved GFLOP/s")
w("")
w(f"Against the measured peak ({best_peak:.0f} GFLOP/s). FLOPs: the convolutions of one forward pass, counted by "
  "`baseline.py --flops` (other layers add < 1%); a training step counts 3 forward passes (forward, and backward for "
  "inputs and weights). Sampling engines: in the peers table.")
w("")
w("| config | forward GFLOP / image | training GFLOP/s (native driver) | % of peak |")
w("|---|---|---|---|")
for config in ("fashion", "reference"):
    per_image = find(flops, config=config)["forward_flops_per_image"] / 1e9
    group = "train-" + config
    if any(row.get("group") == group for row in native_python):
        training = 3 * per_image * median_rate(native_python, group, 0)
        w(f"| {config} | {per_image:.3f} | {training:.0f} | {training / best_peak * 100:.0f}% |")
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
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "optimisations.md")) as f:
    w(f.read().rstrip())
w("")
if natives_load:
    row = natives_load[-1]
    w("## Start-up with the natives jar")
    w("")
    w(f"`NativesLoad`, run on its own ({row['cpu']}): the first use of the library (`Ddim.version()`) in a fresh JVM, and "
      f"the whole JVM, in {len(row['cold']['first_use_ms'])} interleaved rounds of three sides: **cold** = the natives jar "
      f"({row['natives_jar_bytes'] / 1e6:.0f} MB) with an empty cache, extracted (every file hashed as it is written); "
      "**warm** = the same JVM again on that cache (the copy's fingerprint, taken when its hashes were checked, still holds: no file is read); "
      "**source build** = `-Dddim4j.library=build/libddim.so` on Debian's libtorch, nothing extracted or checked: what "
      "loading libtorch itself costs (Debian's libtorch brings more shared libraries than PyTorch's own build, which links "
      "MKL and oneDNN statically). Each child is a plain `java -cp benchmarks.jar:NATIVES_JAR` whose only setting is "
      "`XDG_CACHE_HOME`, a fresh directory per round (the default cache location, moved so that every cold run starts "
      "empty); the table gives times, no ratios.")
    w("")
    w("| side | first use, ms: median | min - max | whole JVM, ms: median |")
    w("|---|---|---|---|")
    for side in ("cold", "warm", "source build"):
        values = row[side]["first_use_ms"]
        w(f"| {side} | {row[side]['median_first_use_ms']:.0f} | {min(values):.0f} - {max(values):.0f} | {row[side]['median_jvm_ms']:.0f} |")
    w("")
w("## Commands")
w("")
w("```sh")
w("scripts/bench.sh                           # all of the above; ROUNDS=N SECONDS_PER_RUN=S THREADS=N to change")
w("ROUNDS=5 SECONDS=20 benchmarks/peers.sh    # the Java peers alone; PeerSampling, PeerCheck: see their javadoc")
w("ROUNDS=3 SECONDS_PER_RUN=15 benchmarks/distributed.sh   # 1 process x N threads against N ranks x 1 thread")
w("ROUNDS=2 REQUESTS=200 CLIENTS=16 STEPS=5 benchmarks/serve-load.sh   # ddim serve, dynamic batching on and off")
w("MINUTES=30 benchmarks/serve-soak.sh        # ddim serve under steady load, resident memory every minute")
w("build/ddim_bench --mode sample|train --config reference|fashion [--network auto|eager|fused] [--precision bf16] [--cpu-cache off]")
w("build/ddim_fused_layers --config reference|fashion [--precision bf16]   # the fused plan, layer by layer")
w("build/ddim_fused_layers --pixels models/fashion-mnist-32.safetensors    # fused against eager, in pixels")
w("BATCHES=\"1 4 16 64\" ENGINES=\"ddim4j ort pytorch\" benchmarks/peers.sh   # batch-size scaling")
w("java -cp benchmarks/target/benchmarks.jar org.ddim4j.benchmarks.GuidanceCost models/fashion-mnist-32-classes.safetensors "
  "models/fashion-mnist-32.safetensors")
w("java -cp benchmarks/target/benchmarks.jar org.ddim4j.benchmarks.FusedQuality models/fashion-mnist-32.safetensors OUT.json 1000")
w("/usr/bin/python3 benchmarks/python/baseline.py --mode sample|train --config reference|fashion --threads N")
w("java -cp benchmarks/target/benchmarks.jar org.ddim4j.benchmarks.SamplerAccuracy")
w("java -cp benchmarks/target/benchmarks.jar org.ddim4j.benchmarks.JavaOverhead --rounds 10 --seconds 6")
w("java -cp benchmarks/target/benchmarks.jar org.ddim4j.benchmarks.NativesLoad --natives-jar "
  "java/ddim4j-natives/target/ddim4j-natives-0.1.0-linux-x86_64.jar --rounds 5")
w("java -jar benchmarks/target/benchmarks.jar CallOverheadBenchmark   # or TransferBenchmark, SamplingBenchmark, TrainingBenchmark")
w("```")
print("\n".join(out))
