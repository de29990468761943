"""`scratch probe` on what users get wrong: bad weight files, images, folders, devices and
numbers are one line (exit status 1 through SystemExit's message), before any work; odd but
valid files (half precision, two images of one name, three input channels of a deep layer)
give the right pictures."""

import json

import pytest
import torch
from PIL import Image
from probe_fixtures import digits_checkpoint  # noqa: F401

from reference.cli import main
from reference.probe import load, probes


def probe(*args) -> int:
    return main(["probe", *map(str, args), "--quiet"])


def _lenet(checkpoint) -> list[str]:
    return ["--model", "lenet", "--weights", str(checkpoint)]


def _refused(*args) -> str:
    with pytest.raises(SystemExit) as e:
        probe(*args)
    message = str(e.value.code)
    assert message.startswith("scratch probe ") and "Traceback" not in message
    return message


def test_weight_files_that_are_not_state_dicts_are_one_line(tmp_path, digits_checkpoint):  # noqa: F811
    files = {
        "cut.pt": digits_checkpoint.read_bytes()[:500],
        "garbage.pt": b"garbage",
        "empty.pt": b"",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        assert "is not a readable state_dict" in _refused("predict", *_lenet(tmp_path / name))
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    assert "holds a Tensor, not a state_dict" in _refused(
        "predict", *_lenet(tmp_path / "tensor.pt")
    )
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    said = _refused("predict", *_lenet(tmp_path / "module.pt"))
    assert "a pickled model?" in said and "weights_only=False" not in said
    assert "no such file" in _refused("predict", *_lenet(tmp_path / "missing.pt"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.float64], ids=str)
def test_a_half_or_double_state_dict_runs_in_float32(tmp_path, digits_checkpoint, dtype):  # noqa: F811
    state = torch.load(digits_checkpoint, weights_only=True)["model"]
    path = tmp_path / "weights.pt"
    torch.save({k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}, path)
    loaded = load.load_model("lenet", str(path))
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    assert probe("predict", *_lenet(path), "--out", tmp_path / "out") == 0


def test_images_folders_and_devices_are_one_line(tmp_path, digits_checkpoint):  # noqa: F811
    lenet = _lenet(digits_checkpoint)
    (tmp_path / "fake.jpg").write_text("not an image")
    assert "not an image PIL can read" in _refused(
        "predict", *lenet, "--image", tmp_path / "fake.jpg"
    )
    (tmp_path / "afile").write_text("")
    for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        assert "is a file" in _refused("predict", *lenet, "--out", out)
    assert "not a device" in _refused("predict", *lenet, "--device", "gpu")
    assert "meta tensors have no values" in _refused("predict", *lenet, "--device", "meta")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["predict", "--top", "0"], "--top 0: between 1 and the model's 10 classes"),
        (["predict", "--top", "11"], "--top 11: between 1"),
        (["maps", "--top", "-3"], "--top -3: the most active maps shown, >= 0"),
        (["maximize", "--steps", "0"], "--steps 0: at least 1"),
        (["dream", "--steps", "-2"], "--steps -2: at least 1"),
        (["predict", "--size", "16"], "--size 16: lenet takes 32-pixel inputs only"),
        (["maximize", "--channel", "-1"], "--channel [-1] out of range"),
        (["maximize", "--layer", "conv2_1", "--channel", "16"], "conv2_1 has 16 channels"),
        (["maximize", "--layer", "fc5"], "follows lenet's flatten"),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, list) else None,
)
def test_numbers_are_checked_before_any_work(tmp_path, digits_checkpoint, args, said):  # noqa: F811
    action, *rest = args
    out = tmp_path / "out"
    assert said in _refused(action, *_lenet(digits_checkpoint), *rest, "--out", out)


def test_fc_layers_maximize_with_the_plain_preset(tmp_path, digits_checkpoint):  # noqa: F811
    args = ["--layer", "fc5", "--channel", "0", "1", "--preset", "plain", "--steps", "2"]
    assert probe("maximize", *_lenet(digits_checkpoint), *args, "--out", tmp_path) == 0
    assert (tmp_path / "fc5-ch1-maximize.png").is_file()


def test_same_named_images_and_repeated_channels(tmp_path, digits_checkpoint):  # noqa: F811
    """Two images of one name each keep their picture; a channel given twice is drawn once."""
    for folder, colour in (("a", 0), ("b", 255)):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (32, 32), (colour,) * 3).save(tmp_path / folder / "same.png")
    out = tmp_path / "out"
    images = ["--image", tmp_path / "a", tmp_path / "b"]
    assert probe("predict", *_lenet(digits_checkpoint), *images, "--out", out) == 0
    assert sorted(json.loads((out / "predictions.json").read_text())) == ["same", "same-2"]
    args = ["--channel", "3", "3", "--steps", "1", "--preset", "plain", "--out", out / "max"]
    assert probe("maximize", *_lenet(digits_checkpoint), "--layer", "conv2_1", *args) == 0
    index = (out / "max" / "index.md").read_text()
    assert index.count("conv2_1-ch3-maximize.png") == 2  # one row: [name](name)


def test_predict_json_alone_on_stdout(tmp_path, digits_checkpoint, capsys):  # noqa: F811
    assert probe("predict", *_lenet(digits_checkpoint), "--json", "--out", tmp_path) == 0
    out = capsys.readouterr().out
    assert list(json.loads(out)) == ["grace_hopper"]


def test_three_input_channels_of_a_deep_layer_are_no_colour_filters(digits_checkpoint):  # noqa: F811
    model = load.load_model("lenet", str(digits_checkpoint)).model
    deep = probes.filters(model, "conv2_1", [0, 1], [0, 1, 2])
    assert deep["weight"].shape[1] == 3 and not deep["rgb"]


def test_size_rules_are_the_models(tmp_path, digits_checkpoint):  # noqa: F811
    """VGG takes any side from 32 (its five max-pools); a fixed-size model only its own."""
    said = _refused("predict", "--weights", "random", "--size", "16", "--out", tmp_path)
    assert "--size 16: VGG's five max-pools need at least 32 pixels" in said
    assert probe("predict", *_lenet(digits_checkpoint), "--size", "32", "--out", tmp_path) == 0
