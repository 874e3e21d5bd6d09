"""CIFAR-10 from its official python release.

The official download, ``cifar-10-python.tar.gz`` (163 MB), unpacks to::

    cifar-10-batches-py/
        data_batch_1 ... data_batch_5   10,000 training images each
        test_batch                      10,000 test images
        batches.meta                    b"label_names": the 10 class names

Each batch is a pickled dict: ``b"data"`` is ``(10000, 3072)`` uint8, one row
per image holding the red, then green, then blue 32x32 plane (row-major), and
``b"labels"`` a list of ints in 0..9. :class:`CIFAR10` reads either the
unpacked folder or the archive itself (members are read straight from the tar,
nothing is extracted) and returns NHWC uint8 images.

The batches are pickles, so they are read with a restricted unpickler that
only rebuilds numpy arrays and plain Python containers: a tampered file
cannot run code.
"""
import hashlib
import importlib
import io
import os
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request
import zlib

import numpy as np

from .dataset import ArrayDataset

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")

_HOW_TO_GET_TEST = (
    "This copy of CIFAR-10 has no test split. Either get the official archive "
    f"({URL}; CIFAR10(new_folder, train=False, download=True) fetches it into an empty "
    "folder) and point root at it or at the folder it unpacks to, or hold out part of the "
    "training set instead: train, val = train_val_split(CIFAR10(root, train=True), n_val=5000).")


# ----------------------------------------------------------------- unpickling

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # protocol-2 pickles of bytes written by Python 3
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays and builtins but no other object."""

    def find_class(self, module, name):
        key = (module.replace("numpy._core", "numpy.core"), name)
        if key not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if key[0].startswith("numpy.core."):  # numpy >= 2 keeps these in numpy._core
            for mod in (key[0].replace("numpy.core", "numpy._core"), key[0]):
                try:
                    return getattr(importlib.import_module(mod), name)
                except (ImportError, AttributeError):
                    pass
        return getattr(importlib.import_module(key[0]), name)


def _unpickle(raw, where):
    """Load one pickled dict from bytes; ``where`` names the file in errors."""
    try:
        obj = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # EOFError, UnpicklingError, ValueError ... on damaged files
        raise ValueError(f"{where}: cannot be read as a CIFAR-10 batch, the file is "
                         f"truncated or corrupt ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected a pickled dict, found {type(obj).__name__}")
    return obj


def _decode_batch(obj, where):
    """Check one batch dict and return ``(images NHWC uint8, labels int64)``."""
    if b"data" not in obj or b"labels" not in obj:
        keys = sorted(k.decode() if isinstance(k, bytes) else str(k) for k in obj)
        raise ValueError(f"{where}: not a CIFAR-10 batch, missing key b'data' or b'labels' "
                         f"(found keys {keys})")
    data = np.asarray(obj[b"data"])
    labels = np.asarray(obj[b"labels"])
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{where}: b'data' has shape {data.shape} (dtype {data.dtype}); "
                         f"expected (N, 3072) = N images of 3 x 32 x 32 bytes")
    if data.dtype != np.uint8:
        if not np.issubdtype(data.dtype, np.integer) or (
                data.size and (data.min() < 0 or data.max() > 255)):
            raise ValueError(f"{where}: b'data' must hold bytes 0..255, got dtype {data.dtype}")
        data = data.astype(np.uint8)
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{where}: {labels.size} labels for {data.shape[0]} images")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer)
                        or labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{where}: labels must be integers in 0..9, got "
                         f"dtype {labels.dtype}, range [{labels.min()}, {labels.max()}]")
    # a row is [R plane | G plane | B plane], each 32 x 32 row-major -> NCHW -> NHWC
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def _decode_meta(obj, where):
    names = obj.get(b"label_names")
    if not isinstance(names, (list, tuple)) or len(names) != 10:
        raise ValueError(f"{where}: b'label_names' should list 10 class names, got {names!r:.80}")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


# ---------------------------------------------------------------- the sources

class _FolderSource:
    """The unpacked ``cifar-10-batches-py`` folder."""

    def __init__(self, folder):
        self.folder = folder

    def __str__(self):
        return self.folder

    def has(self, name):
        return os.path.isfile(os.path.join(self.folder, name))

    def read(self, name):
        path = os.path.join(self.folder, name)
        try:
            with open(path, "rb") as f:
                return f.read(), path
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: missing CIFAR-10 file {name!r} in {self.folder}"
                                    ) from None


class _TarSource:
    """The official ``cifar-10-python.tar.gz``, read in one streaming pass.

    Only the members named in ``wanted`` are kept (as bytes); the archive is
    never unpacked to disk. Member folders are ignored, so any prefix works.
    """

    def __init__(self, path, wanted):
        self.path = path
        self.names = set()
        self.data = {}
        try:
            with tarfile.open(path, "r|*") as tar:
                for m in tar:
                    if not m.isfile():
                        continue
                    name = os.path.basename(m.name)
                    self.names.add(name)
                    if name in wanted:
                        self.data[name] = tar.extractfile(m).read()
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            raise ValueError(f"{path}: not a readable CIFAR-10 tar archive, the file is "
                             f"truncated or corrupt ({type(e).__name__}: {e})") from None

    def __str__(self):
        return self.path

    def has(self, name):
        return name in self.names

    def read(self, name):
        where = f"{self.path}:{FOLDER_NAME}/{name}"
        if name not in self.data:
            raise FileNotFoundError(f"{where}: missing CIFAR-10 file {name!r} in archive "
                                    f"{self.path}")
        return self.data[name], where


def _find_source(root, wanted):
    """Where the batches are: the folder, ``root`` itself, or the archive."""
    if os.path.isfile(root):
        return _TarSource(root, wanted)
    candidates = [os.path.join(root, FOLDER_NAME), root]
    for folder in candidates:
        if any(os.path.isfile(os.path.join(folder, f)) for f in TRAIN_FILES + (TEST_FILE,)):
            return _FolderSource(folder)
    archive = os.path.join(root, ARCHIVE_NAME)
    if os.path.isfile(archive):
        return _TarSource(archive, wanted)
    return None


# ------------------------------------------------------------------- download

def _md5(path, chunk=1 << 20):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def download_cifar10(root, url=None, md5=None, timeout=60):
    """Fetch the official CIFAR-10 archive into ``root`` and check its MD5.

    Returns the archive's path, ``root/cifar-10-python.tar.gz``. Does nothing
    when a file with the right checksum is already there. The archive is
    written to a ``.part`` file first and only renamed once its MD5 matches,
    so an interrupted or corrupted download never looks like a good one.
    Raises ``ConnectionError`` when the server cannot be reached and
    ``ValueError`` on a checksum mismatch.
    """
    url = URL if url is None else url
    md5 = MD5 if md5 is None else md5
    root = os.fspath(root)
    os.makedirs(root, exist_ok=True)
    path = os.path.join(root, ARCHIVE_NAME)
    if os.path.isfile(path) and _md5(path) == md5:
        return path
    part = path + ".part"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as f:
            shutil.copyfileobj(response, f, 1 << 20)
    except (urllib.error.URLError, OSError) as e:
        if os.path.exists(part):
            os.remove(part)
        raise ConnectionError(
            f"could not download CIFAR-10 from {url} ({type(e).__name__}: {e}). Check the "
            f"network, or download the file by hand and put it at {path} "
            f"(then use download=False).") from e
    got = _md5(part)
    if got != md5:
        os.remove(part)
        raise ValueError(f"downloaded {url} but its MD5 is {got}, expected {md5}: the "
                         f"download is incomplete or not the official archive; removed it, "
                         f"try again")
    os.replace(part, path)
    return path


# -------------------------------------------------------------------- dataset

class CIFAR10(ArrayDataset):
    """CIFAR-10, train (50,000 images) or test (10,000) split, in memory.

    Parameters
    ----------
    root : str or path
        Any of: the folder holding ``cifar-10-batches-py/``; that folder
        itself; the ``cifar-10-python.tar.gz`` archive; a folder holding the
        archive. An unpacked folder wins over an archive next to it.
    train : bool
        ``data_batch_1..5`` (True) or ``test_batch`` (False).
    download : bool
        If nothing is found under ``root``, download the official archive
        there (checked against its MD5) and read from it.

    Attributes: ``images`` ``(N, 32, 32, 3)`` uint8 NHWC RGB, ``labels``
    ``(N,)`` int64, ``classes`` (from ``batches.meta``, or the standard
    names when that file is absent), ``source`` (the folder or archive read).

    Errors name the file at fault: ``FileNotFoundError`` for a missing root
    or batch, ``ValueError`` for a truncated, corrupt or wrongly shaped one.
    """

    def __init__(self, root, train=True, download=False):
        self.root = os.fspath(root)
        self.train = bool(train)
        names = TRAIN_FILES if self.train else (TEST_FILE,)
        wanted = set(names) | {META_FILE}
        source = _find_source(self.root, wanted)
        if source is None and download:
            folder = os.path.dirname(self.root) if self.root.endswith(".tar.gz") else self.root
            source = _TarSource(download_cifar10(folder), wanted)
        if source is None:
            what = ("does not exist" if not os.path.exists(self.root) else
                    f"holds neither {FOLDER_NAME}/ (data_batch_1..5, test_batch) "
                    f"nor {ARCHIVE_NAME}")
            raise FileNotFoundError(
                f"CIFAR-10 root {self.root} {what}. Pass download=True to fetch the official "
                f"archive ({URL}), or point root at an existing copy.")
        if not self.train and not source.has(TEST_FILE):
            raise FileNotFoundError(f"{source}: no {TEST_FILE} in it. " + _HOW_TO_GET_TEST)
        images, labels = [], []
        for name in names:
            raw, where = source.read(name)
            im, lb = _decode_batch(_unpickle(raw, where), where)
            images.append(im)
            labels.append(lb)
        classes = list(CLASSES)
        if source.has(META_FILE):
            raw, where = source.read(META_FILE)
            classes = _decode_meta(_unpickle(raw, where), where)
        self.source = str(source)
        super().__init__(np.concatenate(images), np.concatenate(labels), classes)

    def __repr__(self):
        split = "train" if self.train else "test"
        return f"CIFAR10({split}, n={len(self)}, source={self.source!r})"
