"""`scratch probe predict|filters|maps|maximize|dream`: look inside a model, write PNGs.

Each run writes its pictures into one folder (`--out`, default `out/probe/<model>-<action>-<time>`)
with an `index.md` listing them and the settings that made them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from reference.commands import Command
from reference.probe import load, plots, probes
from reference.probe.layers import canonical_names, display_name, resolve
from reference.probe.optimize import DREAM_PRESETS, MAXIMIZE_PRESETS, dream, maximize, preset

ACTIONS = ("predict", "filters", "maps", "maximize", "dream")
DEFAULT_LAYERS = {"filters": "conv1_1", "maps": "conv3_1", "maximize": "conv4_1",
                  "dream": "conv4_3"}  # fmt: skip


@dataclass(frozen=True)
class ProbeSettings:
    action: str = "predict"
    model: str = "vgg16"
    weights: str = "IMAGENET1K_V1"  # or 'random', or a state_dict / checkpoint path
    image: tuple[str, ...] = ("sample",)  # files, folders, or 'sample' (grace_hopper.jpg)
    layer: tuple[str, ...] | None = None  # None: DEFAULT_LAYERS (or the model's convs)
    channel: tuple[int, ...] | None = None  # maps/filters: these channels; maximize: one image each
    in_channel: tuple[int, ...] | None = None  # filters: these input channels
    top: int = 5  # predict: top-k classes; maps: the most active channels shown (0: all)
    scale: str = "shared"  # maps: 'shared' or 'per-map' colour scale
    preset: str | None = None
    steps: int | None = None
    size: int | None = None  # input side (default: the model's, 224 for VGG)
    backend: str = load.REFERENCE
    device: str = "cpu"
    out: str | None = None
    seed: int = 0
    json: bool = False
    quiet: bool = False


def default_layer(model: torch.nn.Module, action: str) -> str:
    """The VGG layer named in DEFAULT_LAYERS, or for other models its first / last conv."""
    if DEFAULT_LAYERS[action] in canonical_names(model):
        return DEFAULT_LAYERS[action]
    convs = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer: pass --layer")
    return convs[0] if action in ("filters", "maps") else convs[-1]


def write_text(path: Path, text: str) -> None:
    """Write `text` atomically (a temp file in the same folder, then os.replace)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _settings_file(out: Path, probe: str, name: str, settings) -> tuple[str, str]:
    """The optimizer's settings as JSON next to the pictures; its index.md row."""
    write_text(out / f"{probe}-settings.json", json.dumps(asdict(settings), indent=1))
    return f"{probe}-settings.json", f"the {probe} settings (preset {name!r} with the options)"


def check_numbers(s: ProbeSettings, loaded: load.Loaded) -> None:
    """The numeric options against the model, before any work: a ValueError naming each."""
    classes = len(loaded.class_names)
    if s.action == "predict" and not 1 <= s.top <= classes:
        raise ValueError(f"--top {s.top}: between 1 and the model's {classes} classes")
    if s.top < 0:
        raise ValueError(f"--top {s.top}: the most active maps shown, >= 0 (0: all)")
    if s.steps is not None and s.steps < 1:
        raise ValueError(f"--steps {s.steps}: at least 1")
    if s.size is None:
        return
    if s.model not in load.VGG and s.size != loaded.crop:
        raise ValueError(f"--size {s.size}: {s.model} takes {loaded.crop}-pixel inputs only")
    if s.model in load.VGG and s.size < 32:  # its five 2x2 max-pools
        raise ValueError(f"--size {s.size}: VGG's five max-pools need at least 32 pixels")


def _fixed_size(s: ProbeSettings, model, layers, changes_size: bool) -> None:
    """A layer after the flatten of a model without adaptive pooling sees only its own input
    size: the rescaling presets would feed it another (a shape error deep in the model)."""
    if s.model in load.VGG or not changes_size:
        return
    modules = dict(model.named_modules())
    for layer in layers:
        if isinstance(modules[resolve(model, layer)], torch.nn.Linear):
            raise ValueError(
                f"--layer {layer} follows {s.model}'s flatten, so the image must keep its size: "
                "--preset plain (no rescaling, no octaves)"
            )


def _predict(s, loaded, model, images, x, out: Path) -> list[tuple[str, str]]:
    rows = probes.predict(model, x, loaded.class_names, s.top)
    files, report = [], {}
    say = (lambda *a: print(*a, file=sys.stderr)) if s.json else print  # stdout: the JSON only
    for (name, _), img, top in zip(images, load.to_pixels(x, loaded), rows):
        say(f"\n{name}:")
        for r in top:
            say(f"  {r['rank']}. {r['name']:<30} {r['probability']:.4f}")
        report[name] = top
        title = f"{name}: {top[0]['name']} ({top[0]['probability']:.2f}) [{loaded.weights[:60]}]"
        files.append(
            (
                plots.save(
                    plots.plot_predictions(img, top, title), out / f"predict-{name}.png"
                ).name,
                f"top-{s.top} of {name}",
            )
        )
    write_text(out / "predictions.json", json.dumps(report, indent=1))
    if s.json:
        print(json.dumps(report, indent=1))
    return [*files, ("predictions.json", "the table as JSON")]


def _filters(s, loaded, model, images, x, out):
    files = []
    for layer in s.layer or (default_layer(model, "filters"),):
        data = probes.filters(model, layer, s.channel, s.in_channel)
        o, i = data["weight"].shape[:2]
        if not data["rgb"] and (o > 8 and s.channel is None or i > 8 and s.in_channel is None):
            print(f"{data['layer']}: showing out/in channels 0-7 (--channel, --in-channel)")
            outs, ins = s.channel or range(min(8, o)), s.in_channel or range(min(8, i))
            data = probes.filters(model, layer, outs, ins)
        path = out / f"{data['layer']}-filters.png"
        files.append((plots.save(plots.plot_filters(data), path).name, f"{data['layer']} weights"))
    return files


def _maps(s, loaded, model, images, x, out):
    files = []
    for layer in s.layer or (default_layer(model, "maps"),):
        for (name, _), xi in zip(images, x):
            data = probes.feature_maps(model, xi[None], layer, s.channel, s.top or None)
            fig = plots.plot_maps(data, load.to_pixels(xi[None], loaded)[0], s.scale == "shared")
            path = plots.save(fig, out / f"{data['layer']}-maps-{name}.png")
            files.append((path.name, f"{len(data['channels'])} channels of {name}"))
    return files


def _maximize(s, loaded, model, images, x, out):
    settings = preset(MAXIMIZE_PRESETS, s.preset or "jitter", steps=s.steps, seed=s.seed,
                      size=s.size or loaded.crop, progress=not s.quiet)  # fmt: skip
    channels = tuple(dict.fromkeys(s.channel or (0, 1, 2, 3)))  # each once: one image each
    layers = s.layer or (default_layer(model, "maximize"),)
    _fixed_size(s, model, layers, settings.octaves > 1 or set(settings.scales) != {1.0})
    modules = dict(model.named_modules())
    for layer in layers:
        width = _channels_of(modules[resolve(model, layer)])
        bad = [c for c in channels if width is not None and not 0 <= c < width]
        if bad:
            raise ValueError(f"--channel {bad} out of range: {layer} has {width} channels")
    files = [_settings_file(out, "maximize", s.preset or "jitter", settings)]
    for layer in layers:
        start = time.perf_counter()
        r = maximize(model, layer, channels, settings, mean=loaded.mean, std=loaded.std)
        per_step = (time.perf_counter() - start) / len(r.trace)
        name = display_name(model, layer)
        print(f"{name}: {per_step:.3f} s per step ({s.backend}), final objective "
              f"{[round(v, 3) for v in r.trace[-1].tolist()]}")  # fmt: skip
        for c, img, final in zip(channels, r.image, r.trace[-1]):
            fig = plots.plot_images(img[None], [f"{name} ch {c}: {final:.3g}"], loaded.weights[:70])
            files.append((plots.save(fig, out / f"{name}-ch{c}-maximize.png").name, f"channel {c}"))
        fig = plots.plot_trace(r.trace, [f"ch {c}" for c in channels])
        files.append((plots.save(fig, out / f"{name}-maximize-trace.png").name, "objective"))
    return files


def _dream(s, loaded, model, images, x, out):
    settings = preset(DREAM_PRESETS, s.preset or "classic", steps=s.steps, seed=s.seed,
                      progress=not s.quiet)  # fmt: skip
    layers = s.layer or (default_layer(model, "dream"),)
    _fixed_size(s, model, layers, settings.octaves > 1)
    tag = "+".join(display_name(model, layer) for layer in layers)
    files = [_settings_file(out, "dream", s.preset or "classic", settings)]
    for (name, _), xi in zip(images, x):
        pixels = load.to_pixels(xi[None], loaded)
        r = dream(model, pixels, layers, settings, mean=loaded.mean, std=loaded.std)
        fig = plots.plot_images(torch.cat([pixels.cpu(), r.image]), [name, f"dream {tag}"],
                                loaded.weights[:70])  # fmt: skip
        files.append((plots.save(fig, out / f"dream-{name}-{tag}.png").name, f"{name} dreamed"))
    return files


def _channels_of(module: torch.nn.Module) -> int | None:
    """How many channels (or units) a layer gives out, where it says (conv, linear, BN)."""
    for attr in ("out_channels", "out_features", "num_features"):
        if hasattr(module, attr):
            return getattr(module, attr)
    return None


RUNS = {"predict": _predict, "filters": _filters, "maps": _maps, "maximize": _maximize,
        "dream": _dream}  # fmt: skip


def run(s: ProbeSettings) -> int:
    try:
        loaded = load.load_model(s.model, s.weights)
        check_numbers(s, loaded)
        device = load.device_of(s.device)
        model = load.with_backend(loaded, s.backend).to(device)
        images = load.load_images(s.image, loaded.in_channels)
        x = load.image_batch(loaded, images, s.size).to(device)
        loud = "WARNING: " if loaded.random else ""
        say = (lambda text: print(text, file=sys.stderr)) if s.json else print  # --json: stdout
        say(f"{loud}{s.model}: {loaded.weights}; backend {s.backend}, device {device}")
        if s.backend == "numpy" and device.type == "cuda":
            say("note: the numpy backend round-trips every layer through the CPU")
        out = Path(s.out or f"out/probe/{s.model}-{s.action}-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ValueError(f"--out {out}: it, or a folder above it, is a file") from None
        files = RUNS[s.action](s, loaded, model, images, x, out)
    except (load.WeightsError, ValueError, IndexError, FileNotFoundError) as e:
        raise SystemExit(f"scratch probe {s.action}: {e}") from None
    lines = [f"# scratch probe {s.action}", "", f"- model: {s.model}, {loaded.weights}"]
    lines += [f"- backend: {s.backend}, device: {device}", "", "| file | shows |", "|---|---|"]
    lines += [f"| [{f}]({f}) | {what} |" for f, what in files]
    lines += ["", "Settings:", "", "```json", json.dumps(asdict(s), indent=1), "```", ""]
    write_text(out / "index.md", "\n".join(lines))
    say(f"wrote {len(files)} files and index.md to {out}")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = ProbeSettings()
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("--model", choices=load.model_names(), default=d.model)
    p.add_argument("--weights", default=d.weights, help="IMAGENET1K_V1 (VGG), random, or a PATH")
    p.add_argument("--image", nargs="+", default=list(d.image), help="files, folders or 'sample'")
    p.add_argument("--layer", nargs="+", help="conv3_1 or features.10 (default per probe)")
    p.add_argument("--channel", nargs="+", type=int, help="channels (maximize: one image each)")
    p.add_argument("--in-channel", nargs="+", type=int, help="filters: these input channels")
    p.add_argument("--top", type=int, default=d.top, help="top-k classes / most active maps")
    p.add_argument("--scale", choices=("shared", "per-map"), default=d.scale)
    presets = (*MAXIMIZE_PRESETS, *DREAM_PRESETS)
    p.add_argument("--preset", choices=presets, help="maximize: jitter; dream: classic")
    p.add_argument("--steps", type=int, help="optimization steps (per octave)")
    p.add_argument("--size", type=int, help="input side in pixels (default: the model's)")
    p.add_argument("--backend", choices=load.BACKEND_CHOICES, default=d.backend)
    p.add_argument("--device", default=d.device, help="cpu, cuda, cuda:1, ...")
    p.add_argument("--out", help="output folder")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--json", action="store_true", help="predict: print the table as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


COMMAND = Command("probe", "look inside a model: predictions, filters, maps, maximization, dream",
                  ProbeSettings, add_arguments, run)  # fmt: skip
