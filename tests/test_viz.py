"""Every figure function of minitorch_cnn.viz writes a non-empty PNG of the documented size.

Figures are saved at 100 dpi without cropping, so a figure of (w, h) inches
is (100 w) x (100 h) pixels; the sizes below are the ones the docstrings give.
"""
import math

import numpy as np
import pytest
from matplotlib.image import imread

from minitorch_cnn import data, nn, viz


def png_size(path):
    """(width, height) in pixels of a PNG that exists and is not empty."""
    assert path.is_file() and path.stat().st_size > 0
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image[..., :3].std() > 0, "the picture is blank"
    return image.shape[1], image.shape[0]


@pytest.fixture
def tiny_net():
    rng = np.random.default_rng(0)
    return nn.Sequential(nn.Conv2d(3, 12, 3, padding=1, rng=rng), nn.BatchNorm2d(12), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(12, 8, 3, padding=1, rng=rng), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4, rng=rng))


@pytest.fixture(scope="module")
def shapes():
    return data.SyntheticShapes(n=60, seed=0, train=False, size=16)


def test_training_curves(tmp_path):
    history = {"step_loss": list(np.linspace(2.3, 0.5, 40) + 0.1 * np.sin(np.arange(40))),
               "epochs": [{"epoch": e, "train_acc": 40.0 + 10 * e, "validation_acc": 35.0 + 12 * e}
                          for e in (1, 2, 3)]}
    path = viz.plot_training_curves(history, tmp_path / "curves.png")
    assert png_size(path) == (1000, 400)


def test_training_curves_before_the_first_epoch(tmp_path):
    path = viz.plot_training_curves({"step_loss": [2.3, 2.2], "epochs": []}, tmp_path / "c.png",
                                    eval_name="test")
    assert png_size(path) == (1000, 400)


def test_runs_on_shared_axes(tmp_path):
    runs = {"a": {"step_loss": list(np.linspace(2.3, 0.5, 60)),
                  "epochs": [{"epoch": e, "train_acc": 50.0, "test_acc": 40.0 + 9 * e}
                             for e in (1, 2, 3)]},
            "b": {"step_loss": [2.3, 2.1, 2.0], "epochs": []}}     # stopped before an epoch ended
    path = viz.plot_runs(runs, tmp_path / "runs.png", eval_name="test")
    assert png_size(path) == (1000, 400)


@pytest.mark.parametrize("n_filters, ncols", [(12, 8), (64, 8), (5, 8)])
def test_filters_grid(tmp_path, n_filters, ncols):
    weight = np.random.default_rng(0).standard_normal((n_filters, 3, 5, 5))
    path = viz.plot_filters(weight, tmp_path / "f.png", ncols=ncols)
    cols = min(ncols, n_filters)
    rows = math.ceil(n_filters / cols)
    assert png_size(path) == (100 * cols, round(100 * (rows + 0.4)))


def test_filters_from_a_model_and_grey_filters(tmp_path, tiny_net):
    assert png_size(viz.plot_filters(tiny_net, tmp_path / "a.png")) == (800, 240)
    grey = np.random.default_rng(1).standard_normal((4, 16, 3, 3))   # not RGB: channel mean
    assert png_size(viz.plot_filters(grey, tmp_path / "b.png")) == (400, 140)
    with pytest.raises(ValueError, match="out, in, kh, kw"):
        viz.plot_filters(np.zeros((3, 3)), tmp_path / "c.png")


def test_feature_maps_of_a_named_layer(tmp_path, tiny_net, shapes):
    image = shapes.images[0].astype(np.float32) / 255.0
    tiny_net.train()
    before = tiny_net[1].running_mean.copy()
    path = viz.plot_feature_maps(tiny_net, image, "2", tmp_path / "fm.png", max_maps=12,
                                 show_input=shapes.images[0])
    # 13 panels in rows of 8: 2 rows -> 8 x (2.2 + 0.4) inches
    assert png_size(path) == (800, 260)
    assert tiny_net.training, "the model's mode is restored"
    np.testing.assert_array_equal(tiny_net[1].running_mean, before)  # eval mode: no stat updates
    assert "forward" not in tiny_net[2].__dict__, "the recording forward is removed"


def test_feature_maps_of_a_module_and_errors(tmp_path, tiny_net, shapes):
    image = shapes.images[:1].astype(np.float32) / 255.0
    path = viz.plot_feature_maps(tiny_net, image, tiny_net[4], tmp_path / "fm.png", max_maps=8)
    assert png_size(path) == (800, 150)
    with pytest.raises(KeyError, match="no layer named"):
        viz.plot_feature_maps(tiny_net, image, "nope", tmp_path / "x.png")
    with pytest.raises(ValueError, match="not an NHWC feature map"):
        viz.plot_feature_maps(tiny_net, image, "8", tmp_path / "x.png")


def test_capture_activation_matches_a_manual_forward(tiny_net, shapes):
    x = shapes.images[:2].astype(np.float32) / 255.0
    tiny_net.eval()
    expected = tiny_net[2](tiny_net[1](tiny_net[0](x)))
    np.testing.assert_allclose(viz.capture_activation(tiny_net, x, "2"), expected)


def test_confusion_matrix(tmp_path, shapes):
    confusion = np.random.default_rng(0).integers(0, 30, (10, 10))
    path = viz.plot_confusion_matrix(confusion, shapes.classes, tmp_path / "cm.png")
    assert png_size(path) == (700, 600)
    path = viz.plot_confusion_matrix(confusion[:3, :3], ["a", "b", "c"], tmp_path / "cm2.png",
                                     normalize=False, figsize=(4, 3))
    assert png_size(path) == (400, 300)
    with pytest.raises(ValueError, match="matrix for 2 classes"):
        viz.plot_confusion_matrix(confusion, ["a", "b"], tmp_path / "x.png")


@pytest.mark.parametrize("kw", [{}, dict(channels=1, kernel=3, stride=2, padding=1, highlight=0),
                                dict(height=5, width=3, channels=3, kernel=2, stride=1)])
def test_im2col_illustration(tmp_path, kw):
    assert png_size(viz.plot_im2col(tmp_path / "i.png", **kw)) == (1200, 500)


def test_dataset_samples(tmp_path, shapes):
    path = viz.plot_dataset_samples(shapes, tmp_path / "ds.png", per_class=4)
    assert png_size(path) == (550, 1040)
    path = viz.plot_dataset_samples(shapes, tmp_path / "ds3.png", per_class=3, classes=[0, 6, 9])
    assert png_size(path) == (450, 340)
