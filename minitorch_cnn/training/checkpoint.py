"""Checkpoints: one ``.npz`` file, written atomically, loadable without pickle.

Layout of the archive (every entry a numpy array):

* ``model/<key>``   the model's ``state_dict()`` with PyTorch's key names;
* ``optim/<key>``   the optimizer's flat ``state_dict()``;
* ``sched/<key>``   the learning-rate schedule's ``state_dict()``;
* ``meta.json``     a 0-d string: configuration, epoch/step position, metrics.

A checkpoint is first written to a temporary file in the same folder, flushed
to disk, then renamed over the target (``os.replace`` is atomic), so a crash
or Ctrl-C while saving leaves the previous checkpoint intact, never half of a
new one. With ``keep_previous=True`` (what the trainer does) the file being
replaced is kept as ``<name>.prev.npz`` (``checkpoint.prev.npz``), so that a
newest file damaged anyway -- a file system without atomic rename, a disk
that lied about ``fsync`` -- still leaves the one before it:
:func:`load_for_resume` falls back to it with a warning.

Fault injection (tests only): the environment variable ``MINITORCH_CNN_FAULT``
(:data:`FAULT_ENV`) makes the writer fail on purpose at a named point of a
write, so tests can prove what a crash there leaves on disk. Its value is
``ACTION@POINT:N[,...]``: at the N-th time (1-based, counted per process) the
writer reaches POINT, it does ACTION. POINTs, in the order of a write:
``written`` (the temporary file is complete and fsynced, nothing renamed),
``rotated`` (the old file is now also ``.prev.npz``, the new one not yet in
place), ``replaced`` (the new file is in place). ACTIONs: ``kill`` (SIGKILL
this process, as a power cut would), ``truncate`` (cut the target file to half
its length, then SIGKILL: what a non-atomic rename can leave), ``enospc``
(raise ``OSError(ENOSPC)``, a full disk). Unset, it costs one dictionary
look-up per write.
"""
import errno
import json
import os
import shutil
import signal
import tempfile

import numpy as np

SECTIONS = ("model", "optim", "sched")
FAULT_ENV = "MINITORCH_CNN_FAULT"
_fault_counts = {}


class CheckpointError(RuntimeError):
    """A checkpoint could not be written (a full disk, a folder that is not writable)."""


def previous_path(path):
    """``run/checkpoint.npz`` -> ``run/checkpoint.prev.npz``: the checkpoint before it."""
    root, ext = os.path.splitext(os.fspath(path))
    return f"{root}.prev{ext or '.npz'}"


def temporary_prefix(path):
    """The name prefix of the temporary files a write of ``path`` creates."""
    return f".{os.path.basename(os.fspath(path))}."


def _fault(point, path):
    """Fault injection for tests: see the module docstring (``MINITORCH_CNN_FAULT``)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for item in spec.split(","):
        action, _, rest = item.strip().partition("@")
        where, _, nth = rest.partition(":")
        if where != point:
            continue
        _fault_counts[item] = _fault_counts.get(item, 0) + 1
        if _fault_counts[item] != int(nth or 1):
            continue
        if action == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        if action == "truncate":
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
        if action in ("kill", "truncate"):
            os.kill(os.getpid(), signal.SIGKILL)
        raise ValueError(f"{FAULT_ENV}: unknown action {action!r} in {spec!r}")


def _fsync_folder(folder):
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _keep_as_previous(path, folder):
    """Make the current ``path`` also ``previous_path(path)``, without a moment when
    ``path`` is missing: a hard link renamed over the old previous file (a copy where
    the file system has no hard links)."""
    prev = previous_path(path)
    fd, link = tempfile.mkstemp(dir=folder, prefix=temporary_prefix(prev), suffix=".tmp")
    os.close(fd)
    os.remove(link)
    try:
        os.link(path, link)
    except OSError:
        shutil.copyfile(path, link)
    os.replace(link, prev)


def atomic_savez(path, arrays, keep_previous=False):
    """Write ``{name: array}`` to ``path`` as an uncompressed .npz, atomically.

    ``keep_previous``: the file it replaces stays readable as ``previous_path(path)``.
    Any error (a full disk: ``OSError`` ENOSPC) leaves ``path`` and its previous file
    as they were and removes the temporary file.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=temporary_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        _fault("written", tmp)
        if keep_previous and os.path.exists(path):
            _keep_as_previous(path, folder)
            _fault("rotated", tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_folder(folder)
    _fault("replaced", path)


def save_checkpoint(path, model, optimizer=None, scheduler=None, meta=None, keep_previous=False):
    """Save model (+ optimizer, schedule, JSON-serialisable meta) to ``path`` atomically."""
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    for prefix, obj in (("optim", optimizer), ("sched", scheduler)):
        if obj is not None:
            arrays.update({f"{prefix}/{k}": np.asarray(v) for k, v in obj.state_dict().items()})
    arrays["meta.json"] = np.array(json.dumps(meta or {}))
    atomic_savez(path, arrays, keep_previous=keep_previous)


def load_checkpoint(path):
    """Read a checkpoint: ``{"model": {...}, "optim": {...}, "sched": {...}, "meta": {...}}``.

    A plain ``.npz`` of a state_dict (PyTorch keys, as ``interop`` exports)
    is accepted too: all its arrays become the "model" section. A missing file
    raises FileNotFoundError, an unreadable one (truncated, not an archive, a
    failed CRC, bad JSON) a ValueError; both name the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            entries = {name: archive[name] for name in archive.files}
        meta = json.loads(str(entries.pop("meta.json"))) if "meta.json" in entries else {}
        if not isinstance(meta, dict):
            raise ValueError("meta.json is not a JSON object")
    except Exception as err:  # zipfile.BadZipFile, ValueError, EOFError, JSONDecodeError ...
        raise ValueError(f"checkpoint {path!r} is not a readable .npz archive "
                         f"({type(err).__name__}: {err})") from err
    out = {section: {} for section in SECTIONS}
    out["meta"] = meta
    sectioned = any(name.split("/", 1)[0] in SECTIONS and "/" in name for name in entries)
    for name, value in entries.items():
        section, _, key = name.partition("/")
        if sectioned and section in SECTIONS and key:
            out[section][key] = value
        else:
            out["model"][name] = value
    return out


def load_for_resume(path, warn=print):
    """``(state, path read)``: the checkpoint at ``path`` or, when that one is missing or
    unreadable and ``previous_path(path)`` is readable, the previous one, with a
    warning through ``warn``. Otherwise the error of ``path``."""
    path = os.fspath(path)
    try:
        return load_checkpoint(path), path
    except (FileNotFoundError, ValueError) as err:
        prev = previous_path(path)
        if not os.path.isfile(prev):
            raise
        state = load_checkpoint(prev)   # its own error if both are damaged
        warn(f"warning: {err}; resuming from the previous checkpoint {prev} instead")
        return state, prev


def prepare_out_dir(out, path, checkpoint_bytes):
    """Before a run's first step: the folder ``out`` exists or can be made, is writable, and
    holds three checkpoints of ``checkpoint_bytes`` (the newest ``path``, its previous one
    and one being written), counting the ones already there; temporary files a crash left
    of ``path`` are removed. A CheckpointError says what is wrong otherwise."""
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as err:
        raise CheckpointError(f"--out {out}: cannot write there ({err.strerror or err})") from err
    mine = (path, previous_path(path))
    for name in os.listdir(out):  # a write cut short by a crash left its temporary file
        if name.endswith(".tmp") and any(name.startswith(temporary_prefix(p)) for p in mine):
            os.remove(os.path.join(out, name))
    need = 3 * checkpoint_bytes - sum(os.path.getsize(p) for p in mine if os.path.isfile(p))
    free = shutil.disk_usage(out).free
    if free < need:
        raise CheckpointError(
            f"--out {out}: {free / 2**20:.1f} MiB free, but checkpoints need about "
            f"{need / 2**20:.1f} MiB more (three of {checkpoint_bytes / 2**20:.1f} MiB "
            "may exist at once: the newest, the previous and one being written)")
