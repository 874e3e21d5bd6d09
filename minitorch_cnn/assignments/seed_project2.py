"""The seed document's assignment, "Project #2: CNN Architecture Implementation" (105 points).

Its questions and point scheme: Question 1, the bottleneck building block
(the ``downsample=True`` and ``downsample=False`` branches, 20 points each);
Question 2, ``ResNet50_layer4``: its code with 25 blanks (``___``) in the
stem, ``layer2``, ``fc`` and ``avgpool`` (1 point per blank), and ``layer3``
and ``layer4`` (20 points each). The seed's network runs on PyTorch's
autograd; here a student may also write the block's backward pass, an
optional extra outside the seed's 105 points.

Graded on structure (the seed's 373 ``state_dict`` keys and 14,750,730
parameters, each convolution's kernel, stride and padding: structural
results, compared as salted digests), on equal outputs and gradients against
the reference with the same weights (given by name, so the order a student
builds layers in does not matter), and on the seed's quirks
(``make_equal_channel`` in every non-downsampling block, the downsampling
block last in a stage with its stride on the first 1x1).
"""
import numpy as np

from .common import count_params, init_by_name, keys_and_shapes, normal, param_grads
from .compare import Expected
from .tasks import Case, Task


def _models():
    from .. import models
    from ..models import blocks
    return models, blocks


def conv_layout(module, prefix=""):
    """['name: KxK, in->out, stride (s, s), padding (p, p)', ...] of every Conv2d, in order."""
    from ..nn import Conv2d
    out = []
    for name, m in module.named_modules():
        if isinstance(m, Conv2d):
            kh, kw = m.kernel_size
            out.append(f"{prefix}{name}: {kh}x{kw}, {m.in_channels}->{m.out_channels}, "
                       f"stride {m.stride}, padding {m.padding}")
    return out


def _moved_stride(layout, to):
    """The layout with the main path's stride moved from layer.0.0 to ``to``."""
    out = list(layout)
    i = next(k for k, s in enumerate(out) if s.startswith("layer.0.0:"))
    j = next(k for k, s in enumerate(out) if s.startswith(to + ":"))
    si, sj = out[i].split("stride ")[1].split(", padding")[0], out[j].split("stride ")[1].split(", padding")[0]
    out[i] = out[i].replace(f"stride {si}", f"stride {sj}")
    out[j] = out[j].replace(f"stride {sj}", f"stride {si}")
    return out


# ------------------------------------------------------------------ Question 1
def run_block(mod, in_channels, middle, out_channels, downsample, shape, seed=0, backward=False):
    """Question 1: the block's structure and its output with weights given by name;
    Question 3 (``backward``): its input and parameter gradients."""
    block = mod.ResidualBlock(in_channels, middle, out_channels, downsample=downsample,
                              dtype=np.float64)
    out = {} if backward else {"state_dict keys": keys_and_shapes(block),
                               "convolutions": conv_layout(block)}
    init_by_name(block, seed)
    y = block(normal(seed + 1, *shape))
    if not backward:
        out["output (same weights)"] = y
        return out
    out["dx"] = block.backward(normal(seed + 2, *np.shape(y)))
    out["parameter gradients"] = param_grads(block)
    return out


def explain_block(mod, params, v):
    exp = {}
    if "convolutions" in v and params["downsample"]:
        lay = v["convolutions"]
        exp["convolutions"] = Expected(lay, mistakes=[
            ("the stride is on the wrong 1x1 convolution: the seed (like the paper) downsamples "
             "at the first 1x1 of the main path", _moved_stride(lay, "layer.2.0")),
            ("the seed puts the stride on the first 1x1, not on the 3x3 (that is "
             "torchvision's later 'v1.5')", _moved_stride(lay, "layer.1.0"))])
    if "output (same weights)" not in v:        # Question 3: the backward pass
        block = mod.ResidualBlock(params["in_channels"], params["middle"], params["out_channels"],
                                  downsample=params["downsample"], dtype=np.float64)
        init_by_name(block, params.get("seed", 0))
        x = normal(params.get("seed", 0) + 1, *params["shape"])
        y = block(x)
        g = normal(params.get("seed", 0) + 2, *y.shape)
        main = block.layer.backward(g)
        shortcut = block._shortcut()
        side = g if shortcut is None else shortcut.backward(g)
        exp["dx"] = Expected(v["dx"], mistakes=[
            ("the shortcut's gradient is missing: x feeds both paths, so its gradient is the "
             "sum of the two", main),
            ("the main path's gradient is missing: x feeds both paths", side)])
    return exp


def _block_cases(downsample, backward=False):
    cases = [Case(f"in 8, middle 4, out 16, input 7x5, downsample={downsample}",
                  dict(in_channels=8, middle=4, out_channels=16, downsample=downsample,
                       shape=(2, 7, 5, 8), seed=1)),
             Case(f"in 16, middle 4, out 16, input 4x6, downsample={downsample}",
                  dict(in_channels=16, middle=4, out_channels=16, downsample=downsample,
                       shape=(2, 4, 6, 16), seed=2))]
    return cases


def _hidden_block(downsample):
    def gen(rng):
        i, m, o = (int(v) for v in rng.integers(2, 9, 3))
        shape = (2, int(rng.integers(2, 7)), int(rng.integers(2, 7)), i)
        return [Case(f"random in {i}, middle {m}, out {o}, input {shape[1]}x{shape[2]}, "
                     f"downsample={d}",
                     dict(in_channels=i, middle=m, out_channels=o, downsample=d, shape=shape,
                          seed=int(rng.integers(1 << 30))))
                for d in ([downsample] if downsample is not None else [True, False])]
    return gen


def run_block_backward(mod, **kw):
    return run_block(mod, backward=True, **kw)


# ------------------------------------------------------------------ Question 2
def _block_summary(block):
    first, last = block.layer[0][0], block.layer[2][0]
    return (f"ResidualBlock(in_channels={first.in_channels}, middle_channels={first.out_channels},"
            f" out_channels={last.out_channels}, downsample={block.downsample})")


def run_blanks(mod):
    model = mod.ResNet50_layer4()
    named = dict(model.named_modules())
    out = {}
    conv, bn, pool = named["layer1.0"], named["layer1.1"], named["layer1.3"]
    for attr in ("in_channels", "out_channels", "kernel_size", "stride", "padding"):
        out[f"layer1.0 Conv2d {attr}"] = str(getattr(conv, attr))
    out["layer1.1 BatchNorm2d num_features"] = str(bn.num_features)
    for attr in ("kernel_size", "stride", "padding"):
        out[f"layer1.3 MaxPool2d {attr}"] = str(getattr(pool, attr))
    for k in range(3):
        block = named[f"layer2.{k}"]
        first, last = block.layer[0][0], block.layer[2][0]
        out[f"layer2.{k} in_channels"] = str(first.in_channels)
        out[f"layer2.{k} middle_channels"] = str(first.out_channels)
        out[f"layer2.{k} out_channels"] = str(last.out_channels)
        out[f"layer2.{k} downsample"] = str(block.downsample)
    out["fc in_features"] = str(model.fc.in_features)
    out["fc out_features"] = str(model.fc.out_features)
    out["avgpool kernel_size"] = str(model.avgpool.kernel_size)
    out["avgpool stride"] = str(model.avgpool.stride)
    return out


def run_stage(mod, stage, seed=0):
    """The stage's structure in the whole model (every block, key and convolution), then
    its first two blocks in float64 with weights given by name: their output, input
    gradient and parameter gradients (the later blocks repeat the second's code), on
    the input a 32x32 image gives them."""
    from ..nn import Sequential
    model = mod.ResNet50_layer4()
    state = model.state_dict()
    blocks = [b for name, b in model.named_modules()
              if name.startswith(stage + ".") and name.count(".") == 1]
    shape = _stage_input(model, stage)
    out = {f"{stage} blocks": [_block_summary(b) for b in blocks],
           f"{stage} state_dict keys": [f"{k} {tuple(v.shape)}" for k, v in state.items()
                                        if k.startswith(stage + ".")],
           "state_dict keys (the seed's 373)": np.int64(len(state)),
           "parameters (the seed's 14,750,730)": np.int64(count_params(model)),
           f"{stage} convolutions": conv_layout(getattr(model, stage), stage + ".")}
    part = Sequential(*blocks[:2]).to(np.float64)
    init_by_name(part, seed)
    y = part(normal(seed + 1, 2, *shape))
    out[f"{stage}.0-1 output (same weights)"] = y
    out[f"{stage}.0-1 input gradient"] = part.backward(normal(seed + 2, *np.shape(y)))
    out[f"{stage}.0-1 parameter gradients"] = param_grads(part)
    return out


def _stage_input(model, stage, size=32):
    """(H, W, C) of a size x size image when it reaches ``stage``: through the convolutions
    and pools of the earlier stages (their main paths; the shortcuts match them)."""
    from ..nn import Conv2d, MaxPool2d
    h, w, c = size, size, 3
    for earlier in ("layer1", "layer2", "layer3")[:int(stage[-1]) - 1]:
        for name, m in getattr(model, earlier).named_modules():
            if isinstance(m, (Conv2d, MaxPool2d)) and not any(
                    s in name for s in ("make_equal_channel", "downsize")):
                (kh, kw), (sh, sw), (ph, pw) = m.kernel_size, m.stride, m.padding
                h, w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
                c = m.out_channels if isinstance(m, Conv2d) else c
    return h, w, c


def _stage(stage):
    def run(mod, seed=0):
        return run_stage(mod, stage, seed)
    return run


_BLOCK_DOC = (("models/blocks.py", "ResidualBlock"),)      # its docstring gives Question 1
_MODEL_DOC = (("models/seed.py", "ResNet50_layer4"),)     # and Question 2's answers

TASKS = [
    Task("q1_downsample", "Question 1: the bottleneck block, downsample=True", 20,
         "models/blocks.py", run_block, _block_cases(True), explain=explain_block,
         question="Implement the \"bottle neck building block\" part (20 points). Hint: think "
                  "about the difference between downsample True and False. How do we make the "
                  "difference by code?",
         hidden=_hidden_block(True), redact=_BLOCK_DOC),
    Task("q1_no_downsample", "Question 1: the bottleneck block, downsample=False", 20,
         "models/blocks.py", run_block, _block_cases(False), explain=explain_block,
         question="Implement the \"bottle neck building block\" part (20 points), the branch "
                  "that keeps the image size.",
         hidden=_hidden_block(False), redact=_BLOCK_DOC),
    Task("q2_blanks", "Question 2: ResNet50_layer4, the blanks (1 point each)", 25,
         "models/seed.py", run_blanks, [Case("the seed's ResNet50_layer4(num_classes=10)")],
         question="Understand the ResNet architecture and fill in the blanks below (1 point "
                  "per blank). Hint: how many classes are in the CIFAR-10 dataset?",
         blanks=("dtype", "rng", "inplace"), redact=_MODEL_DOC),
    Task("q2_layer3", "Question 2: layer3", 20, "models/seed.py", _stage("layer3"),
         [Case("the seed's model; its first two blocks on the 32x32 input size, float64")],
         question="Fill in layer3 (20 points); you can refer to layer2 above.",
         redact=_MODEL_DOC),
    Task("q2_layer4", "Question 2: layer4", 20, "models/seed.py", _stage("layer4"),
         [Case("the seed's model; its first two blocks on the 32x32 input size, float64")],
         question="Fill in layer4 (20 points); you can refer to layer2 above.",
         redact=_MODEL_DOC),
    Task("q3_block_backward", "Extra (minitorch_cnn's, outside the seed's 105): the block's "
         "backward pass", 20, "models/blocks.py", run_block_backward,
         _block_cases(True) + _block_cases(False)[:1], explain=explain_block,
         question="PyTorch's autograd did this for the seed; here you may write it: send the "
                  "gradient down both paths and add the two input gradients.",
         hidden=_hidden_block(None), extra=True, redact=_BLOCK_DOC),
]

# the tasks each one's checks run through (in a student copy, write those first)
_Q1 = ("q1_downsample", "q1_no_downsample")
USES = {"q3_block_backward": _Q1, "q2_blanks": _Q1 + ("q2_layer3", "q2_layer4"),
        "q2_layer3": _Q1 + ("q3_block_backward", "q2_blanks", "q2_layer4"),
        "q2_layer4": _Q1 + ("q3_block_backward", "q2_blanks", "q2_layer3")}
for _t in TASKS:
    _t.uses = USES.get(_t.name, ())
