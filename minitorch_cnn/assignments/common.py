"""Small helpers the tasks' checks share: inputs, weights by name, gradients."""
import zlib

import numpy as np


def normal(seed, *shape):
    """float64 standard-normal array, reproducible from ``seed``."""
    return np.random.default_rng(seed).standard_normal(shape)


def init_by_name(model, seed):
    """Give every parameter and buffer a value drawn from its *name* and shape.

    Two models with the same ``state_dict`` keys and shapes then hold the same
    weights, whatever order their constructors built the layers in; a
    student's block and the reference's can be compared output for output.
    Running variances stay positive; ``num_batches_tracked`` is left alone.
    """
    for name, p in model.named_parameters():
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        scale = 1.0 if p.data.ndim == 1 else 1.0 / np.sqrt(max(1, p.data[0].size))
        p.data[...] = rng.standard_normal(p.data.shape) * scale + (1.0 if name.endswith(
            "weight") and p.data.ndim == 1 else 0.0)
    for name, b in model.named_buffers():
        if name.endswith("num_batches_tracked"):
            continue
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        value = rng.uniform(0.5, 1.5, b.shape) if name.endswith("running_var") else \
            rng.standard_normal(b.shape) * 0.1
        model.load_state_dict({name: value.astype(b.dtype)}, strict=False)
    return model


def param_grads(module):
    """All parameter gradients as one labelled list of arrays, in key order, for one check."""
    return np.concatenate([p.grad.ravel() for _, p in module.named_parameters()]) \
        if list(module.named_parameters()) else np.zeros(0)


def keys_and_shapes(module):
    """['key (shape)', ...] of a module's state_dict, in order."""
    return [f"{k} {tuple(np.shape(v))}" for k, v in module.state_dict().items()]


def count_params(module):
    return int(sum(p.data.size for _, p in module.named_parameters()))


def window_rows(size, k, s, p):
    """Boolean mask over output positions whose window reaches into the padding."""
    out = (size + 2 * p - k) // s + 1
    starts = np.arange(out) * s - p
    return (starts < 0) | (starts + k > size)


def padded_outputs(x_shape, y_shape, kernel, stride, padding):
    """NHWC mask (of the output's shape) of the outputs whose window touches the padding."""
    rows = window_rows(x_shape[1], kernel[0], stride[0], padding[0])
    cols = window_rows(x_shape[2], kernel[1], stride[1], padding[1])
    m = rows[:, None] | cols[None, :]
    return np.broadcast_to(m[None, :, :, None], y_shape)


def border_mask_for(shape, kh, kw, ph, pw):
    """NHWC mask of the pixels a window's padding can reach: kh - 1 rows (kw - 1 columns)
    at each edge of a padded image, or nothing when no padding is used."""
    if not (ph or pw):
        return np.zeros(shape, bool)
    return border_mask(shape, (min(kh - 1, shape[1] // 2) if ph else 0,
                               min(kw - 1, shape[2] // 2) if pw else 0))


def border_mask(shape, band):
    """NHWC mask of the pixels within ``band`` = (rows, cols) of the image's edge."""
    n, h, w, c = shape
    bh, bw = band
    m = np.zeros((h, w), bool)
    if bh:
        m[:bh, :] = True
        m[h - bh:, :] = True
    if bw:
        m[:, :bw] = True
        m[:, w - bw:] = True
    return np.broadcast_to(m[None, :, :, None], shape)
