"""Checkpoints: one ``.npz`` file, written atomically, loadable without pickle.

Layout of the archive (every entry a numpy array):

* ``model/<key>``   the model's ``state_dict()`` with PyTorch's key names;
* ``optim/<key>``   the optimizer's flat ``state_dict()``;
* ``sched/<key>``   the learning-rate schedule's ``state_dict()``;
* ``meta.json``     a 0-d string: configuration, epoch/step position, metrics.

A checkpoint is first written to a temporary file in the same folder, flushed
to disk, then renamed over the target (``os.replace`` is atomic), so a crash
or Ctrl-C while saving leaves the previous checkpoint intact, never half of a
new one.
"""
import json
import os
import tempfile

import numpy as np

SECTIONS = ("model", "optim", "sched")


def atomic_savez(path, arrays):
    """Write ``{name: array}`` to ``path`` as an uncompressed .npz, atomically."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_checkpoint(path, model, optimizer=None, scheduler=None, meta=None):
    """Save model (+ optimizer, schedule, JSON-serialisable meta) to ``path`` atomically."""
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    for prefix, obj in (("optim", optimizer), ("sched", scheduler)):
        if obj is not None:
            arrays.update({f"{prefix}/{k}": np.asarray(v) for k, v in obj.state_dict().items()})
    arrays["meta.json"] = np.array(json.dumps(meta or {}))
    atomic_savez(path, arrays)


def load_checkpoint(path):
    """Read a checkpoint: ``{"model": {...}, "optim": {...}, "sched": {...}, "meta": {...}}``.

    A plain ``.npz`` of a state_dict (PyTorch keys, as ``interop`` exports)
    is accepted too: all its arrays become the "model" section.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            entries = {name: archive[name] for name in archive.files}
    except Exception as err:  # zipfile.BadZipFile, ValueError, EOFError ...
        raise ValueError(f"checkpoint {path!r} is not a readable .npz archive ({err})") from err
    out = {section: {} for section in SECTIONS}
    out["meta"] = json.loads(str(entries.pop("meta.json"))) if "meta.json" in entries else {}
    sectioned = any(name.split("/", 1)[0] in SECTIONS and "/" in name for name in entries)
    for name, value in entries.items():
        section, _, key = name.partition("/")
        if sectioned and section in SECTIONS and key:
            out[section][key] = value
        else:
            out["model"][name] = value
    return out
