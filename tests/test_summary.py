"""summary(): Table 1's multiply-adds, the seed model's counts, the table and the command line."""
import numpy as np
import pytest

import minitorch_cnn
from minitorch_cnn import cli, models
from minitorch_cnn.summary import Summary

# Table 1 of the paper: "FLOPs" (multiply-adds) at 224x224, and torchvision's parameter counts.
# The last column is our exact count (stride on the bottleneck's first 1x1, as the paper).
TABLE1 = {
    "resnet18": (1.8e9, 11_689_512, 1_814_073_344),
    "resnet34": (3.6e9, 21_797_672, 3_663_761_408),
    "resnet50": (3.8e9, 25_557_032, 3_857_973_248),
    "resnet101": (7.6e9, 44_549_160, 7_570_194_432),
    "resnet152": (11.3e9, 60_192_808, 11_282_415_616),
}


@pytest.mark.parametrize("name", list(TABLE1))
def test_table1_flops_and_parameters(name, capsys):
    paper_macs, params, macs = TABLE1[name]
    s = minitorch_cnn.summary(models.get_model(name), (224, 224, 3))
    assert s.total_params == params
    assert abs(s.total_macs / paper_macs - 1) < 0.03, (name, s.total_macs)
    assert s.total_macs == macs
    assert s.output_shape == (1, 1000)
    with capsys.disabled():
        print(f"\n{name}: {s.total_macs / 1e9:.3f} x 10^9 MACs (paper {paper_macs / 1e9:.1f}), "
              f"{s.total_params:,} parameters")


def test_bottleneck_stride_placement_changes_macs():
    v15 = minitorch_cnn.summary(models.resnet50(stride_in_1x1=False), (224, 224, 3))
    assert v15.total_macs == 4_089_184_256          # torchvision's placement: 6 % more than 3.858e9
    assert v15.total_params == TABLE1["resnet50"][1]


def test_seed_model_counts():
    s = minitorch_cnn.summary(models.resnet50_layer4(), (32, 32, 3))
    assert s.total_params == 14_750_730
    assert s.total_macs == 89_593_856
    assert s.output_shape == (1, 10)
    mec_macs, mec_params = s.macs_of("make_equal_channel"), s.params_of("make_equal_channel")
    assert mec_params == 6_529_024 and abs(mec_params / s.total_params - 0.4426) < 1e-3
    assert abs(mec_macs / s.total_macs - 0.4193) < 1e-3
    shapes = {r.name: r.output_shape for r in s.rows}
    assert shapes["layer1.3"] == (1, 7, 7, 64)
    assert shapes["layer2.2.add"] == (1, 4, 4, 256)
    assert shapes["layer3.3.add"] == (1, 2, 2, 512)
    assert shapes["avgpool"] == (1, 1, 1, 1024)
    assert sum(r.type == "add" for r in s.rows) == 13
    paper = minitorch_cnn.summary(models.resnet50_layer4_paper(), (32, 32, 3))
    assert paper.total_params == 8_898_826
    assert paper.total_macs == 57_022_464


@pytest.mark.parametrize("name", ["resnet50_layer4", "resnet20"])
def test_shape_rules_agree_with_a_real_forward(name):
    m = models.get_model(name)
    fast = minitorch_cnn.summary(m, (32, 32, 3))
    exact = minitorch_cnn.summary(m, (32, 32, 3), exact=True)
    assert [vars(r) for r in fast.rows] == [vars(r) for r in exact.rows]


def test_summary_leaves_the_model_alone():
    rng = np.random.default_rng(0)
    m = models.resnet20().to(np.float64)
    before = m.state_dict()
    minitorch_cnn.summary(m, (32, 32, 3), exact=True)
    assert m.training and all(mod.training for mod in m.modules())
    assert all("forward" not in mod.__dict__ for mod in m.modules())
    after = m.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    x = rng.standard_normal((2, 32, 32, 3))
    y = m(x)
    assert m.backward(np.ones_like(y)).shape == x.shape


def test_table_text_and_grouping():
    s = minitorch_cnn.summary(models.resnet20(), (32, 32, 3))
    assert isinstance(s, Summary)
    text = str(s)
    assert "Total parameters:   269,722" in text and "Total MACs:" in text
    assert "layer2.0.downsample" in text and "ShortcutA" in text
    stages = s.grouped(1)
    assert [r.name for r in stages] == ["conv1", "bn1", "relu", "layer1", "layer2", "layer3",
                                        "avgpool", "flatten", "fc"]
    assert sum(r.macs for r in stages) == s.total_macs
    assert sum(r.params for r in stages) == s.total_params
    assert stages[4].type == "Sequential" and stages[4].output_shape == (1, 16, 16, 32)


def test_errors():
    with pytest.raises(ValueError, match="NHWC"):
        minitorch_cnn.summary(models.resnet20(), (3, 32, 32))
    with pytest.raises(ValueError, match="layer 'fc'"):
        minitorch_cnn.summary(models.resnet50_layer4(), (224, 224, 3))   # a CIFAR-only head
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        minitorch_cnn.summary(models.resnet20(), (32, 32))


def test_command_line(capsys):
    assert cli.main(["summary", "resnet20"]) == 0
    out = capsys.readouterr().out
    assert "Total parameters:   269,722" in out and "layer3.2.conv2" in out
    assert cli.main(["summary", "resnet50_layer4", "--input", "3x32x32", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "14,750,730" in out and "89,593,856" in out and "layer4.0" not in out
    assert cli.main(["summary", "resnet18", "--input", "64x64x3", "--num-classes", "10"]) == 0
    assert "(1, 10)" in capsys.readouterr().out
    assert cli.main(["summary", "resnet20", "--stride-in-3x3"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["summary", "no_such_model"])
    with pytest.raises(SystemExit):
        cli.main(["summary", "resnet20", "--input", "32x32"])
