"""ddim4j model files in PyTorch: load one into a torch nn.Module, predict and sample with it, and write one back.

    import sys; sys.path.insert(0, "scripts/python")   # this folder
    import torch, ddim4j_torch

    model = ddim4j_torch.load("models/fashion-mnist-32.safetensors")   # a DdimModel, in eval mode
    x = torch.randn(4, 1, 32, 32)                  # noisy images in the network's (normalised) space
    noise, image = model.predict(x, torch.ones(4))  # at t = 1; the same numbers as ddim4j's Ddim.predict
    pixels = model.denormalize(image).clamp(0, 1)   # one DDIM step from pure noise
    pixels = model.sample(x, steps=20)              # deterministic DDIM: Ddim.sample's pixels from this noise
    output = model(x, noise_variances)             # the raw network: the U-Net on noise rate^2, as in Keras
    ddim4j_torch.save(model, "copy.safetensors")    # ddim4j opens it and samples the same images

Class models (a config with "classes", and usually "class_names") take a class per image:

    model = ddim4j_torch.load("models/fashion-mnist-32-classes.safetensors")
    model.classes, model.class_names                # 10, ["T-shirt/top", "Trouser", ...]
    pixels = model.sample(x, 20, classes=[7, 7, 5, 5], guidance=3)   # two sneakers, two sandals
    noise, image = model.predict(x, torch.ones(4), classes=7, guidance=3)   # one class for all
    output = model(x, noise_variances, labels=torch.tensor([7, 7, 5, 10]))  # label 10 = model.classes: "no class"

`classes` is None (no class: the unconditional prediction), one class for every image, or one per
image, each 0 .. classes - 1. The network learns one vector per class plus one for "no class" (label
`model.classes`, the label that training's label dropout substitutes), joined to the noise embedding
as extra channels. Classifier-free guidance weight w (0 .. 100, default 1) predicts
uncond + w * (cond - uncond), both halves in one network batch as ddim4j evaluates them; 1 is the
plain conditional prediction, 0 the unconditional one.

The network is the U-Net exactly as ddim4j's native core builds it (native/src/unet.h), with the same
parameter names, so `model.state_dict()` holds the file's tensors under the file's names: `net.*`
(`net.class_embedding.weight` for a class model), `ema.*` (when the file has EMA weights),
`normalizer.mean` and `normalizer.std`; `load` loads them strictly (every name and shape must match).
The schedule, the micro-batching and guidance of `predict`, and the DDIM steps of `sample` follow
native/src/schedule.cpp, native/src/model.cpp and native/src/sampling.cpp operation by operation, so
with Debian's python3-torch (the same libtorch 1.13 as ddim4j) and the same thread count, results agree
with ddim4j's eager network (Network.EAGER) to the last bit or nearly.

Needs the standard library and torch only (Debian's python3-torch; Debian has no python3-safetensors):
the safetensors format is an 8-byte little-endian header length, a JSON header, then raw tensor
bytes. Checkpoints load too (their AdamW state is skipped); `save` writes a model file, never a
checkpoint, with the config (classes and class names included) as it was loaded.
"""
import json
import math
import os
import struct
import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

FORMAT_VERSION = "1"
MAX_HEADER_BYTES = 16 * 1024 * 1024  # ddim4j's DDIM_MAX_HEADER_BYTES
MAX_GUIDANCE = 100  # ddim4j's DDIM_MAX_GUIDANCE

_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}
_NAMES = {dtype: name for name, dtype in _DTYPES.items()}


# ---- the U-Net (native/src/unet.h) ----

class SinusoidalEmbedding(nn.Module):
    """[B] noise variances -> [B, dim, 1, 1]: sin and cos of 2 pi f v, f log-spaced from 1 to 1000."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, variances):
        frequencies = torch.linspace(math.log(1.0), math.log(1000.0), self.dim // 2, device=variances.device).exp()
        angles = 2 * math.pi * frequencies[None, :] * variances.reshape(-1, 1)
        return torch.cat([angles.sin(), angles.cos()], dim=1)[:, :, None, None]


class ResidualBlock(nn.Module):
    """conv1x1(x) + conv3x3_b(swish(conv3x3_a(batchnorm(x))))."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)
        self.conv_a = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv_b = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def forward(self, x):
        return self.shortcut(x) + self.conv_b(F.silu(self.conv_a(self.norm(x))))


class DownBlock(nn.Module):
    def __init__(self, in_channels, width, depth):
        super().__init__()
        self.blocks = nn.ModuleList([ResidualBlock(in_channels if i == 0 else width, width) for i in range(depth)])

    def forward(self, x, skips):
        for block in self.blocks:
            x = block(x)
            skips.append(x)
        return F.avg_pool2d(x, 2)


class UpBlock(nn.Module):
    def __init__(self, in_channels, out_channels, depth):
        super().__init__()
        self.blocks = nn.ModuleList(
            [ResidualBlock((in_channels if i == 0 else out_channels) + in_channels, out_channels) for i in range(depth)])

    def forward(self, x, skips):
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        for block in self.blocks:
            x = block(torch.cat([x, skips.pop()], dim=1))
        return x


class UNet(nn.Module):
    """The Keras DDIM example's U-Net as ddim4j builds it: forward(noisy [B, C, S, S], noise variances [B], labels [B]).

    With `classes` = N > 0 (a class model) it also learns `class_embedding`, N + 1 vectors of
    embedding_dim numbers, the last one "no class" (label N); the image's vector joins the noise
    embedding as extra channels, repeated over H x W, and widens the first down block's input.
    """

    def __init__(self, channels, widths=(32, 64, 96, 128), depth=2, embedding_dim=32, classes=0):
        super().__init__()
        self.classes = classes
        self.embedding = SinusoidalEmbedding(embedding_dim)
        self.class_embedding = nn.Embedding(classes + 1, embedding_dim) if classes > 0 else None
        self.input_conv = nn.Conv2d(channels, widths[0], 1)
        self.down = nn.ModuleList()
        c = widths[0] + embedding_dim * (2 if classes > 0 else 1)
        for w in widths:
            self.down.append(DownBlock(c, w, depth))
            c = w
        self.middle_a = ResidualBlock(c, 2 * c)
        self.middle_b = ResidualBlock(2 * c, c)
        self.up = nn.ModuleList([UpBlock(widths[i], widths[max(i - 1, 0)], depth) for i in reversed(range(len(widths)))])
        self.output_conv = nn.Conv2d(widths[0], channels, 1)
        nn.init.zeros_(self.output_conv.weight)
        nn.init.zeros_(self.output_conv.bias)

    def forward(self, noisy, variances, labels=None):
        """labels: [B] ints in 0 .. classes, classes meaning "no class"; None: no class for all (class models only)."""
        if self.classes == 0 and labels is not None:
            raise ValueError("an unconditional network takes no class labels")
        spread = (-1, -1, noisy.shape[2], noisy.shape[3])
        # The embedding in float32 (its frequencies reach 1000), then in the network's dtype.
        joined = [self.input_conv(noisy), self.embedding(variances.float()).to(noisy.dtype).expand(spread)]
        if self.classes > 0:
            if labels is None:
                labels = torch.full((noisy.shape[0],), self.classes, dtype=torch.long, device=noisy.device)
            labels = torch.as_tensor(labels, dtype=torch.long, device=noisy.device)
            if labels.shape != (noisy.shape[0],):
                raise ValueError(f"one class label per image: {noisy.shape[0]} images, labels of shape {tuple(labels.shape)}")
            joined.append(self.class_embedding(labels).to(noisy.dtype)[:, :, None, None].expand(spread))
        x = torch.cat(joined, dim=1)
        skips = []
        for block in self.down:
            x = block(x, skips)
        x = self.middle_b(self.middle_a(x))
        for block in self.up:
            x = block(x, skips)
        return self.output_conv(x)


# ---- the schedule (native/src/schedule.cpp), in float32 as ddim4j's samplers compute it ----

def _linear_alpha_bar():
    table, product = [], 1.0
    for i in range(1000):
        product *= 1.0 - (1e-4 + (0.02 - 1e-4) * i / 999)
        table.append(product)
    return table


def rates(schedule, t):
    """(signal, noise) rates of `schedule` (the config's "schedule" dict) at times t (a float tensor, any shape)."""
    t = torch.as_tensor(t, dtype=torch.float32)
    if schedule["kind"] == "cosine":
        start, end = math.acos(schedule["max_signal"]), math.acos(schedule["min_signal"])
        angle = start + t * (end - start)
        return torch.cos(angle), torch.sin(angle)
    if schedule["kind"] != "linear":
        raise ValueError(f"unknown schedule {schedule['kind']!r}")
    alpha_bar = torch.tensor(_linear_alpha_bar(), dtype=torch.float64).to(t.device, t.dtype)
    position = t.clamp(0.0, 1.0) * 999
    lower = position.floor().clamp(0, 999).long()
    upper = (lower + 1).clamp(max=999)
    fraction = (position - lower.to(t.dtype)).reshape(-1)
    interpolated = (alpha_bar.index_select(0, lower.reshape(-1)) * (1 - fraction) +
                    alpha_bar.index_select(0, upper.reshape(-1)) * fraction).reshape(t.shape)
    signal = interpolated.sqrt().clamp(schedule["min_signal"], schedule["max_signal"])
    return signal, (1 - signal * signal).sqrt()


# ---- the model ----

class Normalizer(nn.Module):
    """The per-channel normaliser: the network sees (pixels - mean) / std."""

    def __init__(self, channels):
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))


class DdimModel(nn.Module):
    """A ddim4j model: the network `net`, its EMA copy `ema` (or None), the `normalizer` and the `config` dict."""

    def __init__(self, config, with_ema=False):
        super().__init__()
        self.config = dict(config)
        self.net = self._network()
        self.ema = self._network() if with_ema else None
        self.normalizer = Normalizer(config["channels"])

    def _network(self):
        c = self.config
        return UNet(c["channels"], tuple(c["widths"]), c["block_depth"], c["embedding_dim"], self.classes)

    @property
    def classes(self):
        """The number of classes of a class model (0: unconditional); label `classes` is "no class"."""
        return self.config.get("classes", 0)

    @property
    def class_names(self):
        """The classes' names in class order; empty when the file names none (or the model has no classes)."""
        return list(self.config.get("class_names", []))

    def network(self, use_ema=True):
        """The EMA network when asked for and present, else the raw one (as ddim4j chooses)."""
        return self.ema if use_ema and self.ema is not None else self.net

    def normalize(self, pixels):
        return (pixels - self.normalizer.mean.view(1, -1, 1, 1)) / self.normalizer.std.view(1, -1, 1, 1)

    def denormalize(self, x):
        return x * self.normalizer.std.view(1, -1, 1, 1) + self.normalizer.mean.view(1, -1, 1, 1)

    def rates(self, t):
        """(signal, noise) rates of the model's schedule at t, in float32 as ddim4j's samplers compute them."""
        return rates(self.config["schedule"], t)

    def forward(self, noisy, noise_variances, use_ema=True, labels=None):
        """The network's output (the noise, or the image for target "image") at the given noise variances (noise rate^2).

        labels: a class model's [B] labels, 0 .. classes, `classes` meaning "no class" (the label that
        label dropout trains); None: no class for all.
        """
        return self.network(use_ema)(noisy, noise_variances, labels)

    def _labels(self, classes, count, device):
        """ddim4j's sampling classes as [count] labels: none (None or empty) stays None, one applies to every image."""
        labels = None if classes is None else torch.as_tensor(classes, dtype=torch.long).reshape(-1)
        if labels is None or labels.numel() == 0:
            return None
        if self.classes == 0:
            raise ValueError("this model is unconditional: it takes no classes")
        if labels.numel() not in (1, count):
            raise ValueError(f"classes must hold one class or one per image ({count}), got {labels.numel()}")
        if labels.min() < 0 or labels.max() >= self.classes:
            raise ValueError(f"classes must lie in 0..{self.classes - 1}, got {labels.tolist()}")
        return labels.expand(count).to(device)

    @staticmethod
    def _check_guidance(guidance):
        if not 0 <= guidance <= MAX_GUIDANCE:  # false for NaN too
            raise ValueError(f"guidance must lie in [0, {MAX_GUIDANCE}], got {guidance}")

    def _predict(self, noisy, signal, noise, use_ema, micro_batch, labels, guidance):
        """native/src/model.cpp's Model::predict: the (noise, image) predictions at rates [B, 1, 1, 1]."""
        variances = noise.square().reshape(-1)
        network = self.network(use_ema)
        # Guidance 1 needs the conditional half only, 0 the unconditional ("no class") one.
        guided = labels is not None and guidance not in (0, 1)
        unguided_labels = None if guidance == 0 else labels

        def guide(x, v, given):
            # Both halves in one batch of twice the images, as ddim4j evaluates them (its rounding
            # depends on the batch shape): uncond + guidance * (cond - uncond).
            n = x.shape[0]
            both = network(torch.cat([x, x]), torch.cat([v, v]), torch.cat([given, torch.full_like(given, self.classes)]))
            conditional, unconditional = both[:n], both[n:]
            return unconditional + guidance * (conditional - unconditional)

        def padded(part, first, n):
            # The slice of n images from `first`, filled up to micro_batch with copies of its last image.
            if part is None:
                return None
            part = part[first:first + n]
            return part if n == micro_batch else torch.cat([part, part[n - 1:n].expand(micro_batch - n, *part.shape[1:])])

        if micro_batch is None:
            output = guide(noisy, variances, labels) if guided else network(noisy, variances, unguided_labels)
        else:
            outputs = []
            for first in range(0, noisy.shape[0], micro_batch):
                n = min(micro_batch, noisy.shape[0] - first)
                x, v, given = (padded(part, first, n) for part in (noisy, variances, unguided_labels))
                outputs.append((guide(x, v, given) if guided else network(x, v, given))[:n])
            output = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
        if self.config["target"] == "noise":
            return output, (noisy - noise * output) / signal
        return (noisy - signal * output) / noise, output

    @torch.no_grad()
    def predict(self, noisy, t, use_ema=True, micro_batch=16, classes=None, guidance=1.0):
        """ddim4j's Ddim.predict: the predicted noise and clean image of noisy images [B, C, S, S] at times t [B].

        The network sees batches of exactly `micro_batch` images, the last one padded with copies of its
        last image, as ddim4j's samplers run it (the convolution kernels, and so the rounding, depend on
        the batch shape); None runs the whole batch at once. A class model takes `classes` (None: no
        class; one class for every image; or one per image, each 0 .. classes - 1) and the
        classifier-free guidance weight (0 .. 100): uncond + guidance * (cond - uncond), both halves
        of a micro-batch evaluated in one batch of twice its size; 1 is the plain conditional
        prediction, 0 the unconditional one.
        """
        self._check_guidance(guidance)
        noisy = torch.as_tensor(noisy, dtype=torch.float32)
        t = torch.as_tensor(t, dtype=torch.float32, device=noisy.device).reshape(-1)
        if noisy.shape[0] != t.shape[0]:
            raise ValueError(f"{noisy.shape[0]} noisy images but {t.shape[0]} times")
        signal, noise = self.rates(t)
        return self._predict(noisy, signal.reshape(-1, 1, 1, 1), noise.reshape(-1, 1, 1, 1), use_ema, micro_batch,
                             self._labels(classes, noisy.shape[0], noisy.device), guidance)

    @torch.no_grad()
    def sample(self, noise, steps, classes=None, guidance=1.0, use_ema=True, micro_batch=16):
        """ddim4j's deterministic DDIM (eta 0, native/src/sampling.cpp): pixels in [0, 1] from starting noise [B, C, S, S].

        `steps` network evaluations at t_k = 1 - k / steps, each followed by
        x = signal(t_k+1) * image + noise(t_k+1) * eps; the result is the last predicted image,
        de-normalised and clamped. `classes`, `guidance` and `micro_batch` as in `predict`. The same as
        ddim4j's Ddim.sample with the network EAGER, the same micro-batch, and a batch size that holds
        all the images or is a multiple of micro_batch (the defaults, 64 and 16, are).
        """
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self._check_guidance(guidance)
        x = torch.as_tensor(noise, dtype=torch.float32)
        count = x.shape[0]
        labels = self._labels(classes, count, x.device)
        # The time grid in double, then the rates of all of it at once in float32, as ddim4j computes them.
        times = torch.tensor([1.0 - k / steps for k in range(steps + 1)], dtype=torch.float64)
        signal, noise_rate = self.rates(times.to(x.device, torch.float32))

        def at(rate, k):
            # The rate at t_k for every image, shaped [count, 1, 1, 1] as ddim4j's step takes it.
            return rate[k].expand(count, 1, 1, 1)

        for k in range(steps):
            eps, image = self._predict(x, at(signal, k), at(noise_rate, k), use_ema, micro_batch, labels, guidance)
            x = at(signal, k + 1) * image + at(noise_rate, k + 1) * eps
        return self.denormalize(image).clamp(0.0, 1.0)


# ---- the file format (native/src/model_file.h) ----

def _crc_u64(value, crc):
    return zlib.crc32(struct.pack("<Q", value), crc)


def _crc_text(text, crc):
    data = text.encode("utf-8")
    return zlib.crc32(data, _crc_u64(len(data), crc))


def tensors_crc32(entries, body):
    """The metadata's tensors_crc32: CRC-32 over the tensors in name order, each as its name and dtype
    (length-prefixed), rank, dimensions and bytes, every number a little-endian uint64. It does not
    depend on where in the file the tensors lie."""
    crc = 0
    for name in sorted(entries, key=lambda n: n.encode("utf-8")):
        entry = entries[name]
        crc = _crc_u64(len(entry["shape"]), _crc_text(entry["dtype"], _crc_text(name, crc)))
        for dim in entry["shape"]:
            crc = _crc_u64(dim, crc)
        begin, end = entry["data_offsets"]
        crc = zlib.crc32(body[begin:end], crc)
    return f"{crc:08x}"


def read_tensors(path):
    """The metadata and the tensors of a safetensors file, checked as ddim4j checks them (layout and checksum)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short to be a safetensors file")
    (length,) = struct.unpack("<Q", data[:8])
    if length > min(len(data) - 8, MAX_HEADER_BYTES):
        raise ValueError(f"{path}: header length {length} exceeds the file or the limit")
    header = json.loads(data[8:8 + length])
    body = data[8 + length:]
    metadata = header.pop("__metadata__", {})
    if metadata.get("format") != "ddim4j" or metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: not a ddim4j model file of format version {FORMAT_VERSION}")
    covered = sorted(tuple(entry["data_offsets"]) for entry in header.values())
    if [r[0] for r in covered] != [0] + [r[1] for r in covered[:-1]] or (covered[-1][1] if covered else 0) != len(body):
        raise ValueError(f"{path}: tensor data overlaps, leaves gaps or misses the end of the file")
    if "tensors_crc32" in metadata:
        intact = metadata["tensors_crc32"] == tensors_crc32(header, body)
    else:
        intact = "data_crc32" not in metadata or int(metadata["data_crc32"], 16) == zlib.crc32(body)
    if not intact:
        raise ValueError(f"{path}: checksum mismatch: the weights are corrupt")
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype = _DTYPES[entry["dtype"]]
        tensor = torch.frombuffer(bytearray(body[begin:end]), dtype=dtype) if end > begin else torch.empty(0, dtype=dtype)
        tensors[name] = tensor.reshape(entry["shape"])
    return metadata, tensors


def load(path, device="cpu"):
    """A DdimModel holding the model file (or checkpoint) at `path`, in eval mode, on `device`."""
    metadata, tensors = read_tensors(path)
    config = json.loads(metadata["config"])
    model = DdimModel(config, with_ema=any(name.startswith("ema.") for name in tensors))
    # A checkpoint's AdamW moments are training state, not part of the model.
    state = {name: tensor for name, tensor in tensors.items() if not name.startswith("optim.")}
    model.load_state_dict(state, strict=True)  # copies, converting F16/BF16 weights to float32
    return model.to(device).eval()


def save(model, path, half_precision=False):
    """Writes `model` as a ddim4j model file, its tensors in the module's own order (not ddim4j's).

    The metadata carries the config, both checksums (tensors_crc32, and data_crc32 for ddim4j builds
    that predate it) and the format version. With `half_precision` the weights are stored as F16 (the
    normaliser stays F32), as ddim4j's export does.
    """
    entries, chunks, offset = {}, [], 0
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu").contiguous()
        if half_precision and tensor.dtype == torch.float32 and not name.startswith("normalizer."):
            tensor = tensor.half()
        if tensor.dtype not in _NAMES:
            raise ValueError(f"tensor {name} has dtype {tensor.dtype}, which ddim4j files do not hold")
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        entries[name] = {"dtype": _NAMES[tensor.dtype], "shape": list(tensor.shape),
                         "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    body = b"".join(chunks)
    metadata = {"format": "ddim4j", "format_version": FORMAT_VERSION,
                "config": json.dumps(model.config, separators=(",", ":")),
                "tensors_crc32": tensors_crc32(entries, body), "data_crc32": f"{zlib.crc32(body):08x}",
                "writer": "ddim4j_torch"}
    text = json.dumps({"__metadata__": metadata, **entries}, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # keeps the data 8-byte aligned, as ddim4j does
    temporary = f"{path}.tmp-{os.getpid()}"  # then a rename: readers never see half a file
    with open(temporary, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
