"""He initialisation for the paper's ResNets (the seed model keeps PyTorch's defaults)."""
import numpy as np

from ..nn import Conv2d
from ..nn.init import default_rng


def kaiming_normal_conv_(model, rng=None):
    """Redraw every Conv2d weight from N(0, 2 / fan_out), fan_out = out_channels * kh * kw.

    This is torchvision's ``kaiming_normal_(mode="fan_out", nonlinearity="relu")``
    and the paper's [He et al. 2015] initialisation. BatchNorm keeps weight 1,
    bias 0; Linear keeps PyTorch's default, as torchvision does.
    """
    rng = default_rng(rng)
    for m in model.modules():
        if isinstance(m, Conv2d):
            w = m.weight.data
            fan_out = w.shape[0] * w.shape[2] * w.shape[3]
            std = np.sqrt(2.0 / fan_out)
            dtype = w.dtype if w.dtype in (np.float32, np.float64) else np.float64
            m.weight.data = (rng.standard_normal(w.shape, dtype=dtype) * std).astype(w.dtype)
    return model
