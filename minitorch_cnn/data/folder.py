"""Images sorted into one folder per class, ``root/<class>/<image>``."""
import os

import numpy as np

from .dataset import ArrayDataset

EXTENSIONS = (".png", ".jpg", ".jpeg")


def _as_size(size):
    if isinstance(size, (int, np.integer)):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (height, width) with positive entries, got {size}")
    return size


class ImageFolder(ArrayDataset):
    """Every ``root/<class>/*.png|jpg|jpeg`` image, loaded into memory.

    Classes are the sub-folder names, sorted, so label ``i`` is
    ``classes[i]``; files are read in sorted order within a class. Images are
    converted to RGB with Pillow. Empty class folders are kept (their labels
    simply never occur) so that a train and a test folder with the same
    sub-folders agree on the labels; other files and hidden folders are
    ignored.

    Parameters
    ----------
    root : str or path
    size : int or (height, width)
        The size every image must have, default ``(32, 32)``.
    resize : bool
        Resize images of another size (bilinear) instead of rejecting them.

    Attributes: ``images`` ``(N, height, width, 3)`` uint8 NHWC, ``labels``
    ``(N,)`` int64, ``classes``, ``files`` (the path of each image).
    """

    def __init__(self, root, size=(32, 32), resize=False):
        from PIL import Image  # Pillow is only needed for this loader

        self.root = os.fspath(root)
        self.size = _as_size(size)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"ImageFolder root {self.root} is not a folder")
        classes = sorted(d.name for d in os.scandir(self.root)
                         if d.is_dir() and not d.name.startswith("."))
        if not classes:
            raise ValueError(f"ImageFolder root {self.root} has no class folders; expected "
                             f"{self.root}/<class>/<image>{'|'.join(EXTENSIONS)}")
        files, labels = [], []
        for label, cls in enumerate(classes):
            folder = os.path.join(self.root, cls)
            names = sorted(f for f in os.listdir(folder)
                           if f.lower().endswith(EXTENSIONS) and not f.startswith("."))
            files += [os.path.join(folder, f) for f in names]
            labels += [label] * len(names)
        if not files:
            raise ValueError(f"ImageFolder root {self.root}: the class folders {classes} hold "
                             f"no {'/'.join(EXTENSIONS)} images")
        h, w = self.size
        images = np.empty((len(files), h, w, 3), dtype=np.uint8)
        for i, path in enumerate(files):
            try:
                with Image.open(path) as img:
                    img = img.convert("RGB")
            except Exception as e:  # truncated or not an image at all
                raise ValueError(f"{path}: cannot read this image "
                                 f"({type(e).__name__}: {e})") from None
            if img.size != (w, h):  # Pillow sizes are (width, height)
                if not resize:
                    raise ValueError(
                        f"{path}: image is {img.size[1]}x{img.size[0]} (height x width), "
                        f"expected {h}x{w}; pass resize=True to resize it or size=... to "
                        f"change the expected size")
                img = img.resize((w, h), Image.BILINEAR)
            images[i] = np.asarray(img)
        self.files = files
        super().__init__(images, np.asarray(labels, dtype=np.int64), classes)

    def __repr__(self):
        return f"ImageFolder({self.root!r}, n={len(self)}, classes={len(self.classes)})"
