"""Optimizing probes: activation maximization of channels, and deep dream.

Both work on pixels in [0, 1] that are normalised with the model's mean/std before every
forward pass, follow the image gradient of `probes.objective` (taken by `layers.capture`),
and return the image and the trace of the objective (without the penalties), one row a step.
The model's device and dtype are used throughout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm import tqdm

from reference.probe.layers import capture
from reference.probe.probes import objective

# Olah et al. 2017 (lucid): square root of ImageNet's colour covariance, for decorrelated colour.
COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])


@dataclass(frozen=True)
class MaximizeSettings:
    """Activation maximization: Adam on the image, with the field's regularizers."""

    steps: int = 64  # Adam steps per octave
    lr: float = 0.1
    size: int = 224  # the side of the image returned
    jitter: int = 0  # random shift of up to this many pixels each step (reflect-padded)
    scales: tuple[float, ...] = (1.0,)  # a random rescale factor each step (changes the size)
    angles: tuple[float, ...] = (0.0,)  # a random rotation in degrees each step
    tv: float = 0.0  # weight of the total variation (mean |neighbour difference|)
    l2: float = 0.0  # weight of mean((pixels - 0.5)^2)
    normalize_grad: bool = False  # divide each image's gradient by its mean |value|
    param: str = "pixel"  # "pixel" (sigmoid of free logits) or "fourier" (scaled spectrum)
    decorrelate: bool = False  # colours through COLOR_SQRT (RGB models)
    octaves: int = 1  # >1: start at size / octave_scale**(octaves-1), upscale between them
    octave_scale: float = 1.4
    seed: int = 0
    progress: bool = True


MAXIMIZE_PRESETS = {
    "plain": MaximizeSettings(),
    "jitter": MaximizeSettings(
        jitter=4, scales=(0.95, 1.0, 1.05), angles=(-5.0, 0.0, 5.0), tv=0.05, l2=0.05
    ),
    "octaves": MaximizeSettings(
        steps=32, octaves=3, jitter=4, scales=(0.95, 1.0, 1.05), tv=0.05, normalize_grad=True
    ),
    "fourier": MaximizeSettings(
        lr=0.05,
        param="fourier",
        decorrelate=True,
        jitter=4,
        scales=(0.95, 1.0, 1.05),
        angles=(-5.0, 0.0, 5.0),
    ),  # fmt: skip
}


@dataclass(frozen=True)
class DreamSettings:
    """Deep dream: normalised gradient ascent on the image's activation norm, over octaves."""

    steps: int = 10  # steps per octave
    lr: float = 0.01  # step in pixel units ([0, 1]) after the gradient normalisation
    octaves: int = 4
    octave_scale: float = 1.4
    jitter: int = 32  # random roll of up to this many pixels each step
    tv: float = 0.0  # weight of the total variation in the objective
    normalize_grad: bool = True
    seed: int = 0
    progress: bool = True


DREAM_PRESETS = {"classic": DreamSettings(), "quick": DreamSettings(steps=5, octaves=2)}


def preset(table: dict, name: str, **overrides):
    """The named settings of `table` with `overrides` (None values ignored)."""
    if name not in table:
        raise ValueError(f"unknown preset {name!r}: expected one of {tuple(table)}")
    return dataclasses.replace(table[name], **{k: v for k, v in overrides.items() if v is not None})


@dataclass
class Result:
    """An optimized image batch (N, C, H, W) in [0, 1], the objective's trace (steps, N),
    and the (H, W) the model was fed at each step."""

    image: torch.Tensor
    trace: torch.Tensor
    sizes: list[tuple[int, int]] = field(default_factory=list)


def octave_sizes(size: int, octaves: int, scale: float) -> list[int]:
    """Sides from the smallest octave up to `size` itself."""
    return [round(size / scale ** (octaves - 1 - o)) for o in range(octaves)]


def total_variation(img: torch.Tensor) -> torch.Tensor:
    """Per-image mean |difference| of vertical and horizontal neighbours: (N,)."""
    dy = (img[:, :, 1:] - img[:, :, :-1]).abs().flatten(1).mean(1)
    dx = (img[:, :, :, 1:] - img[:, :, :, :-1]).abs().flatten(1).mean(1)
    return dy + dx


def _norm(pixels: torch.Tensor, mean, std) -> torch.Tensor:
    m = torch.tensor(mean, dtype=pixels.dtype, device=pixels.device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=pixels.dtype, device=pixels.device).view(1, -1, 1, 1)
    return (pixels - m) / s


def _choice(values: Sequence[float], gen: torch.Generator) -> float:
    return float(values[int(torch.randint(len(values), (1,), generator=gen))])


def augment(img: torch.Tensor, s: MaximizeSettings, gen: torch.Generator) -> torch.Tensor:
    """Random shift (jitter), then one random scale and rotation; differentiable."""
    n, _, h, w = img.shape
    if s.jitter:
        j = s.jitter
        dy, dx = (int(v) for v in torch.randint(2 * j + 1, (2,), generator=gen))
        img = F.pad(img, (j, j, j, j), mode="reflect")[:, :, dy : dy + h, dx : dx + w]
    f, angle = _choice(s.scales, gen), _choice(s.angles, gen)
    if f == 1.0 and angle == 0.0:
        return img
    a = torch.tensor(angle * torch.pi / 180, dtype=img.dtype)
    rot = torch.stack([torch.stack([a.cos(), -a.sin()]), torch.stack([a.sin(), a.cos()])])
    theta = torch.cat([rot, torch.zeros(2, 1, dtype=img.dtype)], 1).to(img.device)
    size = (n, img.shape[1], max(1, round(h * f)), max(1, round(w * f)))
    grid = F.affine_grid(theta.expand(n, 2, 3), size, align_corners=False)
    return F.grid_sample(img, grid, padding_mode="reflection", align_corners=False)


def _pixel_param(pixels: torch.Tensor):
    """Free logits whose sigmoid is `pixels`, and the map back to pixels."""
    logits = torch.logit(pixels.clamp(1e-4, 1 - 1e-4)).detach().requires_grad_(True)
    return [logits], lambda: torch.sigmoid(logits)


def _fourier_param(shape, s: MaximizeSettings, gen: torch.Generator, dtype, device):
    """A spectrum scaled by 1/frequency (lucid's), optionally decorrelated colours, sigmoid."""
    n, c, h, w = shape
    fy = torch.fft.fftfreq(h, dtype=dtype)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=dtype)[None, :]
    scale = (1.0 / (fy**2 + fx**2).sqrt().clamp(min=1.0 / max(h, w))).to(device)  # (h, w//2+1)
    spec = (0.01 * torch.randn((n, c, h, w // 2 + 1, 2), generator=gen, dtype=dtype)).to(device)
    spec.requires_grad_(True)
    color = (COLOR_SQRT / COLOR_SQRT.norm(dim=0).max()).to(device, dtype)

    def pixels() -> torch.Tensor:
        raw = torch.fft.irfft2(torch.view_as_complex(spec) * scale, s=(h, w), norm="ortho") / 4
        if s.decorrelate:
            raw = torch.einsum("ij,njhw->nihw", color, raw)
        return torch.sigmoid(raw)

    return [spec], pixels


def _setup(model: torch.nn.Module):
    p = next(model.parameters())
    return p.dtype, p.device


def _normalize_grads(params: list[torch.Tensor]) -> None:
    """Each image's gradient divided by its mean |value| (a step size independent of scale)."""
    for p in params:
        g = p.grad.flatten(1)
        p.grad.div_((g.abs().mean(1) + 1e-12).view(-1, *[1] * (p.dim() - 1)))


def _ascent_step(model, layer, channels, s, image, params, opt, gen, sizes, norm) -> torch.Tensor:
    """One Adam step of activation maximization; returns the objective (N,) before it."""
    img = image()
    seen = augment(img, s, gen)
    sizes.append(tuple(seen.shape[-2:]))
    act = capture(model, norm(seen), [layer])[layer]
    obj = objective(act, channels)  # (N,)
    penalty = s.tv * total_variation(img) + s.l2 * (img - 0.5).pow(2).flatten(1).mean(1)
    opt.zero_grad()
    (penalty - obj).sum().backward()
    if s.normalize_grad:
        _normalize_grads(params)
    opt.step()
    return obj.detach().cpu()


def maximize(
    model: torch.nn.Module,
    layer: str,
    channels: Sequence[int],
    s: MaximizeSettings = MaximizeSettings(),
    *,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
) -> Result:
    """One image per channel in `channels` that maximizes its mean activation at `layer`.

    Starts from noise (seeded by `s.seed`); the images are optimized as one batch (image i
    for channel channels[i]; in eval mode they do not interact). Shapes: image (N, C, s.size,
    s.size) with N = len(channels); trace (s.steps * s.octaves, N).
    """
    if s.param not in ("pixel", "fourier"):
        raise ValueError(f"param must be 'pixel' or 'fourier', got {s.param!r}")
    if s.octaves > 1 and s.param != "pixel":
        raise ValueError("octaves need param='pixel' (the image is upscaled between them)")
    if s.decorrelate and len(mean) != 3:
        raise ValueError(f"decorrelate needs an RGB model, this one takes {len(mean)} channels")
    dtype, device = _setup(model)
    gen = torch.Generator().manual_seed(s.seed)
    n, c = len(channels), len(mean)
    sides = octave_sizes(s.size, s.octaves, s.octave_scale)
    pixels = 0.5 + 0.1 * torch.randn((n, c, sides[0], sides[0]), generator=gen, dtype=dtype)
    trace, sizes = [], []
    bar = tqdm(total=s.steps * len(sides), desc=f"maximize {layer}", disable=not s.progress)
    for side in sides:
        if s.param == "fourier":
            params, image = _fourier_param((n, c, side, side), s, gen, dtype, device)
        else:
            start = F.interpolate(pixels, size=(side, side), mode="bilinear", align_corners=False)
            params, image = _pixel_param(start.to(device))
        opt = torch.optim.Adam(params, lr=s.lr)
        for _ in range(s.steps):
            step = (model, layer, channels, s, image, params, opt, gen, sizes)
            trace.append(_ascent_step(*step, lambda img: _norm(img, mean, std)))
            bar.update()
        pixels = image().detach()
    bar.close()
    return Result(pixels.cpu(), torch.stack(trace), sizes)


def dream(
    model: torch.nn.Module,
    pixels: torch.Tensor,
    layers: Sequence[str],
    s: DreamSettings = DreamSettings(),
    *,
    mean: Sequence[float] = (0.0, 0.0, 0.0),
    std: Sequence[float] = (1.0, 1.0, 1.0),
) -> Result:
    """Deep dream: amplify what `layers` see in `pixels` (N, C, H, W in [0, 1]).

    Over `s.octaves` octaves from the smallest up to (H, W): gradient ascent on the mean
    squared activation of every layer (minus `s.tv` x total variation), the image randomly
    rolled by up to `s.jitter` pixels each step, the gradient divided by its mean |value|;
    the detail added at one octave is upscaled into the next. Returns the image at (H, W).
    """
    dtype, device = _setup(model)
    gen = torch.Generator().manual_seed(s.seed)
    base = pixels.to(device, dtype)
    h, w = base.shape[-2:]
    factors = [s.octave_scale ** (s.octaves - 1 - o) for o in range(s.octaves)]
    detail = torch.zeros_like(base[..., :1, :1])
    trace, sizes = [], []
    bar = tqdm(total=s.steps * s.octaves, desc="dream", disable=not s.progress)
    for f in factors:
        size = (max(1, round(h / f)), max(1, round(w / f)))
        octave = F.interpolate(base, size=size, mode="bilinear", align_corners=False)
        up = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
        img = (octave + up).clamp(0, 1)
        for _ in range(s.steps):
            img = img.detach().requires_grad_(True)
            dy, dx = (int(v) for v in torch.randint(-s.jitter, s.jitter + 1, (2,), generator=gen))
            seen = torch.roll(img, (dy, dx), dims=(2, 3))
            sizes.append(tuple(seen.shape[-2:]))
            acts = capture(model, _norm(seen, mean, std), layers)
            obj = sum(objective(acts[name], None) for name in layers)  # (N,)
            (obj - s.tv * total_variation(img)).sum().backward()
            grad = img.grad
            if s.normalize_grad:
                grad = grad / (grad.flatten(1).abs().mean(1).view(-1, 1, 1, 1) + 1e-12)
            img = (img.detach() + s.lr * grad).clamp(0, 1)
            trace.append(obj.detach().cpu())
            bar.update()
        detail = img - octave
    bar.close()
    return Result(img.detach().cpu(), torch.stack(trace), sizes)
