"""The README's probe pictures, generated (`python -m reference.probe.pictures`).

Offline and honest: the LeNet pictures come from a LeNet trained here on scikit-learn's digits
(`reference.probe.digits`), the VGG16 ones from RANDOM weights (no ImageNet weights here), and
each picture says so in its title.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from reference.probe import load, plots, probes
from reference.probe.digits import digits_tensors, write_digits_checkpoint
from reference.probe.optimize import DREAM_PRESETS, MAXIMIZE_PRESETS, dream, maximize, preset

DOCS = Path(__file__).resolve().parent.parent.parent / "docs"
PICTURES = ("probe-lenet-maps.png", "probe-lenet-maximize.png", "probe-vgg16-random-dream.png")


def lenet_pictures(loaded: load.Loaded, docs: Path) -> None:
    """conv1_1 maps of one digit, and one maximization image per conv2_1 channel."""
    x, y = digits_tensors()
    digit = x[[int((y == 3).nonzero()[0])]]  # a 3, (1, 3, 32, 32)
    data = probes.feature_maps(loaded.model, digit, "conv1_1")
    fig = plots.plot_maps(data, digit[0])
    fig.suptitle(f"{fig.get_suptitle()}\nLeNet trained on sklearn digits", fontsize=9)
    plots.save(fig, docs / PICTURES[0])
    channels = list(range(8))
    s = preset(MAXIMIZE_PRESETS, "jitter", steps=96, size=32, progress=False)
    r = maximize(loaded.model, "conv2_1", channels, s, mean=loaded.mean, std=loaded.std)
    titles = [f"conv2_1 ch {c}" for c in channels]
    title = "activation maximization, LeNet trained on sklearn digits (preset 'jitter')"
    plots.save(plots.plot_images(r.image, titles, title), docs / PICTURES[1])


def vgg_dream_picture(docs: Path, size: int = 160) -> None:
    """A quick dream of the sample photo on conv3_1 of a RANDOM-weight VGG16."""
    loaded = load.load_model("vgg16", "random")
    pixels = load.to_pixels(load.image_batch(loaded, load.load_images(["sample"]), size), loaded)
    s = preset(DREAM_PRESETS, "quick", progress=False)
    r = dream(loaded.model, pixels, ["conv3_1"], s, mean=loaded.mean, std=loaded.std)
    title = "deep dream on conv3_1 of VGG16 with RANDOM weights (preset 'quick')"
    fig = plots.plot_images(torch.cat([pixels, r.image]), ["grace_hopper", "dream"], title)
    plots.save(fig, docs / PICTURES[2])


def make_pictures(docs: Path = DOCS) -> list[Path]:
    """Write every README probe picture into `docs`."""
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = write_digits_checkpoint(Path(tmp) / "checkpoint.pt", epochs=6)
        lenet_pictures(load.load_model("lenet", str(checkpoint)), docs)
    vgg_dream_picture(docs)
    return [docs / p for p in PICTURES]


if __name__ == "__main__":
    for path in make_pictures():
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
