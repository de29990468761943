"""The probes that return data: weights and preprocessing, layer names, hooks, filters, maps."""

import urllib.error

import numpy as np
import pytest
import torch
import torchvision
from probe_fixtures import digits_checkpoint, digits_lenet, random_vgg  # noqa: F401

from reference import models
from reference.probe import load, probes
from reference.probe.layers import canonical_names, capture, resolve

# Positions in torchvision's VGG16 / VGG16-BN, read off the architecture (13 convs, 5 pools).
VGG16_NAMES = {
    "conv1_1": "features.0", "relu1_1": "features.1", "conv1_2": "features.2",
    "pool1": "features.4", "conv2_1": "features.5", "conv3_1": "features.10",
    "conv4_3": "features.21", "conv5_2": "features.26", "conv5_3": "features.28",
    "relu5_3": "features.29",
    "pool5": "features.30", "fc6": "classifier.0", "relu6": "classifier.1",
    "drop6": "classifier.2", "fc7": "classifier.3", "fc8": "classifier.6",
}  # fmt: skip
VGG16_BN_NAMES = {
    "conv1_1": "features.0", "bn1_1": "features.1", "relu1_1": "features.2",
    "pool1": "features.6", "conv5_3": "features.40", "fc8": "classifier.6",
}  # fmt: skip


def test_layer_names_both_ways():
    names = canonical_names(random_vgg().model)
    assert {k: names[k] for k in VGG16_NAMES} == VGG16_NAMES
    assert len([k for k in names if k.startswith("conv")]) == 13
    with torch.device("meta"):  # the structure is all that names need
        bn = canonical_names(torchvision.models.vgg16_bn())
    assert {k: bn[k] for k in VGG16_BN_NAMES} == VGG16_BN_NAMES
    model = random_vgg().model
    assert resolve(model, "conv3_1") == resolve(model, "features.10") == "features.10"


def test_unknown_layer_lists_valid_names():
    with pytest.raises(ValueError, match=r"'conv6_1'.*conv5_3 \(features\.28\).*fc8"):
        resolve(random_vgg().model, "conv6_1")


def test_hooks_equal_hand_sliced_activations_inplace_relu_included(gen):
    model = random_vgg().model
    x = torch.randn(2, 3, 32, 32, generator=gen)
    got = capture(model, x, ["conv1_1", "relu1_1", "conv3_1", "pool5", "fc6"])
    with torch.no_grad():
        by_hand = {
            "conv1_1": model.features[:1](x),  # followed by ReLU(inplace=True) in the model
            "relu1_1": model.features[:2](x),
            "conv3_1": model.features[:11](x),
            "pool5": model.features(x),
            "fc6": model.classifier[0](torch.flatten(model.avgpool(model.features(x)), 1)),
        }
    assert (by_hand["conv1_1"] < 0).any()  # the in-place ReLU would have zeroed these
    for name, expected in by_hand.items():
        torch.testing.assert_close(got[name], expected, rtol=0, atol=0, msg=name)


def test_an_unclonned_hook_would_be_overwritten(gen):
    """Why capture clones: a plain hook's tensor is changed by the in-place ReLU after it."""
    model, seen = random_vgg().model, {}
    handle = model.features[0].register_forward_hook(lambda m, a, out: seen.update(out=out))
    with torch.no_grad():
        model.features[:2](torch.randn(1, 3, 16, 16, generator=gen))
    handle.remove()
    assert (seen["out"] >= 0).all()


def test_hooks_on_a_resnet(gen):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.randn(1, 3, 64, 64, generator=gen)
    got = capture(model, x, ["layer1.0.bn1", "layer2", "fc"])
    with torch.no_grad():
        stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        bn1 = model.layer1[0].bn1(model.layer1[0].conv1(stem))  # an in-place ReLU follows
        layer2 = model.layer2(model.layer1(stem))
        fc = model.fc(torch.flatten(model.avgpool(model.layer4(model.layer3(layer2))), 1))
    assert (bn1 < 0).any()
    for name, expected in {"layer1.0.bn1": bn1, "layer2": layer2, "fc": fc}.items():
        torch.testing.assert_close(got[name], expected, rtol=0, atol=0, msg=name)
    with pytest.raises(ValueError, match="layer4.1.conv2"):
        resolve(model, "conv1_1")


def test_filter_mosaic_tile_is_the_state_dict_weight():
    model = random_vgg().model
    mosaic = probes.filter_mosaic(probes.filters(model, "conv1_1")["weight"])
    assert mosaic.shape == (8 * 4 - 1, 8 * 4 - 1, 3)
    for o in (0, 13, 63):
        w = model.state_dict()["features.0.weight"][o].double()  # (3, 3, 3)
        expected = ((w - w.min()) / (w.max() - w.min())).permute(1, 2, 0).numpy()
        r, c = divmod(o, 8)
        np.testing.assert_allclose(mosaic[4 * r : 4 * r + 3, 4 * c : 4 * c + 3], expected)
    data = probes.filters(model, "features.2", out_channels=[5, 1], in_channels=[0, 7])
    torch.testing.assert_close(data["weight"], model.features[2].weight.detach()[[5, 1]][:, [0, 7]])


def test_filters_bad_layer_and_channels():
    model = random_vgg().model
    with pytest.raises(ValueError, match="ReLU, not a Conv2d"):
        probes.filters(model, "relu1_1")
    with pytest.raises(IndexError, match=r"out channels \[64\] out of range: the layer has 64"):
        probes.filters(model, "conv1_1", out_channels=[64])


def test_feature_maps_top_channels(gen):
    model = random_vgg().model
    x = torch.randn(1, 3, 32, 32, generator=gen)
    data = probes.feature_maps(model, x, "relu2_1", top=5)
    with torch.no_grad():
        act = model.features[:7](x)[0]
    means = act.mean(dim=(1, 2))
    assert data["channels"] == means.argsort(descending=True)[:5].tolist()
    torch.testing.assert_close(data["maps"], act[data["channels"]], rtol=0, atol=0)
    with pytest.raises(ValueError, match="not \\(C, H, W\\) maps"):
        probes.feature_maps(model, x, "fc6")


def test_preprocessing_is_the_weights_own_and_inverts():
    loaded = random_vgg()
    image = load.load_images(["sample"])[0][1]
    ours = load.transform(loaded)(image)
    theirs = torchvision.models.VGG16_Weights.IMAGENET1K_V1.transforms()(image)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    pixels = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(load.to_pixels(load.normalize(pixels, loaded), loaded), pixels)
    assert loaded.class_names[652] == "military uniform" and len(loaded.class_names) == 1000


def test_random_weights_are_said_and_fixed():
    assert random_vgg().random and "RANDOM" in random_vgg().weights
    again = load.load_model("lenet", "random").model.state_dict()
    for k, v in load.load_model("lenet", "random").model.state_dict().items():
        assert torch.equal(v, again[k]), k


def test_no_download_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, dst):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(load, "_download", offline)
    with pytest.raises(load.WeightsError) as e:
        load.load_model("vgg16", "IMAGENET1K_V1")
    for words in ("vgg16-397923af.pth", str(tmp_path / "hub" / "checkpoints"), "--weights PATH"):
        assert words in str(e.value)


def test_cached_imagenet_file_is_loaded_weights_only(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    saved = {"w": torch.arange(3.0)}
    monkeypatch.setattr(load, "_download", lambda url, dst: torch.save(saved, dst))
    assert load.cached_path("vgg16").name == "vgg16-397923af.pth"
    torch.testing.assert_close(load.imagenet_state_dict("vgg16"), saved)  # "downloaded"
    monkeypatch.setattr(load, "_download", None)  # now cached: no download at all
    torch.testing.assert_close(load.imagenet_state_dict("vgg16"), saved)


def test_weights_path_loads_and_wrong_architecture_names_keys(tmp_path):
    torch.manual_seed(3)
    lenet = models.build("lenet")
    torch.save(lenet.state_dict(), tmp_path / "lenet.pt")
    loaded = load.load_model("lenet", str(tmp_path / "lenet.pt"))
    for k, v in lenet.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v), k
    with pytest.raises(
        load.WeightsError,
        match=r"missing keys \['features.2.weight'.*unexpected keys \['features.3.weight'",
    ):
        load.load_model("vgg16", str(tmp_path / "lenet.pt"))
    with pytest.raises(load.WeightsError, match="expected IMAGENET1K_V1, random or a file"):
        load.load_model("vgg16", str(tmp_path / "nothing.pt"))


def test_digits_checkpoint_loads_and_predicts(digits_checkpoint, digits_lenet):  # noqa: F811
    from reference.probe.digits import digits_tensors

    assert digits_lenet.class_names == [str(i) for i in range(10)] and not digits_lenet.random
    x, y = digits_tensors()
    rows = probes.predict(digits_lenet.model, x[:200], digits_lenet.class_names, k=3)
    top1 = torch.tensor([int(r[0]["name"]) for r in rows])
    assert (top1 == y[:200]).double().mean() > 0.9
    assert all(r[0]["probability"] >= r[1]["probability"] >= r[2]["probability"] for r in rows)
    with pytest.raises(load.WeightsError, match="holds a 'lenet' model, not 'vgg16'"):
        load.load_model("vgg16", str(digits_checkpoint))


@pytest.mark.skipif(not load.cached_path("vgg16").exists(), reason="ImageNet weights not cached")
def test_grace_hopper_is_a_military_uniform():
    loaded = load.load_model("vgg16", "IMAGENET1K_V1")
    x = load.image_batch(loaded, load.load_images(["sample"]))
    assert (
        probes.predict(loaded.model, x, loaded.class_names, 1)[0][0]["name"] == "military uniform"
    )


def test_device_handling_on_cpu(monkeypatch):
    assert load.device_of("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="--device cuda: CUDA is not available"):
        load.device_of("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert load.device_of("cuda:1") == torch.device("cuda", 1)
