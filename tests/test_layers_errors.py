"""Bad input fails loudly: the message names the layer, what it expected and what it got."""
import numpy as np
import pytest

from minitorch_cnn import nn


def x4(shape=(2, 5, 5, 3), dtype=np.float32):
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


# --------------------------------------------------------------- input rank
@pytest.mark.parametrize("layer, name", [
    (nn.Conv2d(3, 4, 3), "Conv2d"), (nn.BatchNorm2d(3), "BatchNorm2d"),
    (nn.MaxPool2d(2), "MaxPool2d"), (nn.AvgPool2d(2), "AvgPool2d"),
    (nn.AdaptiveAvgPool2d(1), "AdaptiveAvgPool2d"),
])
def test_image_layers_want_4d_nhwc(layer, name):
    expected = rf"^{name}: expected a 4-D NHWC input \(batch, height, width, channels\), " \
               r"got shape \(5, 5, 3\)"
    with pytest.raises(ValueError, match=expected):
        layer(x4((5, 5, 3)))


def test_linear_wants_2d_and_suggests_flatten():
    with pytest.raises(ValueError, match=r"^Linear: expected a 2-D input.*got shape \(2, 5, 5, 3\)"
                                         r".*Flatten"):
        nn.Linear(75, 4)(x4())


def test_flatten_wants_2d_or_4d():
    with pytest.raises(ValueError, match=r"^Flatten: expected a 4-D NHWC or a 2-D input, "
                                         r"got shape \(2, 3, 4\)"):
        nn.Flatten()(x4((2, 3, 4)))


def test_cross_entropy_wants_2d_float_logits():
    with pytest.raises(ValueError, match=r"^CrossEntropyLoss: expected float logits of shape "
                                         r"\(N, K\), got float64 array of shape \(2, 3, 4\)"):
        nn.CrossEntropyLoss()(np.zeros((2, 3, 4)), np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match=r"got int64 array of shape \(2, 3\)"):
        nn.CrossEntropyLoss()(np.zeros((2, 3), dtype=np.int64), np.zeros(2, dtype=np.int64))


# ----------------------------------------------------------- channel count
def test_conv_wrong_channel_count():
    with pytest.raises(ValueError, match=r"^Conv2d: expected 3 channels in the last axis, got "
                                         r"shape \(2, 5, 5, 4\)$"):
        nn.Conv2d(3, 4, 3)(x4((2, 5, 5, 4)))


@pytest.mark.parametrize("layer", [nn.Conv2d(3, 4, 3), nn.BatchNorm2d(3)])
def test_nchw_input_gets_a_hint(layer):
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"^{name}: expected 3 channels in the last axis, got "
                                         r"shape \(2, 3, 8, 8\).*looks like NCHW.*"
                                         r"transpose\(0, 2, 3, 1\)"):
        layer(x4((2, 3, 8, 8)))


def test_linear_wrong_feature_count():
    with pytest.raises(ValueError, match=r"^Linear: expected 4 features in the last axis, got "
                                         r"shape \(2, 5\)"):
        nn.Linear(4, 3)(x4((2, 5)))


# -------------------------------------------------------------------- dtype
@pytest.mark.parametrize("layer", [nn.Conv2d(3, 4, 3), nn.BatchNorm2d(3), nn.MaxPool2d(2),
                                   nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1)])
def test_integer_input_is_rejected(layer):
    name = type(layer).__name__
    with pytest.raises(TypeError, match=rf"^{name}: expected a floating-point input "
                                        r"\(float32 or float64\), got dtype int64"):
        layer(np.ones((2, 5, 5, 3), dtype=np.int64))


def test_relu_and_linear_reject_integers_and_non_arrays():
    with pytest.raises(TypeError, match=r"^ReLU: expected a floating-point input \(float32 or float64\), got dtype int64"):
        nn.ReLU()(np.ones(3, dtype=np.int64))
    with pytest.raises(TypeError, match=r"^ReLU: expected a numpy array, got list"):
        nn.ReLU()([1.0, 2.0])
    with pytest.raises(TypeError, match=r"^Linear: expected a numpy array, got list"):
        nn.Linear(2, 3)([[1.0, 2.0]])


@pytest.mark.parametrize("layer, shape", [(nn.Conv2d(3, 4, 3), (2, 5, 5, 3)),
                                          (nn.BatchNorm2d(3), (2, 5, 5, 3)),
                                          (nn.Linear(3, 2), (4, 3))])
def test_dtype_mismatch_with_parameters(layer, shape):
    name = type(layer).__name__
    with pytest.raises(TypeError, match=rf"^{name}: input dtype float64 does not match the "
                                        r"parameters' dtype float32.*\.to\(np\.float64\)"):
        layer(x4(shape, np.float64))


# ----------------------------------------------------------------- windows
@pytest.mark.parametrize("layer", [nn.Conv2d(3, 4, 5), nn.MaxPool2d(5), nn.AvgPool2d(5)])
def test_kernel_larger_than_padded_input(layer):
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"^{name}: kernel size 5 is larger than the padded "
                                         r"input \(3 \+ 2\*0 = 3\) along height"):
        layer(x4((1, 3, 8, 3)))


def test_kernel_larger_than_padded_input_along_width():
    with pytest.raises(ValueError, match=r"^Conv2d: kernel size 4 is larger than the padded "
                                         r"input \(1 \+ 2\*1 = 3\) along width"):
        nn.Conv2d(3, 4, (1, 4), padding=(0, 1))(x4((1, 6, 1, 3)))


def test_pool_padding_more_than_half_the_kernel():
    with pytest.raises(ValueError, match=r"^MaxPool2d: padding \(2, 2\) must be at most half "
                                         r"the kernel size \(3, 3\)"):
        nn.MaxPool2d(3, padding=2)


@pytest.mark.parametrize("make, name", [(lambda: nn.Conv2d(3, 4, (1, 2, 3)), "Conv2d"),
                                        (lambda: nn.MaxPool2d(2.5), "MaxPool2d"),
                                        (lambda: nn.AvgPool2d(2, stride="1"), "AvgPool2d")])
def test_bad_window_arguments(make, name):
    with pytest.raises(TypeError, match=rf"^{name}: \w+ must be an int or a pair of ints, got"):
        make()


def test_batchnorm_needs_more_than_one_value_per_channel_in_training():
    bn = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match=r"^BatchNorm2d: expected more than 1 value per channel "
                                         r"when training, got input shape \(1, 1, 1, 3\)"):
        bn(x4((1, 1, 1, 3)))
    assert bn.num_batches_tracked == 0  # nothing was updated
    bn.eval()
    assert bn(x4((1, 1, 1, 3))).shape == (1, 1, 1, 3)  # fine in eval mode


# ---------------------------------------------------------------- backward
LAYERS = {
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3), (2, 5, 5, 3), (2, 3, 3, 4)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), (2, 5, 5, 3), (2, 5, 5, 3)),
    "ReLU": (nn.ReLU, (2, 5, 5, 3), (2, 5, 5, 3)),
    "MaxPool2d": (lambda: nn.MaxPool2d(2), (2, 5, 5, 3), (2, 2, 2, 3)),
    "AvgPool2d": (lambda: nn.AvgPool2d(3, 2, 1), (2, 5, 5, 3), (2, 3, 3, 3)),
    "AdaptiveAvgPool2d": (lambda: nn.AdaptiveAvgPool2d(1), (2, 5, 5, 3), (2, 1, 1, 3)),
    "Linear": (lambda: nn.Linear(3, 2), (4, 3), (4, 2)),
    "Flatten": (nn.Flatten, (2, 5, 5, 3), (2, 75)),
}


@pytest.mark.parametrize("name", LAYERS)
def test_backward_before_forward(name):
    make, _, out_shape = LAYERS[name]
    with pytest.raises(RuntimeError, match=rf"^{name}\.backward called before forward"):
        make().backward(np.ones(out_shape, dtype=np.float32))


@pytest.mark.parametrize("name", LAYERS)
def test_second_backward_needs_a_new_forward(name):
    make, in_shape, out_shape = LAYERS[name]
    layer = make()
    layer(x4(in_shape))
    layer.backward(np.ones(out_shape, dtype=np.float32))
    with pytest.raises(RuntimeError, match=rf"^{name}\.backward called before forward"):
        layer.backward(np.ones(out_shape, dtype=np.float32))


@pytest.mark.parametrize("name", LAYERS)
def test_gradient_of_the_wrong_shape(name):
    make, in_shape, out_shape = LAYERS[name]
    layer = make()
    layer(x4(in_shape))
    bad = out_shape[:-1] + (out_shape[-1] + 1,)
    expected = rf"^{name}\.backward: expected a gradient of the output's shape " \
               rf"{_re_shape(out_shape)}, got {_re_shape(bad)}"
    with pytest.raises(ValueError, match=expected):
        layer.backward(np.ones(bad, dtype=np.float32))
    with pytest.raises(ValueError, match=rf"^{name}\.backward: .*got list"):
        layer.backward([1.0])


def _re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_sequential_backward_before_forward_names_the_first_layer_reached():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    with pytest.raises(RuntimeError, match=r"^ReLU\.backward called before forward"):
        net.backward(np.ones((2, 3, 3, 4), dtype=np.float32))


def test_cross_entropy_backward_before_forward():
    with pytest.raises(RuntimeError, match=r"^CrossEntropyLoss\.backward called before forward"):
        nn.CrossEntropyLoss().backward()


# ---------------------------------------------------------------- targets
@pytest.mark.parametrize("targets, message", [
    (np.array([0.0, 1.0, 2.0, 1.0]), r"expected integer targets of shape \(4,\), got float64 "
                                     r"array of shape \(4,\)"),
    (np.array([[0], [1], [2], [1]]), r"expected integer targets of shape \(4,\), got int64 "
                                     r"array of shape \(4, 1\)"),
    (np.array([0, 1, 2]), r"expected integer targets of shape \(4,\), got int64 array of "
                          r"shape \(3,\)"),
    (np.array([0, 1, 5, 2]), r"targets must lie in \[0, 5\), got values in \[0, 5\]"),
    (np.array([0, -1, 2, 2]), r"targets must lie in \[0, 5\), got values in \[-1, 2\]"),
    (np.array([True, False, True, False]), r"expected integer targets .* got bool"),
])
def test_bad_cross_entropy_targets(targets, message):
    with pytest.raises(ValueError, match=r"^CrossEntropyLoss: " + message):
        nn.CrossEntropyLoss()(np.zeros((4, 5)), targets)


def test_bad_cross_entropy_arguments():
    with pytest.raises(ValueError, match=r"^CrossEntropyLoss: label_smoothing must be in "
                                         r"\[0, 1\], got 1.5"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"^CrossEntropyLoss: reduction must be 'mean' or "
                                         r"'sum', got 'none'"):
        nn.CrossEntropyLoss(reduction="none")


# ------------------------------------------------------------------ Module
def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match=r"^Sequential: argument 1 must be a Module, got function"):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_attribute_before_super_init():
    class Broken(nn.Module):
        def __init__(self):
            self.conv = nn.Conv2d(1, 1, 1)

    with pytest.raises(AttributeError, match=r"^Broken: call super\(\).__init__\(\) before"):
        Broken()


def test_to_wants_a_floating_dtype():
    with pytest.raises(TypeError, match=r"^Conv2d\.to: expected a floating dtype, got int32"):
        nn.Conv2d(1, 1, 1).to(np.int32)


def test_unimplemented_passes_name_the_module():
    class Half(nn.Module):
        pass

    with pytest.raises(NotImplementedError, match=r"^Half does not implement forward"):
        Half()(np.zeros(1))
    with pytest.raises(NotImplementedError, match=r"^Half does not implement backward"):
        Half().backward(np.zeros(1))


def test_scale_errors():
    with pytest.raises(TypeError, match=r"Scale: expected a floating-point input \(float32 or float64\), got dtype int64"):
        nn.Scale(2)(np.arange(3))
    s = nn.Scale(0.5)
    with pytest.raises(RuntimeError, match="Scale.backward called before forward"):
        s.backward(np.ones(3))
    np.testing.assert_array_equal(s(np.array([2.0, -4.0])), [1.0, -2.0])
    with pytest.raises(ValueError, match=r"expected a gradient of the output's shape \(2,\)"):
        s.backward(np.ones(3))
