"""Models: structure and keys, explicit backward passes (finite differences), PyTorch parity.

The parity test builds the seed document's ResNet50_layer4 in PyTorch (its
code, with the obvious forward), copies the weights over through a
``torch.save`` checkpoint, and compares logits, loss, input gradient and
every parameter gradient in float64, in train and eval mode.
"""
import numpy as np
import pytest

from minitorch_cnn import gradcheck, interop, models, nn
from minitorch_cnn.models import (BasicBlock, Bottleneck, ResidualBlock, ShortcutA)

TORCH_REASON = "PyTorch is not installed; the parity tests need it (pip install torch)"
TOL = 1e-6  # float64 relative error


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.set_num_threads(1)
    return torch


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(b).max(initial=0.0), 1e-300)
    return float(np.abs(a - b).max(initial=0.0) / scale)


# ------------------------------------------------------------------ the seed model
SEED_KEYS = {  # a few of the 373 keys, with shapes
    "layer1.0.weight": (64, 3, 7, 7),
    "layer2.0.layer.0.0.weight": (64, 64, 1, 1),
    "layer2.0.layer.0.0.bias": (64,),
    "layer2.0.make_equal_channel.1.running_mean": (256,),
    "layer2.2.downsize.0.weight": (256, 256, 1, 1),
    "layer3.3.downsize.0.weight": (512, 512, 1, 1),
    "layer4.5.make_equal_channel.0.weight": (1024, 1024, 1, 1),
    "layer4.5.layer.2.1.num_batches_tracked": (),
    "fc.weight": (10, 1024),
    "fc.bias": (10,),
}


def test_seed_model_keys_and_counts():
    m = models.resnet50_layer4()
    sd = m.state_dict()
    assert len(sd) == 373
    assert sum(p.size for p in m.parameters()) == 14_750_730
    for key, shape in SEED_KEYS.items():
        assert sd[key].shape == shape, key
    keys = list(sd)
    assert keys[-2:] == ["fc.weight", "fc.bias"]  # fc registered before avgpool, as the seed
    # every non-downsampling block has make_equal_channel, downsampling ones have downsize
    blocks = [mod for _, mod in m.named_modules() if isinstance(mod, ResidualBlock)]
    assert len(blocks) == 13
    assert sum(b.downsample for b in blocks) == 2
    assert all(("downsize" in b._modules) == b.downsample for b in blocks)
    assert all(("make_equal_channel" in b._modules) != b.downsample for b in blocks)
    assert m.layer2[2].layer[0][0].stride == (2, 2) and m.layer2[2].downsize[0].stride == (2, 2)
    assert m.layer2[2].layer[1][0].stride == (1, 1)


def test_seed_paper_variant_keys_and_counts():
    seed, paper = models.resnet50_layer4(), models.get_model("resnet50_layer4_paper")
    assert sum(p.size for p in paper.parameters()) == 8_898_826
    assert set(paper.state_dict()) < set(seed.state_dict())
    # the projections stay only where the channel count changes
    kept = sorted(name for name, _ in paper.named_modules() if name.endswith("make_equal_channel"))
    assert kept == ["layer2.0.make_equal_channel", "layer3.0.make_equal_channel",
                    "layer4.0.make_equal_channel"]


def test_seed_model_shapes_and_quirks(rng):
    m = models.resnet50_layer4().to(np.float64).eval()
    x = rng.standard_normal((2, 32, 32, 3))
    h = m.layer1(x)
    assert h.shape == (2, 7, 7, 64)
    h = m.layer2(h)
    assert h.shape == (2, 4, 4, 256)
    h = m.layer3(h)
    assert h.shape == (2, 2, 2, 512)
    h = m.layer4(h)
    assert h.shape == (2, 2, 2, 1024)
    pooled = m.avgpool(h)
    # AvgPool2d((1, 1), stride 2) keeps the top-left pixel of the 2x2 map
    np.testing.assert_array_equal(pooled, h[:, :1, :1, :])
    # make_equal_channel runs even where shapes match; no ReLU after the addition
    block = m.layer4[3]
    x4 = rng.standard_normal((2, 2, 2, 1024))
    expected = block.layer(x4) + block.make_equal_channel(x4)
    np.testing.assert_allclose(block(x4), expected, rtol=1e-12, atol=0)
    assert m.fc(m.flatten(pooled)).shape == (2, 10)


def _torch_seed_model(torch):
    """The seed document's code (ResidualBlock, ResNet50_layer4 and its helpers) in PyTorch."""
    tnn = torch.nn

    def conv1x1(in_channels, out_channels, stride, padding):
        return tnn.Sequential(
            tnn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, padding=padding),
            tnn.BatchNorm2d(out_channels), tnn.ReLU(inplace=True))

    def conv3x3(in_channels, out_channels, stride, padding):
        return tnn.Sequential(
            tnn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=padding),
            tnn.BatchNorm2d(out_channels), tnn.ReLU(inplace=True))

    class TorchResidualBlock(tnn.Module):
        def __init__(self, in_channels, middle_channels, out_channels, downsample=False):
            super().__init__()
            self.downsample = downsample
            if self.downsample:
                self.layer = tnn.Sequential(
                    conv1x1(in_channels, middle_channels, 2, 0),
                    conv3x3(middle_channels, middle_channels, 1, 1),
                    conv1x1(middle_channels, out_channels, 1, 0))
                self.downsize = conv1x1(in_channels, out_channels, 2, 0)
            else:
                self.layer = tnn.Sequential(
                    conv1x1(in_channels, middle_channels, 1, 0),
                    conv3x3(middle_channels, middle_channels, 1, 1),
                    conv1x1(middle_channels, out_channels, 1, 0))
                self.make_equal_channel = conv1x1(in_channels, out_channels, 1, 0)

        def forward(self, x):
            if self.downsample:
                out = self.layer(x)
                x = self.downsize(x)
                return out + x
            out = self.layer(x)
            if x.size() is not out.size():  # the seed's identity test: always true
                x = self.make_equal_channel(x)
            return out + x

    class TorchResNet50Layer4(tnn.Module):
        def __init__(self, num_classes=10):
            super().__init__()
            rb = TorchResidualBlock
            self.layer1 = tnn.Sequential(
                tnn.Conv2d(in_channels=3, out_channels=64, kernel_size=7, stride=2, padding=3),
                tnn.BatchNorm2d(64), tnn.ReLU(inplace=True),
                tnn.MaxPool2d(kernel_size=3, stride=2, padding=0))
            self.layer2 = tnn.Sequential(rb(64, 64, 256, False), rb(256, 64, 256, False),
                                         rb(256, 64, 256, True))
            self.layer3 = tnn.Sequential(rb(256, 128, 512, False), rb(512, 128, 512, False),
                                         rb(512, 128, 512, False), rb(512, 128, 512, True))
            self.layer4 = tnn.Sequential(rb(512, 256, 1024, False),
                                         *[rb(1024, 256, 1024, False) for _ in range(5)])
            self.fc = tnn.Linear(1024, num_classes)
            self.avgpool = tnn.AvgPool2d((1, 1), stride=2)

        def forward(self, x):
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            x = self.avgpool(x)
            return self.fc(x.view(x.size(0), -1))

    return TorchResNet50Layer4()


def _randomize_bn(torch, model, gen):
    """Non-trivial BatchNorm affine parameters and running statistics."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.uniform_(0.5, 1.5, generator=gen)
                mod.bias.uniform_(-0.2, 0.2, generator=gen)
                mod.running_mean.uniform_(-0.3, 0.3, generator=gen)
                mod.running_var.uniform_(0.5, 2.0, generator=gen)
                assert mod.running_var.shape == (c,)


def _grad_errors(ours, tmodel, bias_before_bn_zero):
    """Relative error of every parameter gradient; in train mode the conv biases
    (each feeds a BatchNorm) have a true gradient of exactly zero, so they are
    checked to be at rounding level instead."""
    tgrads = {k: p.grad.numpy() for k, p in tmodel.named_parameters()}
    scale = max(np.abs(g).max() for g in tgrads.values())
    errors, zero_checked = {}, 0
    for name, p in ours.named_parameters():
        g_t = tgrads[name]
        if bias_before_bn_zero and name.endswith(".bias") and not name.startswith("fc.") \
                and p.grad.ndim == 1 and _is_conv_bias(ours, name):
            assert np.abs(p.grad).max() <= 1e-12 * scale, name
            assert np.abs(g_t).max() <= 1e-12 * scale, name
            zero_checked += 1
            continue
        errors[name] = rel_err(p.grad, g_t)
    return errors, zero_checked


def _is_conv_bias(model, name):
    mod = dict(model.named_modules())[name.rsplit(".", 1)[0]]
    return isinstance(mod, nn.Conv2d)


def test_seed_model_matches_pytorch(torch, tmp_path, rng, capsys):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    tmodel = _torch_seed_model(torch).double()
    _randomize_bn(torch, tmodel, gen)
    ckpt = tmp_path / "resnet50_epoch285.ckpt"
    torch.save(tmodel.state_dict(), ckpt)  # what the seed's training script writes
    ours = models.resnet50_layer4().to(np.float64)
    interop.load_state_dict(ours, ckpt)

    x = rng.standard_normal((2, 32, 32, 3))
    y = np.array([3, 7])
    report = {}
    for mode in ("train", "eval"):
        tmodel.train(mode == "train")
        ours.train(mode == "train")
        tmodel.zero_grad()
        ours.zero_grad()
        xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
        logits_t = tmodel(xt)
        loss_t = torch.nn.functional.cross_entropy(logits_t, torch.tensor(y))
        loss_t.backward()

        criterion = nn.CrossEntropyLoss()
        logits = ours(x)
        loss = criterion(logits, y)
        gx = ours.backward(criterion.backward())

        errs, zeros = _grad_errors(ours, tmodel, bias_before_bn_zero=(mode == "train"))
        report[mode] = {
            "logits": rel_err(logits, logits_t.detach().numpy()),
            "loss": abs(loss - loss_t.item()) / abs(loss_t.item()),
            "input grad": rel_err(gx, xt.grad.numpy().transpose(0, 2, 3, 1)),
            "max param grad": max(errs.values()),
            "param tensors compared": len(errs),
            "zero-gradient conv biases": zeros,
        }
        assert len(errs) + zeros == len(ours.parameters()) == 214
        for key in ("logits", "loss", "input grad", "max param grad"):
            assert report[mode][key] <= TOL, (mode, key, report[mode][key])
        if mode == "train":  # the running statistics were updated identically
            ours_sd, t_sd = ours.state_dict(), tmodel.state_dict()
            for k, v in t_sd.items():
                if "running" in k:
                    assert rel_err(ours_sd[k], v.numpy()) <= TOL, k
    with capsys.disabled():
        print("\nseed-model parity vs PyTorch (float64 relative errors):")
        for mode, r in report.items():
            print(f"  {mode:5s}: " + ", ".join(
                f"{k}={v:.1e}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))


# ------------------------------------------------------------------ blocks, gradcheck
def _check(module, x, train, skip=()):
    errors = gradcheck(module, x, train=train)
    bad = {k: v for k, v in errors.items() if v > TOL and k not in skip}
    assert not bad, bad
    return errors


@pytest.mark.parametrize("downsample,paper", [(False, False), (True, False), (False, True)])
def test_residual_block_gradcheck(rng, downsample, paper):
    in_c = 6 if paper else 4      # paper_shortcut with in == out: the identity path
    block = ResidualBlock(in_c, 2, 6, downsample=downsample, paper_shortcut=paper,
                          dtype=np.float64, rng=rng)
    assert ("make_equal_channel" in block._modules) == (not downsample and not paper)
    x = rng.standard_normal((2, 5, 5, in_c))
    _check(block, x, train=False)
    # in training mode a conv bias feeding BatchNorm has a zero gradient (nothing to compare)
    conv_biases = {k for k in dict(block.named_parameters()) if k.endswith("0.bias")}
    _check(block, x, train=True, skip=conv_biases)


@pytest.mark.parametrize("stride,inplanes,stride_in_1x1", [
    (2, 4, True), (2, 4, False),   # downsampling: stride on the 1x1 (paper) or the 3x3 (torchvision)
    (1, 8, True),                  # identity shortcut
    (1, 4, True)])                 # projection without stride
def test_bottleneck_gradcheck(rng, stride, inplanes, stride_in_1x1):
    block = Bottleneck(inplanes, 2, stride, stride_in_1x1=stride_in_1x1, dtype=np.float64, rng=rng)
    assert (block.downsample is None) == (stride == 1 and inplanes == 8)
    x = rng.standard_normal((2, 5, 5, inplanes))
    _check(block, x, train=True)
    _check(block, x, train=False)


@pytest.mark.parametrize("shortcut,stride,inplanes,planes",
                         [("B", 2, 3, 4), ("B", 1, 4, 4), ("A", 2, 2, 4), ("A", 1, 2, 4)])
def test_basic_block_gradcheck(rng, shortcut, stride, inplanes, planes):
    block = BasicBlock(inplanes, planes, stride, shortcut=shortcut, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 5, 5, inplanes))
    _check(block, x, train=True)
    _check(block, x, train=False)


def test_shortcut_a(rng):
    sc = ShortcutA(2, 5, stride=2)
    x = rng.standard_normal((1, 5, 5, 2))
    y = sc(x)
    assert y.shape == (1, 3, 3, 5)
    np.testing.assert_array_equal(y[..., 1:3], x[:, ::2, ::2, :])   # lo = (5 - 2) // 2 = 1
    assert not y[..., [0, 3, 4]].any()
    assert gradcheck(sc, x)["input"] < 1e-8
    with pytest.raises(ValueError, match="at least"):
        ShortcutA(4, 2)


def _torch_bottleneck(torch, inplanes, planes, stride, stride_in_1x1):
    """A torchvision-style Bottleneck (names conv1..bn3, downsample.0/1) written for the test."""
    tnn = torch.nn

    class TorchBottleneck(tnn.Module):
        def __init__(self):
            super().__init__()
            s1, s2 = (stride, 1) if stride_in_1x1 else (1, stride)
            self.conv1 = tnn.Conv2d(inplanes, planes, 1, stride=s1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.conv2 = tnn.Conv2d(planes, planes, 3, stride=s2, padding=1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.conv3 = tnn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = tnn.BatchNorm2d(planes * 4)
            self.relu = tnn.ReLU(inplace=True)
            self.downsample = tnn.Sequential(
                tnn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                tnn.BatchNorm2d(planes * 4))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return self.relu(out + self.downsample(x))

    return TorchBottleneck()


def _torch_basic_block(torch, inplanes, planes, stride):
    tnn = torch.nn

    class TorchBasicBlock(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.relu = tnn.ReLU(inplace=True)
            self.conv2 = tnn.Conv2d(planes, planes, 3, padding=1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.downsample = tnn.Sequential(
                tnn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), tnn.BatchNorm2d(planes))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + self.downsample(x))

    return TorchBasicBlock()


@pytest.mark.parametrize("kind", ["bottleneck-1x1", "bottleneck-3x3", "basic"])
def test_blocks_match_torchvision_style_blocks(torch, rng, kind):
    torch.manual_seed(0)
    if kind == "basic":
        tblock, ours = _torch_basic_block(torch, 4, 6, 2), BasicBlock(4, 6, 2, dtype=np.float64)
    else:
        in_1x1 = kind.endswith("1x1")
        tblock = _torch_bottleneck(torch, 4, 3, 2, in_1x1)
        ours = Bottleneck(4, 3, 2, stride_in_1x1=in_1x1, dtype=np.float64)
    tblock = tblock.double().train()
    _randomize_bn(torch, tblock, torch.Generator().manual_seed(2))
    interop.load_state_dict(ours, tblock.state_dict())   # torchvision's keys load as they are
    x = rng.standard_normal((2, 7, 7, 4))
    xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
    yt = tblock(xt)
    y = ours(x)
    g = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(g.transpose(0, 3, 1, 2).copy()))
    gx = ours.backward(g)
    assert y.shape == (2, 4, 4, ours.bn2.num_features if kind == "basic" else 12)
    assert rel_err(y, yt.detach().numpy().transpose(0, 2, 3, 1)) <= TOL
    assert rel_err(gx, xt.grad.numpy().transpose(0, 2, 3, 1)) <= TOL
    tgrads = dict(tblock.named_parameters())
    for name, p in ours.named_parameters():
        assert rel_err(p.grad, tgrads[name].grad.numpy()) <= TOL, name


# ------------------------------------------------------------------ ImageNet / CIFAR
def test_resnet18_torchvision_keys_and_forward(rng):
    m = models.resnet18()
    sd = m.state_dict()
    assert len(sd) == 122 and sum(p.size for p in m.parameters()) == 11_689_512
    assert "layer1.0.downsample.0.weight" not in sd
    assert sd["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert sd["layer2.0.downsample.1.running_var"].shape == (128,)
    assert sd["layer4.1.conv2.weight"].shape == (512, 512, 3, 3)
    assert sd["fc.weight"].shape == (1000, 512)
    assert not any(k.startswith(("relu", "maxpool", "avgpool", "flatten")) for k in sd)
    # He init: conv weights have std sqrt(2 / fan_out)
    w = m.layer3[0].conv1.weight.data
    assert abs(w.std() / np.sqrt(2 / (256 * 9)) - 1) < 0.05
    y = m.eval()(rng.standard_normal((1, 32, 32, 3)).astype(np.float32))   # a tiny forward
    assert y.shape == (1, 1000) and y.dtype == np.float32


def test_resnet50_torchvision_keys():
    m = models.resnet50()
    sd = m.state_dict()
    assert len(sd) == 320
    assert sd["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert sd["layer3.5.conv3.weight"].shape == (1024, 256, 1, 1)
    assert sd["layer4.2.bn3.running_var"].shape == (2048,)
    assert sd["fc.weight"].shape == (1000, 2048)
    assert m.layer2[0].conv1.stride == (2, 2) and m.layer2[0].conv2.stride == (1, 1)
    tv = models.resnet50(stride_in_1x1=False)
    assert tv.layer2[0].conv1.stride == (1, 1) and tv.layer2[0].conv2.stride == (2, 2)


@pytest.mark.parametrize("name,params,paper", [
    ("resnet20", 269_722, 0.27), ("resnet32", 464_154, 0.46), ("resnet44", 658_586, 0.66),
    ("resnet56", 853_018, 0.85), ("resnet110", 1_727_962, 1.7)])
def test_cifar_resnet_parameter_counts(name, params, paper):
    m = models.get_model(name)
    n = sum(p.size for p in m.parameters())
    assert n == params
    assert float(f"{n / 1e6:.2g}") == paper   # Table 6, two significant digits
    assert not [k for k in m.state_dict() if "downsample" in k]  # option A: no shortcut weights


def test_resnet8_is_the_smallest_of_the_family():
    m = models.get_model("resnet8")  # n = 1: one block per stage, not in the paper's table
    assert sum(p.size for p in m.parameters()) == 75_290
    assert [len(stage) for stage in (m.layer1, m.layer2, m.layer3)] == [1, 1, 1]


def test_cifar_resnet_forward_backward(rng):
    m = models.resnet20().to(np.float64)
    x = rng.standard_normal((2, 32, 32, 3))
    y = m(x)
    assert y.shape == (2, 10)
    assert m.layer2[0].downsample is not None and m.layer3[-1].downsample is None
    gx = m.backward(np.ones_like(y))
    assert gx.shape == x.shape
    assert all(np.isfinite(p.grad).all() for p in m.parameters())


def test_registry():
    assert set(models.MODELS) == {
        "resnet50_layer4", "resnet50_layer4_paper", "resnet18", "resnet34", "resnet50",
        "resnet101", "resnet152", "resnet8", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
        "fastnet", "fastnet_small", "fastnet_whiten", "airbench94", "airbench94_muon"}
    m = models.get_model("resnet20", num_classes=100)
    assert m.fc.out_features == 100
    with pytest.raises(KeyError, match="available"):
        models.get_model("resnet9000")


# ------------------------------------------------------------------ FastNet
@pytest.mark.parametrize("name,params,macs", [("fastnet", 1_972_826, 118_147_360),
                                              ("fastnet_small", 498_138, 33_066_272)])
def test_fastnet_counts_and_shapes(name, params, macs):
    from minitorch_cnn import summary
    m = models.get_model(name)
    assert sum(p.size for p in m.parameters()) == params
    assert summary(m, (32, 32, 3)).total_macs == macs
    keys = list(m.state_dict())
    assert keys[:2] == ["stem.0.weight", "stem.1.weight"] and keys[-2:] == ["fc.weight", "fc.bias"]
    assert "block1.2.running_mean" in keys  # BatchNorm after the pool
    conv_biases = {"stem.0.bias"} | {f"block{i}.{j}.bias" for i in (1, 2, 3) for j in (0, 4)}
    assert not conv_biases & set(keys)  # every convolution is bias-free (BatchNorm follows)


def test_fastnet_gradcheck(rng):
    m = models.FastNet(3, widths=(3, 4, 5), stem=2, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 25, 25, 3))  # 25 -> 24 -> 12 -> 6 -> 3 -> 1, the smallest input
    assert m(x).shape == (2, 3)
    _check(m, x, train=True)
    with pytest.raises(ValueError, match="three channel counts, got"):
        models.FastNet(widths=(8, 8))


def test_fastnet_whiten_structure():
    from minitorch_cnn import summary
    m = models.get_model("fastnet_whiten")
    params = list(m.named_parameters())
    assert sum(p.size for _, p in params) == 1_972_802
    assert sum(p.size for _, p in params if p.requires_grad) == 1_971_362
    assert summary(m, (32, 32, 3)).total_macs == 118_147_360
    frozen = {k for k, p in params if not p.requires_grad}
    assert frozen == {"stem.0.weight"} | {f"block{i}.{j}.weight" for i in (1, 2, 3) for j in (2, 5)}
    keys = list(m.state_dict())
    assert keys[:3] == ["stem.0.weight", "stem.0.bias", "block1.0.weight"]  # no stem BatchNorm
    assert not m.stem[0].bias.data.any()
    assert isinstance(m.scale, nn.Scale) and m.scale.factor == pytest.approx(1 / 9)


def test_fastnet_dirac_init_passes_the_input_through(rng):
    """The identity-initialised 3x3 convolutions copy their input into their first channels."""
    m = models.get_model("fastnet_whiten", rng=rng)
    for conv in (m.block1[0], m.block1[4], m.block2[0], m.block3[4]):
        cin = conv.in_channels
        x = rng.standard_normal((2, 5, 6, cin)).astype(np.float32)
        y = conv(x)
        np.testing.assert_array_equal(y[..., :cin], x)
        if conv.out_channels > cin:                      # the other filters stay random
            assert np.abs(y[..., cin:]).max() > 0.1


def test_fastnet_whitening_stem(rng):
    """init_from_data makes the stem's first 12 channels (before the bias) decorrelated with
    unit variance on the images it saw, and the other 12 their negatives."""
    m = models.get_model("fastnet_whiten", rng=rng)
    before = m.stem[0].weight.data.copy()
    # correlated colour channels and smooth images, like real ones
    base = rng.standard_normal((300, 32, 32, 1)) + 0.5 * rng.standard_normal((300, 32, 32, 3))
    x = (base + np.roll(base, 1, axis=1) + np.roll(base, 1, axis=2)).astype(np.float32)
    m.init_from_data(x)
    w = m.stem[0].weight.data
    assert not np.allclose(w, before)
    np.testing.assert_array_equal(w[12:], -w[:12])
    y = m.stem[0](x)[..., :12].reshape(-1, 12).astype(np.float64)   # bias is 0
    cov = y.T @ y / len(y)
    np.testing.assert_allclose(cov, np.eye(12), atol=5e-3)
    raw = x[:, :31, :31, :].reshape(-1, 3)
    assert abs(np.corrcoef(raw.T)[0, 1]) > 0.3  # the input was far from white
    plain = models.get_model("fastnet", rng=np.random.default_rng(0))
    w0 = plain.stem[0].weight.data.copy()
    plain.init_from_data(x)                      # no whitening stem: nothing changes
    np.testing.assert_array_equal(plain.stem[0].weight.data, w0)
    with pytest.raises(ValueError, match=r"expected normalised float images \(N, H, W, 3\), "
                                         r"got uint8"):
        m.init_from_data(x.astype(np.uint8))
    with pytest.raises(ValueError, match="whitening stem has 24 channels"):
        models.FastNet(whiten=True, stem=16)


def test_fastnet_whiten_gradcheck(rng):
    # no dirac init here: copied inputs tie in the max-pools, where the loss has kinks
    m = models.FastNet(3, widths=(3, 4, 5), whiten=True, freeze_bn_weight=True,
                       logit_scale=0.25, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 25, 25, 3))
    m.init_from_data(x)
    m.stem[0].bias.data[...] = rng.standard_normal(24) * 0.1
    _check(m, x, train=True)


def test_airbench94_structure():
    """airbench94.py's network: GELU everywhere, BatchNorm eps 1e-12 and momentum 1 - 0.6,
    frozen BN weights, no fc bias; ``activation="relu"`` is the ablation."""
    m = models.get_model("airbench94")
    params = dict(m.named_parameters())
    assert sum(p.size for p in params.values()) == 1_972_792
    assert "fc.bias" not in params and "stem.0.bias" in params
    acts = [type(c).__name__ for c in m.modules() if type(c).__name__ in ("ReLU", "GELU")]
    assert acts == ["GELU"] * 7
    bns = [c for c in m.modules() if isinstance(c, nn.BatchNorm2d)]
    assert len(bns) == 6 and all(b.eps == 1e-12 and b.momentum == pytest.approx(0.4) and
                                 not b.weight.requires_grad and b.bias.requires_grad for b in bns)
    relu = models.get_model("airbench94", activation="relu")
    assert sum(isinstance(c, nn.ReLU) for c in relu.modules()) == 7
    assert list(relu.state_dict()) == list(m.state_dict())
    with pytest.raises(ValueError, match="activation must be one of relu, gelu, got 'tanh'"):
        models.FastNet(activation="tanh")


def test_airbench94_gradcheck(rng):
    m = models.FastNet(3, widths=(3, 4, 5), whiten=True, freeze_bn_weight=True, logit_scale=0.25,
                       activation="gelu", bn_eps=1e-12, bn_momentum=0.4, fc_bias=False,
                       dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 25, 25, 3))
    m.init_from_data(x)
    m.stem[0].bias.data[...] = rng.standard_normal(24) * 0.1
    _check(m, x, train=True)


# ------------------------------------------------------------ backward mirrors forward
SHORTCUTS = {"downsample", "downsize", "make_equal_channel"}


@pytest.mark.parametrize("name", list(models.MODELS))
def test_backward_calls_the_layers_of_forward_in_reverse(name, rng):
    """In every model and block, backward calls the children in the reverse of the order
    forward called them (a block's shortcut, a second path, is called after the main path
    in both); so the structure is the forward's, and backward only walks it back."""
    model = models.get_model(name, num_classes=3, rng=rng)
    calls = {"forward": [], "backward": []}
    for child_name, m in model.named_modules():
        for kind in calls:
            def record(arg, m=m, kind=kind, child_name=child_name):
                calls[kind].append(child_name)
                return getattr(type(m), kind)(m, arg)
            object.__setattr__(m, kind, record)
    x = rng.standard_normal((2, 32, 32, 3)).astype(np.float32)
    model.backward(rng.standard_normal(model(x).shape).astype(np.float32))
    for parent, m in model.named_modules():
        if not m._modules or isinstance(m, nn.Sequential):
            continue
        depth = parent.count(".") + 1 if parent else 0

        def children(kind):
            return [n.split(".")[depth] for n in calls[kind]
                    if n and (n.startswith(parent + ".") or not parent)
                    and n.count(".") == depth]
        forward, backward = children("forward"), children("backward")
        main_f = [c for c in forward if c not in SHORTCUTS]
        main_b = [c for c in backward if c not in SHORTCUTS]
        assert main_b == main_f[::-1], (parent or name, forward, backward)
        assert [c for c in forward if c in SHORTCUTS] == [c for c in backward if c in SHORTCUTS]
        assert set(forward) == set(m._modules), (parent or name, "not every child runs")
