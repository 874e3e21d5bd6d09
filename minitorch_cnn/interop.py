"""Moving weights between PyTorch and minitorch_cnn.

Parameters keep PyTorch's names and shapes (only activations are NHWC), so
a PyTorch ``state_dict`` is loaded as it is, with no transposes:

* :func:`load_state_dict` -- into a model, from a dict of numpy arrays (or
  torch tensors), an ``.npz`` file, or a checkpoint written by
  ``torch.save(model.state_dict(), path)`` (such as the seed's
  ``resnet50_epoch285.ckpt``; reading that needs torch);
* :func:`read_state_dict` -- the same sources, returned as ``{key: ndarray}``;
* :func:`export_npz` -- our ``state_dict`` to an ``.npz`` with PyTorch keys,
  which PyTorch loads with
  ``model.load_state_dict({k: torch.from_numpy(v) for k, v in np.load(path).items()})``;
* :func:`to_torch_state_dict` -- our ``state_dict`` as torch tensors;
* :func:`to_torch_module` -- a whole model rebuilt from ``torch.nn`` layers,
  with our weights: a PyTorch twin (an oracle, and the benchmarks' baseline).

Loading is all or nothing: missing, unexpected and mis-shaped keys are all
listed in one :class:`StateDictMismatchError`, raised before anything is
written.
"""
import os
import zipfile

import numpy as np

__all__ = ["StateDictMismatchError", "load_state_dict", "read_state_dict", "read_torch_checkpoint",
           "export_npz", "to_torch_state_dict", "to_torch_module", "TORCH_TO_NPZ_RECIPE"]

TORCH_TO_NPZ_RECIPE = (
    "python -c \"import sys, numpy as np, torch; "
    "sd = torch.load(sys.argv[1], map_location='cpu', weights_only=True); "
    "sd = sd.get('state_dict', sd); "
    "np.savez(sys.argv[2], **{{k: v.numpy() for k, v in sd.items()}})\" {src} {dst}")


class StateDictMismatchError(ValueError):
    """The keys or shapes of a state_dict do not fit the model; nothing was loaded.

    ``missing``, ``unexpected`` (lists of keys) and ``mismatched`` (a list
    of ``(key, expected_shape, given_shape)``) say exactly what differs.
    """

    def __init__(self, model_name, missing, unexpected, mismatched):
        self.missing, self.unexpected, self.mismatched = list(missing), list(unexpected), list(mismatched)
        parts = []
        if self.missing:
            parts.append(f"missing keys ({len(self.missing)}): {', '.join(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected keys ({len(self.unexpected)}): {', '.join(self.unexpected)}")
        if self.mismatched:
            shapes = "; ".join(f"{k}: expected {tuple(e)}, got {tuple(g)}" for k, e, g in self.mismatched)
            parts.append(f"mis-shaped keys ({len(self.mismatched)}): {shapes}")
        super().__init__(f"cannot load the state_dict into {model_name}; nothing was loaded.\n  "
                         + "\n  ".join(parts))


# ----------------------------------------------------------------------- reading
def _to_numpy(value):
    """A numpy array from a numpy array, a torch tensor (any device) or a scalar."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor, without importing torch
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _unwrap(obj, source):
    """A checkpoint may wrap the state_dict: {'state_dict': ...} or {'model': ...}."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(k, str) for k in inner):
                if all(hasattr(v, "shape") for v in inner.values()):
                    return inner
        return obj
    if hasattr(obj, "state_dict"):
        raise TypeError(f"{source}: holds a whole pickled module, not a state_dict; save "
                        "torch_model.state_dict() instead")
    raise TypeError(f"{source}: expected a state_dict (a dict of arrays), got {type(obj).__name__}")


def _strip_data_parallel(sd):
    """Keys saved from nn.DataParallel all start with 'module.'; drop that prefix."""
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module."):]: v for k, v in sd.items()}
    return sd


def _is_npz(path):
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    return bool(names) and all(n.endswith(".npy") for n in names)


def read_torch_checkpoint(path):
    """``{key: ndarray}`` from a file written by ``torch.save(model.state_dict(), path)``.

    Needs torch; loads with ``weights_only=True`` (tensors only, no arbitrary
    pickled code) on the CPU. Without torch, raises ImportError saying how to
    convert the file to ``.npz`` on a machine that has torch.
    """
    path = os.fspath(path)
    try:
        import torch
    except ImportError:
        dst = os.path.splitext(path)[0] + ".npz"
        raise ImportError(
            f"{path} is a PyTorch checkpoint and reading it needs torch, which is not installed. "
            f"Either install it (pip install torch), or convert the file to .npz where torch is "
            f"available:\n    {TORCH_TO_NPZ_RECIPE.format(src=path, dst=dst)}\n"
            f"and load {dst} instead (minitorch_cnn.interop.load_state_dict(model, '{dst}')).") from None
    obj = torch.load(path, map_location="cpu", weights_only=True)
    sd = _unwrap(obj, path)
    return {k: _to_numpy(v) for k, v in sd.items()}


def read_state_dict(source):
    """``{key: ndarray}`` from a dict (numpy arrays or torch tensors), an ``.npz`` or a torch checkpoint.

    Files are recognised by content, not by extension: an ``.npz`` is a zip
    of ``.npy`` members; anything else is handed to torch. Keys saved from
    ``nn.DataParallel`` lose their ``module.`` prefix.
    """
    if isinstance(source, dict):
        sd = {str(k): _to_numpy(v) for k, v in _unwrap(source, "state_dict").items()}
    elif isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such checkpoint: {path}")
        if _is_npz(path):
            with np.load(path, allow_pickle=False) as z:
                sd = {k: z[k] for k in z.files}
        else:
            sd = read_torch_checkpoint(path)
    else:
        raise TypeError(f"expected a dict of arrays or a path, got {type(source).__name__}")
    return _strip_data_parallel(sd)


# ----------------------------------------------------------------------- loading
def check_state_dict(model, state_dict):
    """Return (missing, unexpected, mismatched) of ``state_dict`` against ``model``'s own."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [(k, own[k].shape, np.shape(state_dict[k])) for k in own
                  if k in state_dict and np.shape(state_dict[k]) != own[k].shape]
    return missing, unexpected, mismatched


def load_state_dict(model, source, strict=True):
    """Load PyTorch weights into ``model`` (all or nothing) and return it.

    ``source``: a dict of arrays/tensors, an ``.npz`` path or a torch
    checkpoint path. Values are cast to the model's dtypes. With
    ``strict=True`` any missing or unexpected key is an error; mis-shaped
    keys always are. Errors are :class:`StateDictMismatchError` listing every
    offending key.
    """
    sd = read_state_dict(source)
    missing, unexpected, mismatched = check_state_dict(model, sd)
    if mismatched or (strict and (missing or unexpected)):
        raise StateDictMismatchError(type(model).__name__, missing if strict else [],
                                     unexpected if strict else [], mismatched)
    if not strict:
        sd = {k: v for k, v in sd.items() if k not in unexpected}
    model.load_state_dict(sd, strict=strict)
    return model


# ----------------------------------------------------------------------- export
def export_npz(model, path, compressed=False):
    """Write ``model.state_dict()`` to ``path`` (.npz) with PyTorch's keys and shapes; returns the path."""
    path = os.fspath(path)
    save = np.savez_compressed if compressed else np.savez
    save(path, **model.state_dict())
    return path if path.endswith(".npz") else path + ".npz"


def to_torch_state_dict(model):
    """``{key: torch.Tensor}`` for ``torch_model.load_state_dict(...)`` (needs torch)."""
    import torch
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in model.state_dict().items()}


# -------------------------------------------------------------- a PyTorch twin
def to_torch_module(model):
    """A ``torch.nn.Module`` that computes what ``model`` computes, with its weights (needs torch).

    The twin takes NCHW input (PyTorch's layout) and has the same
    ``state_dict`` keys, shapes, dtype and train/eval mode; its layers are
    PyTorch's own (``torch.nn.Conv2d``, ``BatchNorm2d``, ...), and a model or
    block runs its own ``forward`` code on them (the structure is read from
    nowhere else), so it is an independent oracle for a whole model's layers
    and lets the same network train under both frameworks (the benchmarks do).
    Every layer type of ``minitorch_cnn.nn`` and any module made of them is
    understood; another layer raises TypeError.
    """
    import torch
    twin = _twin(model, _torch_classes())
    dtype = next(iter(model.state_dict().values())).dtype
    twin.to(torch.float64 if dtype == np.float64 else torch.float32)
    twin.load_state_dict(to_torch_state_dict(model))
    ours = dict(model.named_parameters())
    for name, p in twin.named_parameters():   # frozen stays frozen
        p.requires_grad_(bool(ours[name].requires_grad))
    return twin.train(model.training)


def _twin(m, T):
    """The torch twin of ``m``: a torch.nn layer for each layer, and for a module made of
    others (a model, a block) a :class:`Forward` that runs ``m``'s own ``forward`` code on
    its children's twins, so the twin's structure is the forward's, written once."""
    from . import models, nn
    tnn = T.nn
    if isinstance(m, nn.Sequential):
        return tnn.Sequential(*(_twin(c, T) for c in m._modules.values()))
    simple = {
        nn.Conv2d: lambda: tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride,
                                      m.padding, bias=m.bias is not None),
        nn.BatchNorm2d: lambda: tnn.BatchNorm2d(m.num_features, m.eps, m.momentum),
        nn.ReLU: tnn.ReLU, nn.GELU: tnn.GELU, nn.Flatten: tnn.Flatten, nn.Identity: tnn.Identity,
        nn.MaxPool2d: lambda: tnn.MaxPool2d(m.kernel_size, m.stride, m.padding),
        nn.AvgPool2d: lambda: tnn.AvgPool2d(m.kernel_size, m.stride, m.padding),
        nn.AdaptiveAvgPool2d: lambda: tnn.AdaptiveAvgPool2d(m.output_size),
        nn.Linear: lambda: tnn.Linear(m.in_features, m.out_features, bias=m.bias is not None),
        nn.Scale: lambda: T.Scale(m.factor),
        models.ShortcutA: lambda: T.ShortcutA(m.in_channels, m.out_channels, m.stride,
                                              m.pad_before),
    }
    if type(m) in simple:
        return simple[type(m)]()
    if m._modules and not m._parameters and not m._buffers:
        return T.Forward(m, {name: _twin(c, T) for name, c in m._modules.items()})
    raise TypeError(f"to_torch_module: no PyTorch twin for {type(m).__name__}; expected a "
                    f"layer of minitorch_cnn.nn or a module made of such layers")


_TORCH_CLASSES = None


def _torch_classes():
    """The few torch modules a twin needs beyond torch.nn's (defined on first use)."""
    global _TORCH_CLASSES
    if _TORCH_CLASSES is not None:
        return _TORCH_CLASSES
    import types

    import torch
    import torch.nn.functional as F

    class Forward(torch.nn.Module):
        """A minitorch_cnn module's own ``forward`` code, run on the torch twins of its
        children: the code reads ``self.layer1`` (or ``self._modules``), and finds the twin."""

        def __init__(self, model, children):
            super().__init__()
            for name, child in children.items():
                self.add_module(name, child)
            view = object.__new__(type(model))             # model's attributes, twin children
            view.__dict__.update(model.__dict__, _modules=dict(children), **children)
            self.view = view

        def forward(self, x):
            return type(self.view).forward(self.view, x)

    class ShortcutA(torch.nn.Module):
        def __init__(self, cin, cout, stride, lo):
            super().__init__()
            self.pad, self.stride = (0, 0, 0, 0, lo, cout - cin - lo), stride

        def forward(self, x):
            return F.pad(x[:, :, ::self.stride, ::self.stride], self.pad)

    class Scale(torch.nn.Module):
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def forward(self, x):
            return x * self.factor

    _TORCH_CLASSES = types.SimpleNamespace(nn=torch.nn, Forward=Forward,
                                           ShortcutA=ShortcutA, Scale=Scale)
    return _TORCH_CLASSES
