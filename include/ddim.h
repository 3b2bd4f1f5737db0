/*
 * ddim.h - the C interface of ddim4j's native core.
 *
 * ddim4j trains and samples DDIM (Denoising Diffusion Implicit Models, Song, Meng & Ermon 2020)
 * image models. The compute lives in C++ on libtorch; this header is the only way in. It is plain
 * C so that jextract (and any other FFI) can read it.
 *
 * Conventions
 * -----------
 * - Handles are opaque (`ddim_model`). Every `*_create` / `*_load` has a `*_free`; freeing NULL is
 *   a no-op.
 * - Every call that can fail returns a `ddim_status`. On failure, `ddim_last_error()` returns a
 *   short message (no backtrace) describing the last failure on the *calling thread*. Read it
 *   right after the failing call, from the same thread.
 * - No C++ exception ever crosses this boundary.
 * - Buffers travel as pointer + element count; counts are checked against what the call needs.
 *   A NULL handle or pointer, or a wrong count, is an error, never a crash.
 * - Pixels are float32, NCHW, in [0, 1].
 * - Calls on one model handle are serialised by a lock inside the handle, so two threads may
 *   share a handle; they just take turns. A call made on a handle from inside one of its own
 *   progress callbacks returns DDIM_ERR_REENTRANT instead of deadlocking; ddim_model_free from
 *   such a callback is deferred until the running call returns. ddim_model_free (and
 *   ddim_extractor_free) from another thread waits for every call that holds the handle, the
 *   running one and those waiting for their turn; a call that reaches the handle after the free
 *   began returns DDIM_ERR_INVALID_ARGUMENT ("not live"), and so does any call on a freed handle
 *   whose address no newer handle took. A second free does nothing.
 * - Every size that comes from a caller or a file is checked before it allocates anything (see
 *   "Limits" below), and products of sizes are checked for overflow. Model files are validated
 *   completely (layout, shapes, values) before any weight is allocated; no file makes a load read
 *   more than the file's own size or hang. TorchScript feature extractors are programs, not data:
 *   load trusted files only.
 *
 * The model
 * ---------
 * A U-Net of residual blocks predicts the noise (or the clean image) in a noisy image, given the
 * noise variance, as in the Keras DDIM example. Time is continuous, t in [0, 1]: t = 0 is the
 * clean image, t = 1 the noisiest. A schedule maps t to a signal rate and a noise rate with
 * signal^2 + noise^2 = 1, and noisy = signal * image + noise * epsilon.
 *
 * Sampling (DDIM with eta = 0 by default; DDPM and DPM-Solver++(2M) too) starts from N(0, I) at
 * t = 1 and evaluates the network exactly `steps` times, at t = 1, 1 - 1/steps, ..., 1/steps;
 * after each evaluation the sampler moves the sample to the next t. It returns the last predicted image, de-normalised with the
 * model's per-channel mean and std and clamped to [0, 1].
 *
 * Model files are safetensors: the weights, the EMA weights when present, the normaliser, and the
 * configuration as JSON in the header's `__metadata__` (see docs in README.md).
 */
#ifndef DDIM_H
#define DDIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(DDIM_BUILDING_LIBRARY)
#define DDIM_API __attribute__((visibility("default")))
#else
#define DDIM_API
#endif

/* ---------------------------------------------------------------------------------------------
 * Status codes
 * ------------------------------------------------------------------------------------------- */

typedef enum ddim_status {
    DDIM_OK = 0,
    DDIM_ERR_INVALID_ARGUMENT = 1, /* a value out of range, a bad configuration, NaN where a number is needed */
    DDIM_ERR_NULL_POINTER = 2,     /* a required handle or pointer was NULL */
    DDIM_ERR_BUFFER_SIZE = 3,      /* a buffer's element count does not match what the call needs */
    DDIM_ERR_IO = 4,               /* a file could not be opened, read, written or renamed */
    DDIM_ERR_FORMAT = 5,           /* a model file is truncated, corrupt, of an unknown version or does not match its config */
    DDIM_ERR_DEVICE = 6,           /* the requested device does not exist or is not supported by this build */
    DDIM_ERR_OUT_OF_MEMORY = 7,    /* host or device memory ran out */
    DDIM_ERR_INTERNAL = 8,         /* anything else libtorch reported */
    DDIM_ERR_CANCELLED = 9,        /* a progress callback asked to stop; the output buffers hold nothing useful */
    DDIM_ERR_NON_FINITE = 10,      /* the computation produced NaN or infinite values (diverged weights or extreme inputs);
                                    * the output buffers hold nothing useful */
    DDIM_ERR_REENTRANT = 11,       /* a progress callback called back into the handle whose call is running */
    DDIM_ERR_DISTRIBUTED = 12      /* distributed training: the process group did not form in time, or a rank was
                                    * lost (the message names it); the group can't be used again */
} ddim_status;

/* The symbolic name of a status ("DDIM_ERR_IO", ...); "DDIM_UNKNOWN_STATUS" for other values. Never NULL. */
DDIM_API const char* ddim_status_name(int32_t status);

/* The message of the last failed call on this thread, or "" if none failed yet. Never NULL. The
 * pointer stays valid until the next ddim call on this thread. */
DDIM_API const char* ddim_last_error(void);

/* ---------------------------------------------------------------------------------------------
 * Limits: larger values are DDIM_ERR_INVALID_ARGUMENT (from a caller) or DDIM_ERR_FORMAT (from a
 * file), before anything is allocated.
 * ------------------------------------------------------------------------------------------- */

#define DDIM_MAX_PARAMETERS 268435456  /* trainable parameters of one model (2^28: 1 GiB in float32) */
#define DDIM_MAX_STEPS 10000           /* sampling steps per call */
#define DDIM_MAX_MICRO_BATCH 4096      /* images per network evaluation */
#define DDIM_MAX_ETA 1                 /* DDIM's eta: 0 deterministic .. 1 the DDPM-like variance */
#define DDIM_MAX_FIRST_INDEX 4611686018427387904 /* first_index (2^62) */
#define DDIM_MAX_THREADS_PER_CORE 4    /* ddim_set_num_threads accepts up to 4x ddim_available_threads() */
#define DDIM_MAX_HEADER_BYTES 16777216 /* the JSON header of a model file (16 MiB) */
#define DDIM_MAX_JSON_DEPTH 32         /* nesting of arrays and objects in a model file's JSON */
#define DDIM_MAX_CLASSES 4096          /* classes of a class-conditional model */
#define DDIM_MAX_CLASS_NAME_BYTES 64   /* UTF-8 bytes of one class name */
#define DDIM_MAX_GUIDANCE 100          /* classifier-free guidance weight */

/* ---------------------------------------------------------------------------------------------
 * Library and runtime
 * ------------------------------------------------------------------------------------------- */

/* The library version, "MAJOR.MINOR.PATCH". Never NULL. */
DDIM_API const char* ddim_version(void);

/* The libtorch version this library was built against, e.g. "1.13.1". Never NULL. */
DDIM_API const char* ddim_torch_version(void);

/* The CPU threads this process may use: the CPUs in its affinity mask, capped by its cgroup's CPU
 * quota (rounded up), as the JVM counts its available processors. At least 1. The default thread
 * count and the limit below both come from it. */
DDIM_API int32_t ddim_available_threads(void);

/* Sets the number of CPU threads libtorch uses inside one operation (intra-op parallelism).
 * `threads` <= 0 means ddim_available_threads(); more than DDIM_MAX_THREADS_PER_CORE times that
 * is DDIM_ERR_INVALID_ARGUMENT. libtorch may start with 1 thread: set it. */
DDIM_API ddim_status ddim_set_num_threads(int32_t threads);

/* The number of CPU threads libtorch currently uses inside one operation. */
DDIM_API int32_t ddim_get_num_threads(void);

/* The CPU memory cache. libtorch frees and re-allocates every activation at every step; handed
 * back to the OS, each large block is mapped and page-faulted in again at the next step, which made
 * training up to 10x slower on a VM (benchmarks/RESULTS.md). So the library installs its own CPU
 * allocator in libtorch when it loads: freed blocks of 256 KiB and more are kept, by size, up to a
 * limit, and reused. It never changes results, needs no environment variable or mallopt, and
 * affects only libtorch's CPU tensors. The cache is emptied when the last model or extractor is
 * freed. */
#define DDIM_DEFAULT_CPU_CACHE_BYTES (INT64_C(1) << 30)

/* Keeps at most `bytes` of freed CPU memory for reuse (default DDIM_DEFAULT_CPU_CACHE_BYTES);
 * 0 turns caching off. Frees what no longer fits. Negative: DDIM_ERR_INVALID_ARGUMENT. */
DDIM_API ddim_status ddim_set_cpu_cache_limit(int64_t bytes);

/* Returns every cached block to the OS now; the cache stays on and refills. */
DDIM_API ddim_status ddim_release_cpu_cache(void);

typedef struct ddim_cpu_cache_stats {
  int64_t cached_bytes; /* freed memory held for reuse now */
  int64_t limit_bytes;  /* the limit; 0 = caching off */
  int64_t hits;         /* allocations of >= 256 KiB served from the cache */
  int64_t misses;       /* allocations of >= 256 KiB that went to the OS */
} ddim_cpu_cache_stats;

DDIM_API ddim_status ddim_cpu_cache_stats_get(ddim_cpu_cache_stats* out);

/* DDIM_OK when all `count` values are finite and in [0, 1] (valid pixels), else
 * DDIM_ERR_INVALID_ARGUMENT naming the first bad index. Reads the buffer and nothing else. */
DDIM_API ddim_status ddim_check_pixels(const float* pixels, int64_t count);

/* The number of CUDA devices this build can use; 0 on a CPU-only build or machine. */
DDIM_API int32_t ddim_cuda_device_count(void);

/* Devices are plain integers: a CUDA device index (>= 0), DDIM_DEVICE_CPU, or DDIM_DEVICE_AUTO
 * (CUDA device 0 when one is present, else the CPU). */
#define DDIM_DEVICE_CPU (-1)
#define DDIM_DEVICE_AUTO (-2)

/* ---------------------------------------------------------------------------------------------
 * Model configuration
 * ------------------------------------------------------------------------------------------- */

#define DDIM_MAX_WIDTHS 8

typedef enum ddim_schedule_kind {
    /* angle = acos(max_signal) + t * (acos(min_signal) - acos(max_signal));
     * signal = cos(angle), noise = sin(angle). The reference's default. */
    DDIM_SCHEDULE_COSINE = 0,
    /* alpha_bar = cumprod(1 - linspace(1e-4, 0.02, 1000)), linearly interpolated at t * 999;
     * signal = clamp(sqrt(alpha_bar), min_signal, max_signal), noise = sqrt(1 - signal^2).
     * The signal rate itself is clamped (not alpha_bar) so both schedules share the same bounds. */
    DDIM_SCHEDULE_LINEAR = 1
} ddim_schedule_kind;

/* A noise schedule: how the signal and noise rates move with t. Fill it with ddim_schedule_init(),
 * then change what you need. Valid: a known kind and 0 < min_signal < max_signal < 1. */
typedef struct ddim_schedule {
    int32_t kind;      /* a ddim_schedule_kind (default DDIM_SCHEDULE_COSINE) */
    double min_signal; /* smallest signal rate, reached at t = 1 (default 0.02) */
    double max_signal; /* largest signal rate, reached at t = 0 (default 0.95) */
} ddim_schedule;

/* Fills `schedule` with the reference schedule (cosine, 0.02..0.95). NULL is a no-op. */
DDIM_API void ddim_schedule_init(ddim_schedule* schedule);

/* DDIM_OK when `schedule` is valid, else DDIM_ERR_INVALID_ARGUMENT with a message naming the field. */
DDIM_API ddim_status ddim_schedule_validate(const ddim_schedule* schedule);

/* Evaluates `schedule` (validated first) at `count` times t (each in [0, 1]) and writes the signal
 * and noise rates. All three buffers hold `count` floats. Needs no model or model config. */
DDIM_API ddim_status ddim_schedule_rates(const ddim_schedule* schedule, const float* t, int64_t count,
                                         float* signal_rates, float* noise_rates);

typedef enum ddim_target {
    DDIM_TARGET_NOISE = 0, /* the network predicts the noise (the reference's default) */
    DDIM_TARGET_IMAGE = 1  /* the network predicts the clean image */
} ddim_target;

/* The architecture and diffusion process of a model. Fill it with ddim_config_init(), then change
 * what you need. Valid: channels 1..4; image_size > 0 and divisible by 2^num_widths;
 * 1 <= num_widths <= DDIM_MAX_WIDTHS; every width > 0; block_depth >= 1; embedding_dim even and
 * > 0; a valid schedule (see ddim_schedule_validate). */
typedef struct ddim_config {
    int32_t channels;                 /* image channels: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA (default 3) */
    int32_t image_size;               /* square image side in pixels (default 64) */
    int32_t num_widths;               /* how many entries of `widths` are used (default 4) */
    int32_t widths[DDIM_MAX_WIDTHS];  /* U-Net channel widths, one per resolution (default 32, 64, 96, 128) */
    int32_t block_depth;              /* residual blocks per resolution (default 2) */
    int32_t embedding_dim;            /* sinusoidal noise-variance embedding size (default 32) */
    ddim_schedule schedule;           /* the noise schedule (default: ddim_schedule_init's, cosine 0.02..0.95) */
    int32_t target;                   /* a ddim_target (default DDIM_TARGET_NOISE) */
    int32_t classes;                  /* 0: unconditional (default); N in 1..DDIM_MAX_CLASSES: a class-conditional
                                       * model, whose network also takes a class 0..N-1 or "no class" (a learned
                                       * embedding of N + 1 rows, concatenated as embedding_dim extra channels
                                       * like the noise embedding). See ddim_sample_params.classes. */
} ddim_config;

/* Fills `config` with the reference configuration (3x64x64, widths 32-64-96-128, depth 2,
 * embedding 32, cosine schedule 0.02..0.95, noise target). NULL is a no-op. */
DDIM_API void ddim_config_init(ddim_config* config);

/* DDIM_OK when `config` is valid, else DDIM_ERR_INVALID_ARGUMENT with a message naming the field. */
DDIM_API ddim_status ddim_config_validate(const ddim_config* config);

/* Writes the sinusoidal embedding the U-Net of `config` gives `count` noise variances (noise rate
 * squared): out[i * embedding_dim + j] = sin(2 pi f_j v_i) for j < embedding_dim / 2, and the
 * cosines after them, with frequencies f_j spaced geometrically from 1 to 1000. `out_count` must
 * equal count * embedding_dim. */
DDIM_API ddim_status ddim_noise_embedding(const ddim_config* config, const float* noise_variances, int64_t count,
                                          float* out_embedding, int64_t out_count);

/* ---------------------------------------------------------------------------------------------
 * Models
 * ------------------------------------------------------------------------------------------- */

typedef struct ddim_model ddim_model;

/* Creates an untrained model on `device`. Weights are drawn from `seed` on the CPU (libtorch's
 * default initialisation; the output convolution starts at zero) and then moved, so a seed gives
 * the same weights on every device. The normaliser starts as mean 0, std 1. The config is
 * validated before anything is allocated, its parameter count included (DDIM_MAX_PARAMETERS). */
DDIM_API ddim_status ddim_model_create(const ddim_config* config, int32_t device, uint64_t seed,
                                       ddim_model** out_model);

/* Loads a model file (safetensors) onto `device`. The path must name a regular file (a directory,
 * FIFO or device is DDIM_ERR_IO). Truncated, corrupt or inconsistent files, and unknown format
 * versions, give DDIM_ERR_FORMAT with a message naming the problem: the header (at most
 * DDIM_MAX_HEADER_BYTES, nested at most DDIM_MAX_JSON_DEPTH deep), the config, and every tensor's
 * name, dtype, shape and place in the file are checked against what the config needs before the
 * data is read; then the checksum, and the values (finite; BatchNorm variances >= 0). A checkpoint
 * (ddim_checkpoint_save) also restores its training state, validated the same way. */
DDIM_API ddim_status ddim_model_load(const char* path, int32_t device, ddim_model** out_model);

/* Writes the model to `path` (safetensors) atomically: a temporary file beside it is written,
 * flushed and then renamed over `path`, so a failed save never replaces a good file. */
DDIM_API ddim_status ddim_model_save(ddim_model* model, const char* path);

/* Frees a model. NULL, or a handle freed already, is a no-op. Waits for the calls holding the
 * handle on other threads; from the handle's own progress callback, the free happens when the
 * running call returns. */
DDIM_API void ddim_model_free(ddim_model* model);

/* Copies the model's configuration into `out_config`. */
DDIM_API ddim_status ddim_model_config(ddim_model* model, ddim_config* out_config);

/* Names the classes of a class-conditional model (saved in its file): `names` holds one name per
 * class, in class order, separated by '\n' (e.g. "T-shirt/top\nTrouser\n..."); each name has 1 ..
 * DDIM_MAX_CLASS_NAME_BYTES bytes, no control characters, and is unique. "" removes the names. */
DDIM_API ddim_status ddim_model_set_class_names(ddim_model* model, const char* names);

/* Copies the class names, '\n'-separated ("" when the model has none), into `buffer` (NUL-terminated)
 * and writes their length (without the NUL) to `out_length`; as ddim_checkpoint_user_state, with
 * `capacity` 0 only the length is written and a too-small capacity is DDIM_ERR_BUFFER_SIZE. */
DDIM_API ddim_status ddim_model_class_names(ddim_model* model, char* buffer, int64_t capacity, int64_t* out_length);

/* The number of trainable parameters (3,562,211 for the reference configuration). */
DDIM_API ddim_status ddim_model_parameter_count(ddim_model* model, int64_t* out_count);

/* The device the model lives on: DDIM_DEVICE_CPU or a CUDA index (never DDIM_DEVICE_AUTO). */
DDIM_API ddim_status ddim_model_device(ddim_model* model, int32_t* out_device);

/* 1 when the model holds EMA weights (written by training), else 0. */
DDIM_API ddim_status ddim_model_has_ema(ddim_model* model, int32_t* out_has_ema);

/* Sets the per-channel normaliser: the network sees (pixel - mean) / std. Both buffers hold
 * `channels` floats; every std must be finite and > 0, every mean finite. */
DDIM_API ddim_status ddim_model_set_normalizer(ddim_model* model, const float* mean, const float* std,
                                               int64_t channels);

/* Copies the per-channel normaliser into two buffers of `channels` floats. */
DDIM_API ddim_status ddim_model_normalizer(ddim_model* model, float* out_mean, float* out_std,
                                           int64_t channels);

/* ---------------------------------------------------------------------------------------------
 * Sampling
 * ------------------------------------------------------------------------------------------- */

/* The samplers. All evaluate the network exactly `steps` times, at t_k = 1 - k/steps for
 * k = 0 .. steps-1, move the sample to t_{k+1} after each evaluation, and return the last
 * predicted image. */
typedef enum ddim_sampler {
    DDIM_SAMPLER_DDIM = 0,             /* DDIM with `eta` (0: deterministic, the reference; 1: DDPM-like variance) */
    DDIM_SAMPLER_DDPM = 1,             /* DDPM ancestral sampling from the posterior q(x_t' | x_t, predicted image) */
    DDIM_SAMPLER_DPM_SOLVER_PP_2M = 2  /* DPM-Solver++(2M), a second-order multistep ODE solver: better at few steps */
} ddim_sampler;

/* Called after every step of every chunk with the steps done in the chunk (1 .. steps), the
 * index within the call of the chunk's first image and the chunk's image count. Return 0 to go on,
 * anything else to cancel: the call then returns DDIM_ERR_CANCELLED. Runs on the calling thread. */
typedef int32_t (*ddim_progress_callback)(void* user_data, int32_t step, int32_t steps, int64_t first_image,
                                          int32_t images);

/* The arithmetic of the network during sampling (the sampler's own math stays float32). */
typedef enum ddim_precision {
    DDIM_PRECISION_FLOAT32 = 0, /* the default */
    DDIM_PRECISION_BFLOAT16 = 1 /* a bfloat16 copy of the network: faster where the hardware has bfloat16 arithmetic
                                 * (AVX512-BF16 CPUs, recent GPUs), at a small cost in accuracy (measured against
                                 * float32 in benchmarks/RESULTS.md) */
} ddim_precision;

/* Which implementation of the network sampling runs. */
typedef enum ddim_network {
    DDIM_NETWORK_EAGER = 0, /* libtorch's modules, as training runs them; PyTorch computes the same bits
                             * (scripts/python/ddim4j_torch.py) */
    DDIM_NETWORK_FUSED = 1, /* CPU: the U-Net as one oneDNN inference plan (activations kept in oneDNN's
                             * blocked layout, SiLU and the residual add fused into the convolutions,
                             * concatenations written in place, Winograd 3x3 convolutions: oneDNN's on
                             * AVX-512, ddim4j's own F(2x2, 3x3) on AVX2; buffers reused across steps). 2-3x faster than the eager network on AVX-512; rounds
                             * differently in the last bits (README: at most ~1e-4 in a pixel of [0, 1] over
                             * 20 steps). Deterministic and batch invariant like the eager network. With
                             * DDIM_PRECISION_BFLOAT16: bfloat16 convolutions accumulating in float32, on CPUs
                             * with AVX512-BF16 or AMX only (ddim_has_fused_bfloat16). DDIM_ERR_DEVICE for a
                             * CUDA model, DDIM_ERR_INVALID_ARGUMENT in a build without oneDNN (see
                             * ddim_has_fused_network). The plans (every activation of one micro-batch, and
                             * of two with guidance) are kept with the model for later calls and freed with it. */
    DDIM_NETWORK_AUTO = 2   /* the default: FUSED on the CPU wherever this build has it (bfloat16 only where
                             * the CPU has it natively, else float32: emulated bfloat16 is ~10x slower), EAGER
                             * elsewhere (CUDA, builds without oneDNN) */
} ddim_network;

/* 1 when this build has the fused network (DDIM_NETWORK_FUSED), else 0. */
DDIM_API int32_t ddim_has_fused_network(void);

/* 1 when the fused network can compute in bfloat16 on this CPU (AVX512-BF16 or AMX), else 0. */
DDIM_API int32_t ddim_has_fused_bfloat16(void);

/* One image of a seed's sequence: the image that a call with this seed draws at this index
 * (first_index + i). See ddim_sample_params.images. */
typedef struct ddim_image_id {
    uint64_t seed;
    int64_t index; /* 0 .. DDIM_MAX_FIRST_INDEX + 2^31 - 1 */
} ddim_image_id;

typedef struct ddim_sample_params {
    int32_t count;       /* images to generate (or images passed in, for invert/vary/inpaint), >= 1 (default 16) */
    int32_t steps;       /* network evaluations, 1 .. DDIM_MAX_STEPS (default 20) */
    uint64_t seed;       /* image i's starting noise (and a stochastic sampler's noise) depends only on (seed, first_index + i) (default 42) */
    int32_t use_ema;     /* 1: use the EMA weights when the model has them (default); 0: the raw weights */
    int32_t sampler;     /* a ddim_sampler (default DDIM_SAMPLER_DDIM); invert always runs deterministic DDIM */
    double eta;          /* DDIM's eta, 0 .. DDIM_MAX_ETA (default 0) */
    int64_t first_index; /* image i of this call is image first_index + i of the seed's sequence, so a large
                          * request can be made in several calls (default 0) */
    int32_t batch_size;  /* images per pass through the sampling loop, >= 1; larger calls run in chunks of
                          * this many, which bounds memory and never changes the result (default 64) */
    int32_t micro_batch; /* images per network evaluation, 1 .. DDIM_MAX_MICRO_BATCH (default 16). The network always sees
                          * exactly this many (a short batch is padded), because libtorch picks its
                          * kernels, and so its rounding, by batch shape: this fixed shape is what makes
                          * image i independent of the request. Results depend on it; keep it fixed to
                          * reproduce them. A batch_size that is a multiple of it wastes nothing. */
    int32_t precision;   /* a ddim_precision (default DDIM_PRECISION_FLOAT32) */
    int32_t network;     /* a ddim_network (default DDIM_NETWORK_AUTO) */
    ddim_progress_callback progress; /* may be NULL (default) */
    void* progress_user_data;        /* passed to `progress` */
    /* Each image's own seed and index, for merging requests into one call (a server's dynamic
     * batching): NULL (default), or `image_count` == count entries. Image i is then drawn exactly as
     * image images[i].index of seed images[i].seed (starting noise and a stochastic sampler's noise),
     * so with the same micro_batch it gets the pixels that request alone gets; seed and first_index
     * are unused. Used by ddim_sample, ddim_sample_trajectory, ddim_vary and ddim_inpaint. */
    const ddim_image_id* images;
    int64_t image_count;
    /* Previews of the denoising: NULL (default), or a buffer of count * channels * size * size floats
     * (preview_count). After every preview_every-th step of a chunk, and after its last, the chunk's
     * predicted clean images (pixels in [0, 1], NaN where the network gave NaN) are written there at
     * their place in the call, before `progress` is called for that step. */
    float* preview;
    int64_t preview_count;
    int32_t preview_every; /* steps between previews, >= 1 (default 1) */
    /* Class-conditional models: NULL (default: no class, the unconditional prediction), or
     * `class_count` classes (0 .. classes - 1): one for every image, or one per image. Unconditional
     * models take none. Used by every sampling call, ddim_invert and ddim_predict included. */
    const int32_t* classes;
    int64_t class_count;
    /* Classifier-free guidance weight w, 0 .. DDIM_MAX_GUIDANCE (default 1): the network's prediction
     * is uncond + w * (cond - uncond), both halves evaluated in one batch of 2 x micro_batch; 1 is
     * the plain conditional prediction (one half only), 0 the unconditional one. Needs classes. */
    double guidance;
} ddim_sample_params;

/* Fills `params` with the defaults above. NULL is a no-op. */
DDIM_API void ddim_sample_params_init(ddim_sample_params* params);

/* Generates `params->count` images with the chosen sampler and writes their pixels to
 * `out_pixels` (NCHW float32 in [0, 1]); `out_count` must equal count * channels * size * size.
 * Starts from `noise` (count * channels * size * size floats, the state at t = 1) when it is not
 * NULL, else from the seed's noise (see ddim_initial_noise). Image i depends only on (seed,
 * first_index + i) (or its own noise) and micro_batch, never on count, batch_size or the other
 * images: the same image is bit-identical on the same device however a request is split.
 * Non-finite noise, or a network whose output is not finite, gives DDIM_ERR_NON_FINITE rather
 * than NaN pixels; so do all the sampling calls below. */
DDIM_API ddim_status ddim_sample(ddim_model* model, const ddim_sample_params* params, const float* noise,
                                 int64_t noise_count, float* out_pixels, int64_t out_count);

/* Like ddim_sample, and also writes the states the sampler passes through, as pixels (the state
 * denormalised and clipped to [0, 1]): for each image, steps + 1 frames of channels * size * size
 * floats, frame k < steps the state x at t = 1 - k/steps before evaluation k (frame 0: the
 * starting noise), the last frame the sampled image. `out_count` must equal
 * count * (steps + 1) * channels * size * size; image i's frames come before image i + 1's. */
DDIM_API ddim_status ddim_sample_trajectory(ddim_model* model, const ddim_sample_params* params, const float* noise,
                                            int64_t noise_count, float* out_frames, int64_t out_count);

/* Writes the starting noise of images first_index .. first_index + count - 1 of `seed`: N(0, I),
 * drawn per image on the CPU from a generator seeded by (seed, index), so it is the same on every
 * device. `out_count` must equal count * channels * size * size. */
DDIM_API ddim_status ddim_initial_noise(ddim_model* model, uint64_t seed, int64_t first_index, int32_t count,
                                        float* out_noise, int64_t out_count);

/* The same noise as ddim_initial_noise for any model of `config`, without a model: the noise
 * depends only on (seed, index) and the image shape. */
DDIM_API ddim_status ddim_seed_noise(const ddim_config* config, uint64_t seed, int64_t first_index, int32_t count,
                                     float* out_noise, int64_t out_count);

/* DDIM inversion: runs deterministic DDIM backwards from `params->count` images (pixels in [0, 1])
 * at t = 0 to t = 1, evaluating the network `steps` times at t = 0, 1/steps, ..., 1 - 1/steps,
 * and writes the noise from which ddim_sample (deterministic DDIM, the same steps) regenerates the
 * images. The reconstruction error shrinks as steps grow. Uses steps, use_ema, batch_size and
 * progress of `params`. */
DDIM_API ddim_status ddim_invert(ddim_model* model, const ddim_sample_params* params, const float* pixels,
                                 int64_t pixel_count, float* out_noise, int64_t out_count);

/* Variations (SDEdit, Meng et al. 2021): noises each image to t = strength (0 < strength <= 1)
 * with its starting noise from (seed, first_index + i), then denoises with the chosen sampler over
 * the uniform grid strength, ..., strength / steps in `steps` evaluations. Small strengths stay
 * close to the input; strength 1 keeps only its coarsest traces. */
DDIM_API ddim_status ddim_vary(ddim_model* model, const ddim_sample_params* params, double strength,
                               const float* pixels, int64_t pixel_count, float* out_pixels, int64_t out_count);

/* Inpainting: generates the region where `mask` is 1 and keeps the images where it is 0. The mask
 * holds size * size floats in [0, 1] (one mask for every image) or count * size * size (one per
 * image), shared by all channels. After every step the kept region is reset to
 * signal(t) * image + noise(t) * eps (eps the image's starting noise), so the generated region is
 * drawn to fit it. The result is the model's final prediction everywhere: the kept region matches
 * the input to within the model's denoising error, without a visible seam. */
DDIM_API ddim_status ddim_inpaint(ddim_model* model, const ddim_sample_params* params, const float* pixels,
                                  int64_t pixel_count, const float* mask, int64_t mask_count, float* out_pixels,
                                  int64_t out_count);

/* One network evaluation, the building block of every sampler, for callers who write their own
 * sampler or compare with other implementations (diffusers' UNet call takes the same t). Given
 * `params->count` noisy images x_t (NCHW float32 in the network's space: the pixels normalised with
 * the model's mean and std, x_t = signal(t) * x_0 + noise(t) * eps; any finite values) and their
 * times t (one float each, in [0, 1]), writes the predicted noise eps and the predicted clean image
 * x_0, both in that same space (de-normalise x_0 with the mean and std for pixels), whichever of
 * the two the model's target is. The rates are the model's schedule at t computed as the samplers
 * compute them, and the network sees micro-batches of `micro_batch` images, so an evaluation here
 * equals the samplers' at the same x and t bit for bit: with steps = 1, ddim_sample's pixels are
 * x_0 at t = 1 from the seed's noise, de-normalised and clamped. ddim_schedule_rates gives the rates
 * at other times (computed in double precision, so they may differ from the samplers' float32 ones in
 * the last bit). Uses count, use_ema, micro_batch and precision of `params`. `noisy_count`, and
 * `out_count` of each output, must equal count * channels * size * size; `t_count` must equal count.
 * A t outside [0, 1] or a non-finite input is DDIM_ERR_INVALID_ARGUMENT; a non-finite result
 * DDIM_ERR_NON_FINITE. */
DDIM_API ddim_status ddim_predict(ddim_model* model, const ddim_sample_params* params, const float* noisy,
                                  int64_t noisy_count, const float* t, int64_t t_count, float* out_noise,
                                  float* out_image, int64_t out_count);

/* ---------------------------------------------------------------------------------------------
 * Training
 *
 * A model handle carries its training state (AdamW's moments, the step count) once training has
 * begun or a checkpoint was loaded. Each step: for each image t ~ U(0, 1), eps ~ N(0, I);
 * noisy = signal(t) * x + noise(t) * eps with x the normalised image; the network predicts the
 * target; MAE or MSE loss; backward; AdamW; then the EMA of all weights and BatchNorm statistics,
 * with decay min(ema_decay, (1 + n) / (10 + n)) at update n. Step n's randomness is drawn from
 * (seed, n), so a checkpoint's seed and step count are its whole random state: resuming is bit-exact.
 * ------------------------------------------------------------------------------------------- */

typedef enum ddim_loss {
    DDIM_LOSS_MAE = 0, /* mean absolute error (the reference's default) */
    DDIM_LOSS_MSE = 1  /* mean squared error */
} ddim_loss;

typedef struct ddim_train_params {
    double learning_rate; /* AdamW learning rate, > 0 (default 1e-3) */
    double weight_decay;  /* AdamW decoupled weight decay, >= 0 (default 1e-4) */
    double ema_decay;     /* EMA decay in [0, 1), 0 = no EMA (default 0.999) */
    int32_t loss;         /* a ddim_loss (default DDIM_LOSS_MAE) */
    uint64_t seed;        /* seed of the per-step draws of t and noise (default 0) */
    int32_t accumulate;   /* micro-batches per step, 1 .. 4096: a step's batch splits into this many equal parts
                           * whose gradients add up before one optimizer step (default 1; see ddim_train_join) */
    double label_dropout; /* class-conditional models: the probability, 0 .. 1, that an image's label is replaced
                           * by "no class", drawn with the step's t and noise, so that the network also learns
                           * the unconditional prediction guidance needs (default 0.1) */
} ddim_train_params;

/* Fills `params` with the defaults above. NULL is a no-op. */
DDIM_API void ddim_train_params_init(ddim_train_params* params);

/* Begins training, or continues it with new hyper-parameters: the first call creates the
 * optimizer (and the EMA weights, as a copy of the weights, when ema_decay > 0); later calls, and
 * calls after loading a checkpoint, keep the optimizer state and step count. */
DDIM_API ddim_status ddim_train_begin(ddim_model* model, const ddim_train_params* params);

/* One training step on `count` images (NCHW float32 in [0, 1], `pixel_count` = count * channels *
 * size * size). Writes the batch loss. Forward, loss, backward, AdamW and EMA happen in this call.
 * Pixels that are not finite or outside [0, 1] are DDIM_ERR_INVALID_ARGUMENT; a non-finite loss
 * (divergence) is DDIM_ERR_NON_FINITE, reported before any weight changes. Needs
 * ddim_train_begin first. */
DDIM_API ddim_status ddim_train_step(ddim_model* model, const float* pixels, int64_t count, int64_t pixel_count,
                                     float* out_loss);

/* ddim_train_step for class-conditional models (which need labels; ddim_train_step refuses them):
 * `labels` holds `count` classes, each 0 .. classes, classes meaning "no class" (unlabelled images).
 * Each label becomes "no class" with probability label_dropout. */
DDIM_API ddim_status ddim_train_step_labeled(ddim_model* model, const float* pixels, int64_t count,
                                             int64_t pixel_count, const int32_t* labels, int64_t label_count,
                                             float* out_loss);

/* ---------------------------------------------------------------------------------------------
 * Distributed training (data parallel, on libtorch's c10d: Gloo on the CPU, NCCL on CUDA)
 *
 * world_size processes (ranks) train one model, as PyTorch's DistributedDataParallel: rank 0 hosts
 * a TCP rendezvous at master_addr:master_port (torchrun's MASTER_ADDR/MASTER_PORT); joining gives
 * every rank rank 0's weights, BatchNorm statistics, EMA, normaliser, optimizer state and step count.
 * Each ddim_train_step then averages the gradients over the ranks (in buckets of a few MiB) before
 * the optimizer step, and the BatchNorm running statistics with them, so all ranks keep
 * bit-identical weights. Each rank passes its own share of the global batch; micro-batch k of rank
 * r is micro-batch r * accumulate + k of the step, drawing its t and noise from (seed, step, that
 * index): N ranks with B/N images each match one process with accumulate = N and batches of B, to
 * float rounding. BatchNorm normalises each micro-batch by its own statistics (no SyncBatchNorm).
 *
 * A rank that dies makes the others' next step fail at once; one that hangs, after timeout_ms. The
 * failure is DDIM_ERR_DISTRIBUTED, with a message naming the lost rank, and no weight changes.
 * Joining sets SIGPIPE to be ignored when the process left it at its default (as Python and the JVM
 * do), so that writing to a dead rank's socket is an error rather than the end of the process.
 * ------------------------------------------------------------------------------------------- */

typedef struct ddim_distributed_params {
    int32_t rank;            /* this process, 0 .. world_size - 1 (default 0) */
    int32_t world_size;      /* processes in the group, 1 .. 65536 (default 1) */
    const char* master_addr; /* host or address of rank 0's rendezvous (default "127.0.0.1") */
    int32_t master_port;     /* its TCP port, 1 .. 65535 (default 29500) */
    int32_t timeout_ms;      /* how long joining, and each collective, waits for the other ranks (default 300000) */
} ddim_distributed_params;

/* Fills `params` with the defaults above. NULL is a no-op. */
DDIM_API void ddim_distributed_params_init(ddim_distributed_params* params);

/* 1 when this build can train across processes on the CPU (libtorch's c10d with Gloo), else 0. */
DDIM_API int32_t ddim_has_distributed(void);

/* Joins the process group (blocking until all ranks have joined, or timeout_ms) and takes rank 0's
 * state, after checking that every rank has the same model configuration and training parameters
 * (DDIM_ERR_INVALID_ARGUMENT otherwise). Needs ddim_train_begin first; a handle joins once, and
 * leaves the group when it is freed. DDIM_ERR_DEVICE when the build has no process group for the
 * model's device. */
DDIM_API ddim_status ddim_train_join(ddim_model* model, const ddim_distributed_params* params);

/* Sets `out_any` to 1 on every rank when any rank passed a non-zero `flag`, else 0 (one small
 * collective; without a group, `out_any` is `flag != 0`). Every rank must call it at the same point,
 * e.g. after each step, so that all ranks agree to stop after the same step when one was asked to. */
DDIM_API ddim_status ddim_train_any_rank(ddim_model* model, int32_t flag, int32_t* out_any);

typedef struct ddim_distributed_stats {
    int32_t rank;       /* this process's rank (0 when not distributed) */
    int32_t world_size; /* 1 when not distributed */
    int64_t calls;      /* collectives run since joining */
    int64_t bytes;      /* bytes they reduced or broadcast, per rank */
    double seconds;     /* time spent in them */
} ddim_distributed_stats;

/* The handle's process-group figures (zeros, world_size 1, before ddim_train_join). */
DDIM_API ddim_status ddim_distributed_stats_get(ddim_model* model, ddim_distributed_stats* out_stats);

/* Whether the handle has training state (`out_active`), and if so its parameters and the number of
 * steps taken. Any output pointer may be NULL. */
DDIM_API ddim_status ddim_train_state(ddim_model* model, int32_t* out_active, ddim_train_params* out_params,
                                      int64_t* out_steps);

/* Validation losses as the reference reports them: MAE of the predicted noise and of the
 * predicted image, on `count` images at t and noise drawn from `seed`; with the EMA weights when
 * `use_ema` and the model has them. Pixels must be finite and in [0, 1]. Changes nothing. */
DDIM_API ddim_status ddim_evaluate(ddim_model* model, const float* pixels, int64_t count, int64_t pixel_count,
                                   uint64_t seed, int32_t use_ema, float* out_noise_loss, float* out_image_loss);

/* ddim_evaluate of a class-conditional model's conditional prediction, with one label per image
 * (0 .. classes, classes meaning "no class"); ddim_evaluate evaluates such a model with "no class". */
DDIM_API ddim_status ddim_evaluate_labeled(ddim_model* model, const float* pixels, int64_t count, int64_t pixel_count,
                                           const int32_t* labels, int64_t label_count, uint64_t seed, int32_t use_ema,
                                           float* out_noise_loss, float* out_image_loss);

/* Writes a checkpoint: the model file plus the optimizer state, the step count and the training
 * parameters, and `user_state` (an opaque string, may be NULL), atomically. ddim_model_load on a
 * checkpoint restores all of it. Needs training state. */
DDIM_API ddim_status ddim_checkpoint_save(ddim_model* model, const char* path, const char* user_state);

/* Copies the user_state string of the checkpoint this handle was loaded from ("" otherwise) into
 * `buffer` (NUL-terminated) and writes its length (without the NUL) to `out_length`. With
 * `capacity` 0 (buffer may be NULL) only the length is written; a too-small capacity is
 * DDIM_ERR_BUFFER_SIZE. */
DDIM_API ddim_status ddim_checkpoint_user_state(ddim_model* model, char* buffer, int64_t capacity,
                                                int64_t* out_length);

/* Export flags, combined with |. */
#define DDIM_EXPORT_EMA_WEIGHTS 1 /* store the EMA weights (when present) as the only weights */
#define DDIM_EXPORT_HALF 2        /* store the weights as float16 (half the size; loads as float32) */

/* Writes a model file for sampling (no optimizer state), atomically. */
DDIM_API ddim_status ddim_model_export(ddim_model* model, const char* path, int32_t flags);

/* ---------------------------------------------------------------------------------------------
 * Evaluation: feature extractors and KID
 *
 * KID (Kernel Inception Distance) compares real and generated images through the features a
 * network gives them: the unbiased MMD^2 under the kernel k(x, y) = (x.y / d + 1)^3, computed in
 * float64 and averaged over random subsets. Lower is better; 0 means the same distribution.
 * ------------------------------------------------------------------------------------------- */

typedef struct ddim_extractor ddim_extractor;

/* Loads a TorchScript feature extractor (a module saved with torch.jit.save whose forward maps a
 * [batch, channels, size, size] float tensor to [batch, ...] features) onto `device`. Its
 * preprocessing comes from `<path>.json` when that file exists (keys input_size, input_channels,
 * mean, std, feature_mean, feature_std; see README); without it, torchvision's InceptionV3 is
 * assumed: 3x299x299 input, ImageNet mean and std, features unstandardised. DDIM_ERR_IO for a
 * missing file, DDIM_ERR_FORMAT for one that is not TorchScript or a malformed .json.
 * TorchScript is code: loading a file runs what it contains. Load trusted files only. */
DDIM_API ddim_status ddim_extractor_load(const char* path, int32_t device, ddim_extractor** out_extractor);

/* Frees the extractor. NULL is a no-op. */
DDIM_API void ddim_extractor_free(ddim_extractor* extractor);

/* The extractor's feature dimension, input side, input channels (1 or 3) and whether it
 * standardises its features (1) or not (0). Any output pointer may be NULL. */
DDIM_API ddim_status ddim_extractor_info(ddim_extractor* extractor, int64_t* out_dimension, int32_t* out_input_size,
                                         int32_t* out_input_channels, int32_t* out_standardised);

/* Features of `count` images (NCHW float32 in [0, 1], any channels 1..4 and size; resized,
 * converted and normalised as the extractor expects). `pixel_count` must equal
 * count * channels * height * width and `out_count` count * dimension. */
DDIM_API ddim_status ddim_extractor_features(ddim_extractor* extractor, const float* pixels, int64_t count,
                                             int32_t channels, int32_t height, int32_t width, int64_t pixel_count,
                                             float* out_features, int64_t out_count);

typedef struct ddim_kid_params {
    int32_t subsets;     /* random subsets to average over, >= 1 (default 100) */
    int32_t subset_size; /* images per subset from each side, >= 2; 0: half the smaller set, at most 1000 (default 0) */
    uint64_t seed;       /* which subsets (default 0) */
} ddim_kid_params;

/* Fills `params` with the defaults above. NULL is a no-op. */
DDIM_API void ddim_kid_params_init(ddim_kid_params* params);

typedef struct ddim_kid_result {
    double kid;          /* the mean of the subsets' MMD^2 estimates */
    double std;          /* their standard deviation */
    int32_t subsets;
    int32_t subset_size; /* as used */
} ddim_kid_result;

/* KID between `real_count` real and `generated_count` generated feature vectors of `dimension`
 * floats each (rows of ddim_extractor_features), both counts >= 2. */
DDIM_API ddim_status ddim_kid(const float* real, int64_t real_count, const float* generated, int64_t generated_count,
                              int64_t dimension, const ddim_kid_params* params, ddim_kid_result* out_result);

#ifdef __cplusplus
}
#endif

#endif /* DDIM_H */
