"""Tests of minitorch_cnn.data: dataset readers, synthetic data, transforms, loader.

Every file a test reads is written by the test into tmp_path; nothing here
needs the network or a real CIFAR-10 copy.
"""
import hashlib
import os
import pickle
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

import minitorch_cnn.data.cifar10 as cifar10_module
from minitorch_cnn.data import (CIFAR10, CIFAR10_MEAN, CIFAR10_STD, ArrayDataset, Compose,
                                DataLoader, ImageFolder, Normalize, RandomCrop,
                                RandomHorizontalFlip, SyntheticShapes, download_cifar10,
                                synthetic, train_val_split)

NAMES = ["airplane", "automobile", "bird", "cat", "deer",
         "dog", "frog", "horse", "ship", "truck"]


# ------------------------------------------------------------ fake CIFAR-10

def to_rows(images):
    """NHWC uint8 -> CIFAR rows (N, 3072): R plane, G plane, B plane, row-major.

    Written element by element from the format's description (not with the
    reshape the reader uses) so that a wrong plane order cannot pass."""
    n = images.shape[0]
    rows = np.empty((n, 3072), dtype=np.uint8)
    for c in range(3):
        for y in range(32):
            for x in range(32):
                rows[:, c * 1024 + y * 32 + x] = images[:, y, x, c]
    return rows


def fake_images(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)


def write_batch(path, images, labels, protocol=2):
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"fake", b"labels": [int(v) for v in labels],
                     b"data": to_rows(images), b"filenames": [b"x"] * len(labels)},
                    f, protocol=protocol)


def write_cifar(root, n=3, test=True, meta_names=None):
    """Write root/cifar-10-batches-py with n images per batch; return the arrays."""
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    train_x, train_y = [], []
    for b in range(1, 6):
        x, y = fake_images(n, seed=b)
        write_batch(os.path.join(folder, f"data_batch_{b}"), x, y, protocol=2 + b % 3)
        train_x.append(x)
        train_y.append(y)
    test_x, test_y = fake_images(n, seed=99)
    if test:
        write_batch(os.path.join(folder, "test_batch"), test_x, test_y)
    names = NAMES[::-1] if meta_names is None else meta_names  # not the default order
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in names]}, f, protocol=2)
    return (np.concatenate(train_x), np.concatenate(train_y)), (test_x, test_y)


def make_tar(root, out):
    """Pack root/cifar-10-batches-py into the archive ``out`` as the official one is."""
    with tarfile.open(out, "w:gz") as tar:
        tar.add(os.path.join(root, "cifar-10-batches-py"), arcname="cifar-10-batches-py")
    return out


def test_cifar_folder_gives_exact_pixels_in_nhwc(tmp_path):
    (train_x, train_y), (test_x, test_y) = write_cifar(tmp_path, n=4)
    ds = CIFAR10(tmp_path, train=True)
    assert ds.images.shape == (20, 32, 32, 3) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.images, train_x)
    np.testing.assert_array_equal(ds.labels, train_y)
    assert ds.classes == NAMES[::-1]
    assert len(ds) == 20
    image, label = ds[5]
    np.testing.assert_array_equal(image, train_x[5])
    assert label == train_y[5]
    test = CIFAR10(tmp_path, train=False)
    np.testing.assert_array_equal(test.images, test_x)
    np.testing.assert_array_equal(test.labels, test_y)


def test_cifar_plane_order_is_red_green_blue(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data = np.zeros((1, 3072), dtype=np.uint8)
    data[0, :1024] = 10          # red plane
    data[0, 1024:2048] = 20      # green plane
    data[0, 2048:] = 30          # blue plane
    data[0, 1 * 32 + 2] = 200    # red at row 1, column 2
    data[0, 2048 + 31 * 32] = 7  # blue at row 31, column 0
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                 "data_batch_5"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": [3]}, f)
    ds = CIFAR10(folder)  # the cifar-10-batches-py folder itself as root
    img = ds.images[0]
    assert tuple(img[0, 0]) == (10, 20, 30)
    assert tuple(img[1, 2]) == (200, 20, 30)
    assert tuple(img[31, 0]) == (10, 20, 7)
    assert ds.classes == NAMES  # no batches.meta: the standard names


def test_cifar_reads_tar_gz_without_extracting(tmp_path):
    src = tmp_path / "src"
    (train_x, train_y), (test_x, test_y) = write_cifar(src, n=2)
    archive = make_tar(src, tmp_path / "cifar-10-python.tar.gz")
    before = sorted(os.listdir(tmp_path))
    for root in (archive, tmp_path):  # the archive itself, or a folder holding it
        ds = CIFAR10(root, train=True)
        np.testing.assert_array_equal(ds.images, train_x)
        np.testing.assert_array_equal(ds.labels, train_y)
        assert ds.classes == NAMES[::-1]
        test = CIFAR10(root, train=False)
        np.testing.assert_array_equal(test.images, test_x)
    assert sorted(os.listdir(tmp_path)) == before  # nothing unpacked


def test_cifar_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        CIFAR10(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="download=True"):
        CIFAR10(tmp_path)  # exists but holds nothing


def test_cifar_missing_batch_names_it(tmp_path):
    write_cifar(tmp_path)
    os.remove(tmp_path / "cifar-10-batches-py" / "data_batch_4")
    with pytest.raises(FileNotFoundError, match="data_batch_4"):
        CIFAR10(tmp_path)


def test_cifar_missing_test_batch_says_how_to_get_it(tmp_path):
    write_cifar(tmp_path, test=False)
    assert len(CIFAR10(tmp_path, train=True)) == 15
    with pytest.raises(FileNotFoundError) as err:
        CIFAR10(tmp_path, train=False)
    msg = str(err.value)
    assert "test_batch" in msg
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in msg
    assert "train_val_split" in msg
    archive = make_tar(tmp_path, tmp_path / "a.tar.gz")
    with pytest.raises(FileNotFoundError, match="test_batch"):
        CIFAR10(archive, train=False)


def test_cifar_truncated_batch_names_file(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="data_batch_3.*truncated or corrupt"):
        CIFAR10(tmp_path)


def test_cifar_garbage_batch_names_file(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="test_batch"):
        CIFAR10(tmp_path, train=False)


def test_cifar_wrong_array_size_names_file(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((4, 3000), np.uint8), b"labels": [0] * 4}, f)
    with pytest.raises(ValueError, match=r"data_batch_2.*\(4, 3000\).*3072"):
        CIFAR10(tmp_path)
    with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0] * 3}, f)
    with pytest.raises(ValueError, match="data_batch_2.*3 labels for 4 images"):
        CIFAR10(tmp_path)
    with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, f)
    with pytest.raises(ValueError, match="data_batch_2.*0..9"):
        CIFAR10(tmp_path)


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):  # unpickling this would create a file
        return open, (self.target, "w")


def test_cifar_refuses_pickles_that_run_code(tmp_path):
    write_cifar(tmp_path)
    marker = str(tmp_path / "pwned")
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "wb") as f:
        pickle.dump({b"data": _Evil(marker), b"labels": []}, f)
    with pytest.raises(ValueError, match="data_batch_1"):
        CIFAR10(tmp_path)
    assert not os.path.exists(marker)


def test_cifar_truncated_archive_names_it(tmp_path):
    write_cifar(tmp_path / "src")
    archive = make_tar(tmp_path / "src", tmp_path / "cifar-10-python.tar.gz")
    raw = archive.read_bytes()
    archive.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="cifar-10-python.tar.gz.*truncated or corrupt"):
        CIFAR10(archive)


def test_download_checks_md5(tmp_path, monkeypatch):
    write_cifar(tmp_path / "src", n=2)
    archive = make_tar(tmp_path / "src", tmp_path / "served.tar.gz")
    monkeypatch.setattr(cifar10_module, "URL", archive.as_uri())  # no network needed
    root = tmp_path / "root"
    with pytest.raises(ValueError, match="MD5"):
        CIFAR10(root, download=True)  # the fake archive is not the official one
    assert os.listdir(root) == []  # the bad download was removed, no .part left

    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setattr(cifar10_module, "MD5", md5)
    ds = CIFAR10(root, download=True)
    assert len(ds) == 10
    assert os.listdir(root) == ["cifar-10-python.tar.gz"]
    assert download_cifar10(root) == str(root / "cifar-10-python.tar.gz")  # already there


def test_download_without_network_is_a_clear_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(ConnectionError, match="cifar-10-python.tar.gz.*no route to host"):
        CIFAR10(tmp_path / "root", download=True)


# --------------------------------------------------------------- ImageFolder

def save(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def test_image_folder_classes_sorted_and_pixels_exact(tmp_path):
    rng = np.random.default_rng(0)
    pics = {}
    for cls, count in [("dog", 2), ("bird", 1), ("cat", 3)]:
        for i in range(count):
            pics[cls, i] = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            save(str(tmp_path / cls / f"{i}.png"), pics[cls, i])
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / "cat" / "readme.txt").write_text("ignored")
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["bird", "cat", "dog"]
    assert ds.labels.tolist() == [0, 1, 1, 1, 2, 2]
    assert ds.images.shape == (6, 32, 32, 3) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.images[0], pics["bird", 0])
    np.testing.assert_array_equal(ds.images[3], pics["cat", 2])
    np.testing.assert_array_equal(ds.images[5], pics["dog", 1])


def test_image_folder_converts_grey_and_reads_jpeg(tmp_path):
    save(str(tmp_path / "a" / "grey.png"), np.full((32, 32), 77, np.uint8))
    save(str(tmp_path / "b" / "photo.JPG"), np.full((32, 32, 3), 128, np.uint8))
    ds = ImageFolder(tmp_path)
    assert ds.images.shape == (2, 32, 32, 3)
    assert np.all(ds.images[0] == 77)
    assert np.abs(ds.images[1].astype(int) - 128).max() <= 2  # JPEG is lossy


def test_image_folder_rejects_wrong_size_with_clear_message(tmp_path):
    save(str(tmp_path / "a" / "ok.png"), np.zeros((32, 32, 3), np.uint8))
    save(str(tmp_path / "b" / "big.png"), np.full((30, 40, 3), 9, np.uint8))  # 30 high, 40 wide
    with pytest.raises(ValueError, match=r"big\.png.*30x40.*32x32"):
        ImageFolder(tmp_path)
    ds = ImageFolder(tmp_path, resize=True)
    assert ds.images.shape == (2, 32, 32, 3)
    assert np.all(ds.images[1] == 9)  # a flat image stays flat when resized
    assert ImageFolder(tmp_path, size=(30, 40), resize=True).images.shape == (2, 30, 40, 3)


def test_image_folder_empty_or_broken(tmp_path):
    with pytest.raises(FileNotFoundError):
        ImageFolder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no class folders"):
        ImageFolder(tmp_path)
    (tmp_path / "cat").mkdir()
    with pytest.raises(ValueError, match="no .*images"):
        ImageFolder(tmp_path)
    (tmp_path / "cat" / "bad.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match=r"bad\.png"):
        ImageFolder(tmp_path)


# ---------------------------------------------------------- synthetic shapes

def test_synthetic_is_deterministic_and_seed_dependent():
    a = SyntheticShapes(n=200, seed=3)
    b = SyntheticShapes(n=200, seed=3)
    c = SyntheticShapes(n=200, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)
    assert a.images.shape == (200, 32, 32, 3) and a.images.dtype == np.uint8
    assert a.labels.dtype == np.int64
    assert len(a.classes) == 10 and len(set(a.classes)) == 10
    assert all(isinstance(name, str) and name.isprintable() for name in a.classes)


def test_synthetic_train_and_test_are_disjoint_draws():
    train = synthetic(train=True, n=500, seed=0)
    test = synthetic(train=False, n=500, seed=0)
    flat_train = {img.tobytes() for img in train.images}
    assert not any(img.tobytes() in flat_train for img in test.images)
    assert len(synthetic(train=False)) == 2000  # the standard test split


def test_synthetic_classes_are_balanced():
    ds = SyntheticShapes(n=1230, seed=1)
    counts = np.bincount(ds.labels, minlength=10)
    assert counts.sum() == 1230 and counts.min() == 123 and counts.max() == 123
    assert not np.array_equal(ds.labels[:20], np.arange(20) % 10)  # shuffled, not cycling
    counts = np.bincount(SyntheticShapes(n=25).labels, minlength=10)
    assert counts.max() - counts.min() <= 1


def test_synthetic_prefix_does_not_depend_on_n():
    small = SyntheticShapes(n=1000, seed=2)
    big = SyntheticShapes(n=2500, seed=2)
    np.testing.assert_array_equal(small.images, big.images[:1000])


def test_synthetic_class_means_carry_no_signal():
    # Colours and positions are drawn independently of the class, so every
    # class has the same mean image: nothing for a linear model to pick up.
    ds = SyntheticShapes(n=3000, seed=0)
    x = ds.images.astype(np.float64)
    pixel_std = x.std()
    for c in range(10):
        mean_c = x[ds.labels == c].mean(axis=0)
        # 300 samples per class: the sampling error of a mean is ~std/17
        assert np.abs(mean_c - x.mean(axis=0)).mean() < 0.12 * pixel_std
    # ... while the images themselves differ a lot between classes
    stripes_h = x[ds.labels == ds.classes.index("h-stripes")]
    stripes_v = x[ds.labels == ds.classes.index("v-stripes")]
    # vertical neighbours are alike in vertical stripes, unlike in horizontal ones
    dv_h = np.abs(np.diff(stripes_h, axis=1)).mean()
    dv_v = np.abs(np.diff(stripes_v, axis=1)).mean()
    assert dv_h > 1.5 * dv_v


# ------------------------------------------------------------------ transforms

@pytest.fixture
def batch():
    return np.random.default_rng(0).random((50, 32, 32, 3), dtype=np.float32)


def test_flip_is_an_exact_mirror(batch):
    original = batch.copy()
    out = RandomHorizontalFlip(p=1.0)(batch, np.random.default_rng(0))
    np.testing.assert_array_equal(out, batch[:, :, ::-1, :])
    np.testing.assert_array_equal(out[:, 4, 0], batch[:, 4, 31])
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(batch, np.random.default_rng(0)),
                                  batch)
    out = RandomHorizontalFlip()(batch, np.random.default_rng(1))
    flipped = np.array([np.array_equal(o, b[:, ::-1]) for o, b in zip(out, batch)])
    kept = np.array([np.array_equal(o, b) for o, b in zip(out, batch)])
    assert np.all(flipped ^ kept)  # each image: mirrored or untouched, never both/neither
    assert 10 < flipped.sum() < 40  # per image, not per batch
    np.testing.assert_array_equal(batch, original)  # input untouched


def find_offsets(crop, padded, size):
    """All (top, left) where ``crop`` equals the window of ``padded``."""
    h, w = padded.shape[:2]
    return [(t, l) for t in range(h - size[0] + 1) for l in range(w - size[1] + 1)
            if np.array_equal(padded[t:t + size[0], l:l + size[1]], crop)]


def test_crop_is_a_window_of_the_zero_padded_image(batch):
    out = RandomCrop(32, padding=4)(batch, np.random.default_rng(0))
    assert out.shape == batch.shape and out.dtype == np.float32
    padded = np.pad(batch, ((0, 0), (4, 4), (4, 4), (0, 0)))
    offsets = []
    for crop, pad in zip(out, padded):
        found = find_offsets(crop, pad, (32, 32))
        assert len(found) == 1
        offsets.append(found[0])
    assert len(set(offsets)) > 10  # independent offsets per image
    assert {t for t, _ in offsets} | {l for _, l in offsets} <= set(range(9))
    assert np.any(out == 0)  # some padding shows


def test_crop_without_padding_and_smaller_size(batch):
    np.testing.assert_array_equal(RandomCrop(32, padding=0)(batch, np.random.default_rng(0)),
                                  batch)
    out = RandomCrop((24, 20), padding=0)(batch, np.random.default_rng(0))
    assert out.shape == (50, 24, 20, 3)
    for crop, img in zip(out[:10], batch[:10]):
        assert len(find_offsets(crop, img, (24, 20))) == 1
    with pytest.raises(ValueError, match="larger"):
        RandomCrop(48, padding=4)(batch, np.random.default_rng(0))


def test_normalize_per_channel_nhwc(batch):
    out = Normalize(CIFAR10_MEAN, CIFAR10_STD)(batch, np.random.default_rng(0))
    assert out.dtype == np.float32 and out.shape == batch.shape
    for c in range(3):
        np.testing.assert_allclose(out[..., c], (batch[..., c] - CIFAR10_MEAN[c]) / CIFAR10_STD[c],
                                   rtol=1e-5, atol=1e-5)
    flat = np.ones((1, 2, 2, 3), np.float32) * np.array([0.5, 1.0, 0.0], np.float32)
    np.testing.assert_allclose(Normalize((0.5, 0.5, 0.5), (0.25, 0.5, 1.0))(flat, None)[0, 0, 0],
                               [0.0, 1.0, -0.5], atol=1e-6)
    with pytest.raises(ValueError, match="channels"):
        Normalize(CIFAR10_MEAN, CIFAR10_STD)(np.zeros((1, 3, 32, 32), np.float32), None)


def test_compose_is_deterministic_given_the_rng(batch):
    t = Compose([RandomCrop(32, 4), RandomHorizontalFlip(), Normalize(CIFAR10_MEAN, CIFAR10_STD)])
    a = t(batch, np.random.default_rng(7))
    b = t(batch, np.random.default_rng(7))
    c = t(batch, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    crop_then_flip = RandomHorizontalFlip()(RandomCrop(32, 4)(batch, np.random.default_rng(7)),
                                            np.random.default_rng(7))
    assert not np.array_equal(Compose([RandomCrop(32, 4), RandomHorizontalFlip()])(
        batch, np.random.default_rng(7)), crop_then_flip)  # one rng shared in order


# ------------------------------------------------------------------ DataLoader

def indexed_dataset(n):
    """Image i holds i in its first pixel, so batches reveal which samples they hold."""
    images = np.zeros((n, 4, 4, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(n)
    images[:, 1:, :, :] = np.random.default_rng(0).integers(0, 256, (n, 3, 4, 3))
    return ArrayDataset(images, np.arange(n) % 10, [str(i) for i in range(10)])


def ids(x):
    return np.rint(x[:, 0, 0, 0] * 255).astype(int)


def test_loader_batches_are_float32_nhwc_over_255(tmp_path):
    ds = indexed_dataset(10)
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    assert x.dtype == np.float32 and x.shape == (4, 4, 4, 3)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(x, ds.images[:4].astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(y, ds.labels[:4])


def test_loader_covers_every_sample_once_per_epoch():
    ds = indexed_dataset(103)
    loader = DataLoader(ds, batch_size=10, shuffle=True, seed=1)
    assert len(loader) == 11
    batches = list(loader)
    assert len(batches) == 11 and batches[-1][0].shape[0] == 3
    seen = np.concatenate([ids(x) for x, _ in batches])
    assert sorted(seen.tolist()) == list(range(103))
    assert not np.array_equal(seen, np.arange(103))  # shuffled
    for x, y in batches:
        np.testing.assert_array_equal(y, ids(x) % 10)  # labels travel with their images
    unshuffled = np.concatenate([ids(x) for x, _ in DataLoader(ds, batch_size=10)])
    np.testing.assert_array_equal(unshuffled, np.arange(103))


def test_loader_order_is_a_function_of_seed_and_epoch():
    ds = indexed_dataset(64)

    def epoch_ids(loader, e):
        return np.concatenate([ids(x) for x, _ in loader.iter_epoch(e)])

    a = DataLoader(ds, batch_size=8, shuffle=True, seed=5)
    b = DataLoader(ds, batch_size=8, shuffle=True, seed=5)
    list(b)  # consuming other epochs first changes nothing
    list(b)
    np.testing.assert_array_equal(epoch_ids(a, 3), epoch_ids(b, 3))
    assert not np.array_equal(epoch_ids(a, 0), epoch_ids(a, 1))
    c = DataLoader(ds, batch_size=8, shuffle=True, seed=6)
    assert not np.array_equal(epoch_ids(a, 0), epoch_ids(c, 0))
    # plain iteration runs loader.epoch, then advances it; set_epoch pins it
    first = np.concatenate([ids(x) for x, _ in a])
    second = np.concatenate([ids(x) for x, _ in a])
    np.testing.assert_array_equal(first, epoch_ids(a, 0))
    np.testing.assert_array_equal(second, epoch_ids(a, 1))
    a.set_epoch(7)
    np.testing.assert_array_equal(np.concatenate([ids(x) for x, _ in a]), epoch_ids(a, 7))
    assert a.epoch == 8
    np.testing.assert_array_equal(a.order(7), epoch_ids(a, 7))


def random_shift(x, rng):
    return x + rng.random((x.shape[0], 1, 1, 1), dtype=np.float32)


@pytest.mark.parametrize("drop_last", [False, True])
def test_iter_epoch_resumes_exactly(drop_last):
    ds = indexed_dataset(45)
    loader = DataLoader(ds, batch_size=7, shuffle=True, seed=2, transform=random_shift,
                        drop_last=drop_last)
    full = list(loader.iter_epoch(4))
    assert len(full) == len(loader) == (6 if drop_last else 7)
    for k in range(len(full) + 1):
        resumed = DataLoader(ds, batch_size=7, shuffle=True, seed=2, transform=random_shift,
                             drop_last=drop_last).iter_epoch(4, start_step=k)
        tail = list(resumed)
        assert len(tail) == len(full) - k
        for (x1, y1), (x2, y2) in zip(full[k:], tail):
            np.testing.assert_array_equal(x1, x2)  # same samples, same augmentation
            np.testing.assert_array_equal(y1, y2)
    with pytest.raises(ValueError, match="start_step"):
        loader.iter_epoch(4, start_step=len(full) + 1)


def test_augmentation_differs_across_epochs_and_steps():
    ds = indexed_dataset(16)
    loader = DataLoader(ds, batch_size=8, shuffle=False, transform=random_shift)
    e0 = list(loader.iter_epoch(0))
    e1 = list(loader.iter_epoch(1))
    assert not np.array_equal(e0[0][0], e1[0][0])
    shifts = [x[:, 3, 3, 0] - ds.images[i * 8:(i + 1) * 8, 3, 3, 0] / np.float32(255)
              for i, (x, _) in enumerate(e0)]
    assert not np.allclose(shifts[0], shifts[1])


def test_transform_gets_the_whole_batch_and_a_generator():
    calls = []

    def spy(x, rng):
        calls.append((x.shape, type(rng)))
        return x

    list(DataLoader(indexed_dataset(10), batch_size=4, transform=spy))
    assert calls == [((4, 4, 4, 3), np.random.Generator)] * 2 + [((2, 4, 4, 3),
                                                                 np.random.Generator)]


def test_drop_last():
    ds = indexed_dataset(23)
    loader = DataLoader(ds, batch_size=5, shuffle=True, drop_last=True)
    batches = list(loader)
    assert len(loader) == len(batches) == 4
    assert all(x.shape[0] == 5 for x, _ in batches)
    seen = np.concatenate([ids(x) for x, _ in batches])
    assert len(set(seen.tolist())) == 20
    assert len(DataLoader(ds, batch_size=30, drop_last=True)) == 0
    assert len(DataLoader(ds, batch_size=30)) == 1


def test_loader_accepts_plain_indexable_datasets_and_checks_arguments():
    pairs = [(np.full((2, 2, 3), i, np.uint8), i % 3) for i in range(5)]
    x, y = next(iter(DataLoader(pairs, batch_size=5)))
    assert x.shape == (5, 2, 2, 3)
    np.testing.assert_array_equal(y, [0, 1, 2, 0, 1])
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(pairs, batch_size=0)
    with pytest.raises(ValueError, match="seed"):
        DataLoader(pairs, batch_size=1, seed=-1)


# ------------------------------------------------------------ train_val_split

def test_train_val_split_is_disjoint_and_deterministic():
    ds = indexed_dataset(50)
    train, val = train_val_split(ds, 12, seed=3)
    assert len(train) == 38 and len(val) == 12
    assert set(train.indices) | set(val.indices) == set(range(50))
    assert not set(train.indices) & set(val.indices)
    np.testing.assert_array_equal(val.images, ds.images[val.indices])
    np.testing.assert_array_equal(val.labels, ds.labels[val.indices])
    assert train.classes == ds.classes and val.labels.dtype == np.int64
    again = train_val_split(ds, 12, seed=3)[1]
    np.testing.assert_array_equal(again.indices, val.indices)
    other = train_val_split(ds, 12, seed=4)[1]
    assert not np.array_equal(other.indices, val.indices)
    assert np.all(np.diff(val.indices) > 0)  # original order kept
    image, label = val[0]
    np.testing.assert_array_equal(image, ds.images[val.indices[0]])
    # a subset works with the loader like any dataset
    assert sum(x.shape[0] for x, _ in DataLoader(train, batch_size=16)) == 38


def test_train_val_split_rejects_bad_sizes():
    ds = indexed_dataset(10)
    for bad in (10, 11, -1):
        with pytest.raises(ValueError, match="n_val"):
            train_val_split(ds, bad)
    assert len(train_val_split(ds, 0)[1]) == 0
