"""PyTorch interop: .npz round trips, torch checkpoints, all-or-nothing loading."""
import sys

import numpy as np
import pytest

from minitorch_cnn import interop, models, nn
from minitorch_cnn.interop import StateDictMismatchError

TORCH_REASON = "PyTorch is not installed; reading torch checkpoints needs it (pip install torch)"


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    torch.set_num_threads(1)
    return torch


def small(dtype=np.float32):
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, dtype=dtype), nn.BatchNorm2d(4, dtype=dtype),
                         nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 2, dtype=dtype))


def same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(np.array_equal(sa[k], sb[k]) for k in sa)


def test_npz_round_trip_keeps_pytorch_keys(tmp_path):
    m = models.resnet20()
    path = interop.export_npz(m, tmp_path / "resnet20.npz")
    with np.load(path) as z:
        assert list(z.files) == list(m.state_dict())
        assert z["layer2.0.conv1.weight"].shape == (32, 16, 3, 3)
    fresh = models.resnet20()
    assert not same_state(fresh, m)
    interop.load_state_dict(fresh, path)
    assert same_state(fresh, m)


def test_dict_of_arrays_and_wrappers():
    src, dst = small(), small()
    sd = src.state_dict()
    interop.load_state_dict(dst, {"state_dict": sd, "epoch": 3})   # a training checkpoint
    assert same_state(src, dst)
    dst = small()
    interop.load_state_dict(dst, {"module." + k: v for k, v in sd.items()})  # nn.DataParallel
    assert same_state(src, dst)


def test_mismatch_lists_every_problem_and_loads_nothing():
    m = small()
    before = m.state_dict()
    bad = dict(small().state_dict())
    del bad["1.running_mean"]
    bad["2.weight"] = np.ones(3)
    bad["4.weight"] = np.zeros((3, 100))
    with pytest.raises(StateDictMismatchError) as info:
        interop.load_state_dict(m, bad)
    err = info.value
    assert err.missing == ["1.running_mean"]
    assert err.unexpected == ["2.weight"]
    assert err.mismatched == [("4.weight", (2, 100), (3, 100))]
    text = str(err)
    assert "nothing was loaded" in text and "missing" in text and "unexpected" in text \
        and "mis-shaped" in text and "4.weight: expected (2, 100), got (3, 100)" in text
    after = m.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)   # untouched

    # strict=False tolerates missing/unexpected keys, never a wrong shape
    del bad["4.weight"]
    interop.load_state_dict(m, bad, strict=False)
    bad["4.weight"] = np.zeros((3, 100))
    with pytest.raises(StateDictMismatchError, match="mis-shaped"):
        interop.load_state_dict(m, bad, strict=False)


def test_seed_model_rejects_a_paper_variant_checkpoint():
    seed, paper = models.resnet50_layer4(), models.resnet50_layer4_paper()
    with pytest.raises(StateDictMismatchError) as info:
        interop.load_state_dict(seed, paper.state_dict())
    assert len(info.value.missing) == 8 * 7   # 8 identity shortcuts x (2 conv + 5 BN keys)
    assert not info.value.unexpected and not info.value.mismatched


def test_torch_checkpoint(torch, tmp_path):
    tnn = torch.nn
    torch.manual_seed(0)
    tmodel = tnn.Sequential(tnn.Conv2d(3, 4, 3, padding=1), tnn.BatchNorm2d(4), tnn.ReLU(),
                            tnn.Flatten(), tnn.Linear(100, 2)).double().eval()
    with torch.no_grad():
        tmodel[1].running_mean.uniform_(-1, 1)
        tmodel[1].running_var.uniform_(0.5, 2)
    path = tmp_path / "model.ckpt"
    torch.save(tmodel.state_dict(), path)
    ours = small(np.float64).eval()
    interop.load_state_dict(ours, path)
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 3))
    expected = tmodel(torch.tensor(x.transpose(0, 3, 1, 2).copy())).detach().numpy()
    np.testing.assert_allclose(ours(x), expected, rtol=1e-12, atol=1e-12)
    # tensors straight from torch, and back to torch
    ours2 = small(np.float64)
    interop.load_state_dict(ours2, tmodel.state_dict())
    assert same_state(ours, ours2)
    tmodel.load_state_dict(interop.to_torch_state_dict(ours2), strict=True)


def test_torch_checkpoint_without_torch(tmp_path, monkeypatch):
    path = tmp_path / "resnet50_epoch285.ckpt"
    path.write_bytes(b"PK\x03\x04 not really a checkpoint")
    monkeypatch.setitem(sys.modules, "torch", None)   # `import torch` now fails
    with pytest.raises(ImportError) as info:
        interop.load_state_dict(models.resnet50_layer4(), path)
    msg = str(info.value)
    assert "needs torch" in msg and "pip install torch" in msg
    assert "np.savez" in msg and "resnet50_epoch285.npz" in msg


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        interop.load_state_dict(small(), tmp_path / "nope.npz")


# ------------------------------------------------------------------ a PyTorch twin
@pytest.mark.parametrize("name,size", [
    ("resnet50_layer4", 32), ("resnet50_layer4_paper", 32), ("resnet8", 32), ("fastnet_small", 32),
    ("fastnet_whiten", 32), ("airbench94", 32), ("resnet18", 40), ("resnet50", 40)])
def test_torch_twin_computes_the_same_model(torch, name, size):
    """to_torch_module rebuilds a zoo model from torch.nn layers: same keys, same logits and
    input gradient (train mode, float64, random upstream gradient), same running statistics."""
    rng = np.random.default_rng(7)
    ours = models.get_model(name, num_classes=5, dtype=np.float64, rng=rng)
    twin = interop.to_torch_module(ours)
    assert list(twin.state_dict()) == list(ours.state_dict())
    assert twin.training and next(twin.parameters()).dtype == torch.float64
    x = rng.standard_normal((3, size, size, 3))
    xt = torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    g = rng.standard_normal((3, 5))
    logits_t = twin(xt)
    (logits_t * torch.from_numpy(g)).sum().backward()
    logits = ours(x)
    gx = ours.backward(g)
    scale = np.abs(logits).max()
    assert np.abs(logits - logits_t.detach().numpy()).max() <= 1e-9 * scale
    gxt = xt.grad.numpy().transpose(0, 2, 3, 1)
    assert np.abs(gx - gxt).max() <= 1e-9 * np.abs(gxt).max()
    frozen = {k for k, p in ours.named_parameters() if not p.requires_grad}
    assert frozen == {k for k, p in twin.named_parameters() if not p.requires_grad}
    t_sd = twin.state_dict()
    for k, v in ours.state_dict().items():
        if "running" in k:
            np.testing.assert_allclose(v, t_sd[k].numpy(), rtol=1e-9, atol=1e-12, err_msg=k)


def test_torch_twin_of_an_unknown_module(torch):
    class Doubler(nn.Module):
        def forward(self, x):
            return 2 * x
    with pytest.raises(TypeError, match="no PyTorch twin for Doubler; expected a layer"):
        interop.to_torch_module(nn.Sequential(nn.ReLU(), Doubler()))
