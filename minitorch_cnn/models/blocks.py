"""Residual building blocks, each with its backward pass written out.

A residual block computes ``y = F(x) + S(x)``: a main path F (a few
convolutions) and a shortcut S (the identity, a 1x1 projection, or the
paper's parameter-free "option A"). The addition has no parameters, and the
derivative of a sum with respect to each term is 1, so the backward pass is

    g = dL/dy                         (after the final ReLU's backward, if any)
    dL/dx = F.backward(g) + S.backward(g)      (S.backward(g) = g for the identity)

-- the gradient is sent down *both* paths and the two input gradients are
added, because x feeds both. Every block below does exactly that, in plain
code, instead of relying on an autograd tape.

Blocks here:

* :func:`conv1x1`, :func:`conv3x3` and :class:`ResidualBlock` -- the seed
  document's helpers and block, reproduced with its quirks (see the class);
* :class:`BasicBlock` (ResNet-18/34 and the CIFAR ResNets) and
  :class:`Bottleneck` (ResNet-50/101/152) -- the paper's blocks, with
  torchvision's attribute names so torchvision's ``state_dict`` loads;
* :class:`ShortcutA` -- the paper's parameter-free shortcut for the CIFAR nets.
"""
import numpy as np

from ..nn import BatchNorm2d, Conv2d, Module, ReLU, Sequential
from ..nn import Cache, check_grad, check_input


# --------------------------------------------------------------------- seed
def conv1x1(in_channels, out_channels, stride, padding, *, dtype=np.float32, rng=None):
    """The seed's helper: ``Sequential(Conv2d(1x1, bias=True), BatchNorm2d, ReLU)``.

    Keys: ``0.weight, 0.bias`` (the convolution keeps PyTorch's default
    ``bias=True``, which is what gives the seed model its 14,750,730
    parameters), ``1.weight, 1.bias, 1.running_mean, 1.running_var,
    1.num_batches_tracked``.
    """
    return Sequential(
        Conv2d(in_channels, out_channels, 1, stride=stride, padding=padding, dtype=dtype, rng=rng),
        BatchNorm2d(out_channels, dtype=dtype),
        ReLU(inplace=True))


def conv3x3(in_channels, out_channels, stride, padding, *, dtype=np.float32, rng=None):
    """The seed's helper: ``Sequential(Conv2d(3x3, bias=True), BatchNorm2d, ReLU)``."""
    return Sequential(
        Conv2d(in_channels, out_channels, 3, stride=stride, padding=padding, dtype=dtype, rng=rng),
        BatchNorm2d(out_channels, dtype=dtype),
        ReLU(inplace=True))


class ResidualBlock(Module):
    r"""The seed document's bottleneck block, exactly as its code behaves.

    ``layer`` = conv1x1(in, mid) -> conv3x3(mid, mid) -> conv1x1(mid, out),
    each a Conv2d(bias=True) + BatchNorm2d + ReLU. Then

    * ``downsample=True``: stride 2 on the *first* 1x1 convolution of ``layer``
      (as the paper, unlike torchvision's later "v1.5" which strides the 3x3)
      and a shortcut ``downsize`` = conv1x1(in, out, stride 2);
    * ``downsample=False``: a shortcut ``make_equal_channel`` = conv1x1(in, out).

    ``forward(x) = layer(x) + shortcut(x)`` -- **no ReLU after the addition**
    (the paper has one), and the main path already ends with a ReLU (the
    paper adds before it).

    The seed's quirk, kept on purpose: its forward reads
    ``if x.size() is not out.size(): x = self.make_equal_channel(x)``.
    ``is not`` compares object *identity*, and each ``.size()`` call returns a
    new ``torch.Size``, so the test is always true: ``make_equal_channel`` (a
    1x1 convolution + BN + ReLU) runs in *every* non-downsampling block, even
    where ``x`` and ``out`` have the same shape and the paper uses the
    identity. (The author meant ``!=``.) The seed model's 11
    ``make_equal_channel`` projections hold 6,529,024 of its 14,750,730
    parameters (44 %) and 37,568,512 of its 89,593,856 multiply-adds at
    32x32 (42 %); the 8 of them that replace an identity alone hold
    5,851,904 parameters and 32,571,392 multiply-adds.

    ``paper_shortcut=True`` is what ``!=`` would have done: where the shapes
    match (not downsampling and ``in_channels == out_channels``) the shortcut
    is the identity and ``make_equal_channel`` is not even created (so it has
    no ``state_dict`` keys). The other quirks stay.

    Backward: ``dx = layer.backward(g) + shortcut.backward(g)`` (``+ g`` for
    the identity).
    """

    def __init__(self, in_channels, middle_channels, out_channels, downsample=False, *,
                 paper_shortcut=False, dtype=np.float32, rng=None):
        super().__init__()
        self.downsample = bool(downsample)
        self.paper_shortcut = bool(paper_shortcut)
        kw = dict(dtype=dtype, rng=rng)
        if self.downsample:                   # the seed's two branches, as its Question 1
            ### BEGIN SOLUTION q1_downsample
            self.layer = Sequential(
                conv1x1(in_channels, middle_channels, 2, 0, **kw),
                conv3x3(middle_channels, middle_channels, 1, 1, **kw),
                conv1x1(middle_channels, out_channels, 1, 0, **kw))
            ### END SOLUTION q1_downsample
            self.downsize = conv1x1(in_channels, out_channels, 2, 0, **kw)
        else:
            ### BEGIN SOLUTION q1_no_downsample
            self.layer = Sequential(
                conv1x1(in_channels, middle_channels, 1, 0, **kw),
                conv3x3(middle_channels, middle_channels, 1, 1, **kw),
                conv1x1(middle_channels, out_channels, 1, 0, **kw))
            ### END SOLUTION q1_no_downsample
            if not (self.paper_shortcut and in_channels == out_channels):
                self.make_equal_channel = conv1x1(in_channels, out_channels, 1, 0, **kw)

    def _shortcut(self):
        """The shortcut module, or None for the identity."""
        if self.downsample:
            return self.downsize
        return self._modules.get("make_equal_channel")

    def forward(self, x):
        out = self.layer(x)
        shortcut = self._shortcut()
        # The seed's `x.size() is not out.size()` is always true, so without
        # paper_shortcut make_equal_channel always exists and always runs.
        return out + (x if shortcut is None else shortcut(x))

    def backward(self, grad_out):
        ### BEGIN SOLUTION q3_block_backward
        grad_main = self.layer.backward(grad_out)       # through the three convolutions
        shortcut = self._shortcut()
        grad_short = grad_out if shortcut is None else shortcut.backward(grad_out)
        grad_main += grad_short                         # x fed both paths: the gradients add
        return grad_main                                # (in place: grad_main is a fresh array)
        ### END SOLUTION q3_block_backward

    def extra_repr(self):
        return f"downsample={self.downsample}, paper_shortcut={self.paper_shortcut}"


# -------------------------------------------------------------- paper / torchvision
def _conv(in_channels, out_channels, kernel, stride, dtype, rng):
    """A bias-free convolution with 'same' padding (as torchvision's conv1x1/conv3x3)."""
    return Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2,
                  bias=False, dtype=dtype, rng=rng)


def projection(in_channels, out_channels, stride, *, dtype=np.float32, rng=None):
    """The paper's option-B shortcut, torchvision's ``downsample``: 1x1 conv (bias-free) + BN.

    Keys ``downsample.0.weight`` and ``downsample.1.*``.
    """
    return Sequential(_conv(in_channels, out_channels, 1, stride, dtype, rng),
                      BatchNorm2d(out_channels, dtype=dtype))


class ShortcutA(Module):
    r"""The paper's parameter-free shortcut (option A, used by the CIFAR ResNets of §4.2).

    Subsample by taking every ``stride``-th pixel (what a 1x1 convolution of
    stride 2 sees), then pad the channel axis with zeros from ``in_channels``
    up to ``out_channels``: ``lo = (out - in) // 2`` zero channels before,
    the rest after (the placement most public CIFAR implementations use).

    Shapes: (N, H, W, C_in) -> (N, ceil(H/s), ceil(W/s), C_out).
    Backward: the zero channels are constants, so their gradient is dropped;
    the kept pixels receive the gradient of the channels they were copied
    to, and the skipped pixels receive zero.
    """

    def __init__(self, in_channels, out_channels, stride=2):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"ShortcutA: out_channels ({out_channels}) must be at least "
                             f"in_channels ({in_channels}); option A only pads with zeros")
        self.in_channels, self.out_channels, self.stride = int(in_channels), int(out_channels), int(stride)
        self.pad_before = (self.out_channels - self.in_channels) // 2
        self._cache = None

    def forward(self, x):
        check_input(self, x, 4, self.in_channels)
        s, lo = self.stride, self.pad_before
        sub = x[:, ::s, ::s, :]
        y = np.zeros(sub.shape[:3] + (self.out_channels,), dtype=x.dtype)
        y[..., lo:lo + self.in_channels] = sub
        self._cache = Cache(y.shape, x_shape=x.shape)
        return y

    def backward(self, grad_out):
        x_shape = check_grad(self, grad_out).x_shape
        s, lo = self.stride, self.pad_before
        dx = np.zeros(x_shape, dtype=grad_out.dtype)
        dx[:, ::s, ::s, :] = grad_out[..., lo:lo + self.in_channels]
        return dx

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class BasicBlock(Module):
    r"""The paper's two-layer block (ResNet-18/34, CIFAR ResNets), torchvision's names.

    conv1 (3x3, stride) -> bn1 -> relu1 -> conv2 (3x3) -> bn2, plus the
    shortcut, then relu2:  y = relu(bn2(conv2(relu(bn1(conv1 x)))) + S(x)).
    S is the identity when the shape is unchanged; otherwise ``downsample``
    is a projection (``shortcut="B"``, 1x1 conv + BN, torchvision's keys
    ``downsample.0/1``) or :class:`ShortcutA` (``shortcut="A"``, no keys).

    torchvision shares one ``relu`` module between the two places; here each
    ReLU is its own module (``relu1``, ``relu2``) because each caches its own
    mask for the backward pass. ReLUs have no parameters, so the
    ``state_dict`` keys are torchvision's exactly.

    Backward: g = relu2.backward(G);
    dx = conv1.bwd(bn1.bwd(relu1.bwd(conv2.bwd(bn2.bwd(g))))) + S.backward(g).
    """

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, shortcut="B", *, dtype=np.float32, rng=None):
        super().__init__()
        self.conv1 = _conv(inplanes, planes, 3, stride, dtype, rng)
        self.bn1 = BatchNorm2d(planes, dtype=dtype)
        self.relu1 = ReLU(inplace=True)
        self.conv2 = _conv(planes, planes, 3, 1, dtype, rng)
        self.bn2 = BatchNorm2d(planes, dtype=dtype)
        self.downsample = _make_shortcut(inplanes, planes, stride, shortcut, dtype, rng)
        self.relu2 = ReLU(inplace=True)

    def forward(self, x):
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu1(out)
        out = self.conv2(out)
        out = self.bn2(out)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu2(out + identity)

    def backward(self, grad_out):
        g = self.relu2.backward(grad_out)                # gradient of the sum
        g_main = self.bn2.backward(g)
        g_main = self.conv2.backward(g_main)
        g_main = self.relu1.backward(g_main)
        g_main = self.bn1.backward(g_main)
        g_main = self.conv1.backward(g_main)
        g_main += g if self.downsample is None else self.downsample.backward(g)
        return g_main                                   # main path + shortcut, summed in place


class Bottleneck(Module):
    r"""The paper's three-layer bottleneck block (ResNet-50/101/152), torchvision's names.

    conv1 (1x1, planes) -> bn1 -> relu1 -> conv2 (3x3, planes) -> bn2 -> relu2
    -> conv3 (1x1, 4 planes) -> bn3, plus the shortcut, then relu3.

    Where the stride goes when the block downsamples:

    * ``stride_in_1x1=True`` (default): on conv1, the first 1x1 convolution,
      as in the paper's original implementation and in the seed;
    * ``stride_in_1x1=False``: on conv2, the 3x3 convolution, as torchvision
      ("ResNet v1.5"; more accurate, and about 5 % more multiply-adds for
      ResNet-50 since conv1 then runs at the full resolution).

    Both give the same parameter shapes, so torchvision's weights load either
    way (but were trained with the stride on the 3x3). The shortcut is
    ``downsample`` (projection, 1x1 conv + BN) when the shape changes.

    Backward: g = relu3.backward(G); dx = main.backward(g) + S.backward(g).
    """

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, shortcut="B", *, stride_in_1x1=True,
                 dtype=np.float32, rng=None):
        super().__init__()
        width, out = planes, planes * self.expansion
        self.stride_in_1x1 = bool(stride_in_1x1)
        s1, s2 = (stride, 1) if self.stride_in_1x1 else (1, stride)
        self.conv1 = _conv(inplanes, width, 1, s1, dtype, rng)
        self.bn1 = BatchNorm2d(width, dtype=dtype)
        self.relu1 = ReLU(inplace=True)
        self.conv2 = _conv(width, width, 3, s2, dtype, rng)
        self.bn2 = BatchNorm2d(width, dtype=dtype)
        self.relu2 = ReLU(inplace=True)
        self.conv3 = _conv(width, out, 1, 1, dtype, rng)
        self.bn3 = BatchNorm2d(out, dtype=dtype)
        self.downsample = _make_shortcut(inplanes, out, stride, shortcut, dtype, rng)
        self.relu3 = ReLU(inplace=True)

    def forward(self, x):
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu1(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu2(out)
        out = self.conv3(out)
        out = self.bn3(out)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu3(out + identity)

    def backward(self, grad_out):
        g = self.relu3.backward(grad_out)                # gradient of the sum
        g_main = self.bn3.backward(g)
        g_main = self.conv3.backward(g_main)
        g_main = self.relu2.backward(g_main)
        g_main = self.bn2.backward(g_main)
        g_main = self.conv2.backward(g_main)
        g_main = self.relu1.backward(g_main)
        g_main = self.bn1.backward(g_main)
        g_main = self.conv1.backward(g_main)
        g_main += g if self.downsample is None else self.downsample.backward(g)
        return g_main                                   # main path + shortcut, summed in place

    def extra_repr(self):
        return f"stride_in_1x1={self.stride_in_1x1}"


def _make_shortcut(in_channels, out_channels, stride, kind, dtype, rng):
    """None (identity) when the shape is kept, else a projection ("B") or ShortcutA ("A")."""
    if stride == 1 and in_channels == out_channels:
        return None
    if kind == "B":
        return projection(in_channels, out_channels, stride, dtype=dtype, rng=rng)
    if kind == "A":
        return ShortcutA(in_channels, out_channels, stride)
    raise ValueError(f"shortcut must be 'A' (zero-padding) or 'B' (projection), got {kind!r}")
