"""`scratch probe`: every probe runs offline, writes its pictures and an index.md."""

import json

import pytest
import torch
from PIL import Image
from probe_fixtures import digits_checkpoint, random_vgg  # noqa: F401

from reference.cli import main
from reference.probe.digits import digits_tensors
from reference.probe.pictures import DOCS, PICTURES


@pytest.fixture(scope="module")
def digit_images(tmp_path_factory):
    """A folder with two digit images (a 3 and a 7) as 32x32 PNGs."""
    folder = tmp_path_factory.mktemp("digits-png")
    x, y = digits_tensors()
    for d in (3, 7):
        pixels = x[int((y == d).nonzero()[0])].permute(1, 2, 0).mul(255).round().byte().numpy()
        Image.fromarray(pixels).save(folder / f"digit{d}.png")
    return folder


def probe(*args) -> int:
    return main(["probe", *args, "--quiet"])


@pytest.mark.parametrize("backend", ["torch.nn", "numpy"])
def test_every_probe_on_the_digits_checkpoint(digits_checkpoint, digit_images, tmp_path, backend):  # noqa: F811
    common = ["--model", "lenet", "--weights", str(digits_checkpoint), "--backend", backend,
              "--image", str(digit_images)]  # fmt: skip
    runs = {
        "predict": ([], ["predict-digit3.png", "predict-digit7.png", "predictions.json"]),
        "filters": (["--layer", "conv2_1", "--channel", "0", "1"], ["conv2_1-filters.png"]),
        "maps": (["--layer", "relu1_1"], ["relu1_1-maps-digit3.png", "relu1_1-maps-digit7.png"]),
        "maximize": (["--layer", "conv2_1", "--channel", "12", "--steps", "4"],
                     ["conv2_1-ch12-maximize.png", "conv2_1-maximize-trace.png",
                      "maximize-settings.json"]),
        "dream": (["--layer", "conv2_1", "--steps", "2", "--preset", "quick"],
                  ["dream-digit3-conv2_1.png", "dream-digit7-conv2_1.png", "dream-settings.json"]),
    }  # fmt: skip
    for action, (extra, files) in runs.items():
        out = tmp_path / action
        assert probe(action, *common, *extra, "--out", str(out)) == 0
        for name in files:
            assert (out / name).stat().st_size > 0, name
            assert name in (out / "index.md").read_text()
    settings = json.loads((tmp_path / "maximize" / "maximize-settings.json").read_text())
    assert settings["steps"] == 4 and settings["jitter"] == 4  # preset 'jitter', --steps 4
    table = json.loads((tmp_path / "predict" / "predictions.json").read_text())
    assert [table[f"digit{d}"][0]["name"] for d in (3, 7)] == ["3", "7"]


def test_vgg16_filters_with_random_weights_say_so(tmp_path, capsys, monkeypatch):
    import reference.probe.load as load

    build, vgg = load.load_model, random_vgg()  # built before the patch
    monkeypatch.setattr(load, "load_model", lambda m, w: vgg if w == "random" else build(m, w))
    assert probe("filters", "--weights", "random", "--out", str(tmp_path)) == 0
    assert "WARNING: vgg16: RANDOM weights" in capsys.readouterr().out
    assert (tmp_path / "conv1_1-filters.png").exists()
    assert "RANDOM" in (tmp_path / "index.md").read_text()
    assert (
        probe("filters", "--weights", "random", "--layer", "conv2_1", "--out", str(tmp_path)) == 0
    )
    assert "conv2_1: showing out/in channels 0-7" in capsys.readouterr().out
    assert (tmp_path / "conv2_1-filters.png").exists()


def test_vgg16_state_dict_path(tmp_path, monkeypatch):
    """--weights PATH for VGG16: a state_dict saved to a file is what gets probed."""
    import reference.probe.load as load

    state = dict(random_vgg().model.state_dict())
    state["features.0.weight"] = torch.zeros_like(state["features.0.weight"])
    torch.save(state, tmp_path / "vgg16.pt")
    loaded = load.load_model("vgg16", str(tmp_path / "vgg16.pt"))
    assert not loaded.random and torch.equal(
        loaded.model.features[0].weight, torch.zeros(64, 3, 3, 3)
    )


def test_bad_choices_are_clear(digits_checkpoint, capsys, monkeypatch):  # noqa: F811
    lenet = ["--model", "lenet", "--weights", str(digits_checkpoint)]
    with pytest.raises(SystemExit, match=r"unknown layer 'conv9_9'.*conv2_1 \(features.3\)"):
        probe("maps", *lenet, "--layer", "conv9_9")
    with pytest.raises(SystemExit, match="lenet has no torchvision weights"):
        probe("filters", "--model", "lenet")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="CUDA is not available"):
        probe("filters", *lenet, "--device", "cuda")
    with pytest.raises(SystemExit) as e:
        probe("filters", *lenet, "--backend", "jax")
    assert e.value.code == 2 and "invalid choice: 'jax'" in capsys.readouterr().err


def test_readme_pictures_exist_and_are_small():
    for name in PICTURES:
        path = DOCS / name
        assert path.exists(), f"run `python -m reference.probe.pictures` ({name})"
        assert 0 < path.stat().st_size < 300_000
        assert f"docs/{name}" in (DOCS.parent / "README.md").read_text()


def test_a_model_without_convs_needs_a_layer():
    from reference.probe.cli import default_layer

    with pytest.raises(ValueError, match="Sequential has no Conv2d layer: pass --layer"):
        default_layer(torch.nn.Sequential(torch.nn.Linear(2, 2)), "maps")
