"""Models to probe, their weights, their preprocessing and its inverse, and the images.

`load_model("vgg16", "IMAGENET1K_V1")` uses torchvision's weights enum (its cached file is
loaded here with `weights_only=True`, torchvision itself would use `weights_only=False`);
`load_model("vgg16", "path/to/state_dict.pt")` a local state_dict; `load_model(name, "random")`
fresh weights; `load_model("lenet", "runs/.../checkpoint.pt")` a `scratch train` checkpoint.
"""

from __future__ import annotations

import copy
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from PIL import Image
from torchvision.transforms._presets import ImageClassification

import scratch
from reference import models
from reference.train.runfolder import read_torch_file

VGG = ("vgg16", "vgg16_bn")
REFERENCE = "torch.nn"  # the stock model; the other backends are scratch's
BACKEND_CHOICES = (REFERENCE, *scratch.BACKENDS)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class WeightsError(RuntimeError):
    """The weights asked for cannot be loaded (no download, wrong file, wrong architecture)."""


@dataclass
class Loaded:
    """A model ready to probe (eval mode) and everything needed to feed and read it."""

    model: torch.nn.Module
    name: str  # "vgg16", "lenet", ...
    weights: str  # what was loaded, in words
    random: bool  # True: random weights, the pictures mean nothing
    class_names: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop: int  # the side of the square input the model is fed
    resize: int  # the shorter side an image is resized to before the centre crop
    in_channels: int = 3


def model_names() -> tuple[str, ...]:
    """Every model `load_model` can build."""
    return tuple(dict.fromkeys((*VGG, *models.MODELS)))


def weights_enum(name: str) -> torchvision.models.WeightsEnum:
    """torchvision's IMAGENET1K_V1 entry for 'vgg16' / 'vgg16_bn'."""
    return torchvision.models.get_model_weights(name).IMAGENET1K_V1


def cached_path(name: str) -> Path:
    """Where torchvision caches the ImageNet weights of `name` (under TORCH_HOME)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights_enum(name).url).name


def _download(url: str, dst: Path) -> None:
    """torchvision's download (tests replace this function: they never reach the network)."""
    torch.hub.download_url_to_file(url, str(dst), progress=True)


def imagenet_state_dict(name: str) -> dict:
    """The ImageNet state_dict of `name`: the cached file, downloaded first if it is missing."""
    path = cached_path(name)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            _download(weights_enum(name).url, path)
        except (urllib.error.URLError, OSError) as e:
            raise WeightsError(
                f"cannot download the ImageNet weights of {name} ({e}). Without internet: copy "
                f"{path.name} (from {weights_enum(name).url}) into {path.parent}/ "
                f"(torch.hub.get_dir()/checkpoints/, under TORCH_HOME), or pass --weights PATH "
                "to a saved state_dict, or --weights random"
            ) from None
    return _read(path, "cached ImageNet weights file (delete it to download it again)")


def _read(path: Path, what: str):
    """The file's contents (weights_only); one that cannot be read is a WeightsError."""
    try:
        return read_torch_file(path, what)
    except ValueError as e:
        raise WeightsError(str(e)) from None


def load_state_dict(model: torch.nn.Module, state: dict, source: str, assign: bool = False) -> None:
    """`model.load_state_dict(state)`, or an error naming the keys that do not fit.

    `assign`: the state's tensors become the parameters (for a model built on the meta device).
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        raise WeightsError(
            f"{source} is not a {type(model).__name__} state_dict: missing keys {missing[:6]}, "
            f"unexpected keys {unexpected[:6]}, mismatched shapes (file vs model) {shapes[:6]}"
        )
    # a half- or double-precision file: the model computes in its own (float32) dtype
    state = {k: v.to(expected[k].dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, assign=assign)
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise WeightsError(f"{source} leaves some of {type(model).__name__}'s tensors unset")


def _from_checkpoint(name: str, path: Path, checkpoint: dict) -> Loaded:
    """A `scratch train` checkpoint: {"model": state_dict, "config": plain run settings}."""
    config = checkpoint["config"]
    if config.get("model") != name:
        raise WeightsError(f"{path} holds a {config.get('model')!r} model, not {name!r}")
    if hasattr(models, "from_checkpoint"):
        model, config = models.from_checkpoint(path)
    else:  # before reference.models.from_checkpoint exists: the same contract by hand
        model = models.build(name, config["num_classes"])
        load_state_dict(model, checkpoint["model"], str(path))
    channels = config.get("in_channels", 3)
    side = int(config.get("image_size", models.input_size(name)[1:])[0])
    return Loaded(
        model.eval(), name, f"checkpoint {path} ({config.get('dataset', '?')})", False,
        list(config.get("class_names") or range(config["num_classes"])),
        tuple(config.get("mean", (0.0,) * channels)), tuple(config.get("std", (1.0,) * channels)),
        side, side, channels,
    )  # fmt: skip


def _state(name: str, weights: str) -> tuple[dict | None, str, Path | None]:
    """(state_dict or checkpoint, where it came from, its file) for `weights`; None: random."""
    if weights == "random":
        return None, "RANDOM weights (seed 0): its pictures mean nothing", None
    if weights == "IMAGENET1K_V1":
        if name not in VGG:
            raise WeightsError(
                f"{name} has no torchvision weights: pass --weights PATH to a `scratch train` "
                "checkpoint (or a state_dict), or --weights random"
            )
        state = imagenet_state_dict(name)
        return state, f"ImageNet weights {name.upper()}_Weights.IMAGENET1K_V1", cached_path(name)
    path = Path(weights)
    if not path.is_file():
        raise WeightsError(
            f"--weights {weights!r}: no such file (expected IMAGENET1K_V1, random or a file)"
        )
    state = _read(path, "state_dict")
    if not isinstance(state, dict) or not all(
        isinstance(v, torch.Tensor) for v in state.get("model", state).values()
    ):
        raise WeightsError(
            f"--weights {path}: holds a {type(state).__name__}, not a state_dict (a dict of "
            "tensors) or a `scratch train` checkpoint"
        )
    return state, f"state_dict {path}", path


def load_model(name: str, weights: str = "IMAGENET1K_V1") -> Loaded:
    """The model `name` with `weights`: 'IMAGENET1K_V1' (VGG only), 'random', or a file path."""
    if name not in model_names():
        raise ValueError(f"unknown model {name!r}: expected one of {model_names()}")
    state, how, path = _state(name, weights)
    if isinstance(state, dict) and {"model", "config"} <= state.keys():
        return _from_checkpoint(name, path, state)
    if state is None:
        with torch.random.fork_rng(devices=[]):  # 'random' weights are the same every run
            torch.manual_seed(0)
            model = models.build(name)
    else:
        with torch.device("meta"):  # no time spent on an initialisation that is overwritten
            model = models.build(name)
        load_state_dict(model, state, str(path), assign=True)
    if name not in VGG:
        side = models.input_size(name)[1]
        return Loaded(model.eval(), name, how, state is None, [str(i) for i in range(10)],
                      (0.0,) * 3, (1.0,) * 3, side, side)  # fmt: skip
    categories = list(weights_enum(name).meta["categories"])  # offline: part of torchvision
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    return Loaded(model.eval(), name, how, state is None, categories, mean, std, 224, 256)


def with_backend(loaded: Loaded, backend: str) -> torch.nn.Module:
    """The stock model for 'torch.nn', else a deep copy with scratch twins swapped in."""
    if backend not in BACKEND_CHOICES:
        raise ValueError(f"unknown backend {backend!r}: expected one of {BACKEND_CHOICES}")
    if backend == REFERENCE:
        return loaded.model
    twin = copy.deepcopy(loaded.model)
    scratch.swap(twin, backend=backend)
    return twin


def device_of(name: str) -> torch.device:
    """`torch.device(name)`, or a clear error when that device is not one to draw with here."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r}: not a device (cpu, cuda, cuda:1, mps)") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available()}
    available["mps"] = torch.backends.mps.is_available()
    if device.type == "meta":
        raise ValueError(f"--device {name}: meta tensors have no values to draw (use cpu)")
    if not available.get(device.type, False):
        label = {"cuda": "CUDA", "mps": "MPS"}.get(device.type, device.type)
        raise ValueError(f"--device {name}: {label} is not available on this machine (use cpu)")
    return device


def transform(loaded: Loaded, size: int | None = None) -> ImageClassification:
    """The weights' own preprocessing (resize, centre crop, [0, 1], normalise) at `size`."""
    crop = size or loaded.crop
    resize = round(crop * loaded.resize / loaded.crop)  # ImageNet: 256 for a 224 crop
    return ImageClassification(crop_size=crop, resize_size=resize, mean=loaded.mean, std=loaded.std)


def normalize(pixels: torch.Tensor, loaded: Loaded) -> torch.Tensor:
    """Pixels in [0, 1], shape (N, C, H, W) -> the model's input (x - mean) / std."""
    mean = torch.tensor(loaded.mean, dtype=pixels.dtype, device=pixels.device).view(1, -1, 1, 1)
    std = torch.tensor(loaded.std, dtype=pixels.dtype, device=pixels.device).view(1, -1, 1, 1)
    return (pixels - mean) / std


def to_pixels(x: torch.Tensor, loaded: Loaded) -> torch.Tensor:
    """The inverse of `normalize` for display: the model's input -> pixels in [0, 1]."""
    mean = torch.tensor(loaded.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(loaded.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x * std + mean).clamp(0, 1)


def sample_image_path() -> Path:
    """matplotlib's bundled photo of Grace Hopper (offline)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def load_images(
    specs: tuple[str, ...] | list[str], channels: int = 3
) -> list[tuple[str, Image.Image]]:
    """(name, PIL image) for each spec: 'sample', an image file, or a folder of images."""
    paths: list[Path] = []
    for spec in specs:
        path = sample_image_path() if spec == "sample" else Path(spec)
        if path.is_dir():
            paths += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            paths.append(path)
        else:
            raise FileNotFoundError(f"--image {spec!r}: no such file or folder")
    if not paths:
        raise FileNotFoundError(f"--image {list(specs)}: no images found")
    mode = "L" if channels == 1 else "RGB"
    images, names = [], set()
    for p in paths:
        try:
            image = Image.open(p).convert(mode)
        except (OSError, ValueError) as e:  # PIL's UnidentifiedImageError is an OSError
            raise ValueError(f"--image {p}: not an image PIL can read ({e})") from None
        name, k = p.stem, 2
        while name in names:  # two files of one stem (a/x.jpg, b/x.png): both pictures kept
            name, k = f"{p.stem}-{k}", k + 1
        names.add(name)
        images.append((name, image))
    return images


def image_batch(loaded: Loaded, images: list[tuple[str, Image.Image]], size=None) -> torch.Tensor:
    """The images preprocessed and stacked: (N, C, size, size), normalised."""
    t = transform(loaded, size)
    return torch.stack([t(img) for _, img in images])
