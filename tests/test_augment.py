"""airbench's augmentation: reflect-padded translations and the alternating flip, alone and
through the DataLoader (per (seed, epoch, index), the same in any batch or on resume)."""
import numpy as np
import pytest

from minitorch_cnn.data import (AlternatingFlip, ArrayDataset, Compose, DataLoader, Normalize,
                                RandomCrop)


@pytest.fixture
def images():
    return np.random.default_rng(3).random((40, 8, 7, 3)).astype(np.float32)


def _windows(padded, crop):
    h, w = crop.shape[:2]
    return [(t, l) for t in range(padded.shape[0] - h + 1) for l in range(padded.shape[1] - w + 1)
            if np.array_equal(padded[t:t + h, l:l + w], crop)]


def test_reflect_crop_is_a_window_of_torchs_reflect_padding(torch, images):
    out = RandomCrop((8, 7), padding=2, padding_mode="reflect")(images, np.random.default_rng(0))
    assert out.shape == images.shape and out.dtype == np.float32
    t = torch.nn.functional.pad(torch.from_numpy(images.transpose(0, 3, 1, 2)), (2,) * 4,
                                mode="reflect")
    padded = t.numpy().transpose(0, 2, 3, 1)                 # airbench's F.pad(..., 'reflect')
    offsets = [_windows(p, c) for p, c in zip(padded, out)]
    assert all(len(o) == 1 for o in offsets)
    assert {o[0] for o in offsets} <= {(i, j) for i in range(5) for j in range(5)}
    assert len({o[0] for o in offsets}) > 10                 # shifts of -2..2, per image
    assert out.min() >= images.min() and not np.any(out == 0)  # no black border
    with pytest.raises(ValueError, match="padding_mode must be 'zeros' or 'reflect', got 'wrap'"):
        RandomCrop(8, 2, padding_mode="wrap")
    with pytest.raises(ValueError, match="reflect padding 8 needs images larger than 8 pixels"):
        RandomCrop(8, 8, padding_mode="reflect")(images, np.random.default_rng(0))


def test_alternating_flip_flips_each_image_in_every_other_epoch(images):
    flip = AlternatingFlip(len(images), seed=4)
    index = np.arange(len(images))
    mirrored = images[:, :, ::-1]
    state = []
    for epoch in range(4):
        out = flip(images, index=index, epoch=epoch)
        is_flipped = np.array([np.array_equal(o, m) for o, m in zip(out, mirrored)])
        assert all(np.array_equal(o, m if f else x) for o, m, x, f in
                   zip(out, mirrored, images, is_flipped))
        state.append(is_flipped)
    np.testing.assert_array_equal(state[0], flip.first)
    assert 10 < state[0].sum() < 30                           # about half in epoch 0
    np.testing.assert_array_equal(state[1], ~state[0])         # the other half in epoch 1
    np.testing.assert_array_equal(state[2], state[0])
    # the same image is treated the same in any batch: it depends on its index only
    part = flip(images[[7, 3]], index=[7, 3], epoch=1)
    np.testing.assert_array_equal(part, flip(images, index=index, epoch=1)[[7, 3]])
    np.testing.assert_array_equal(AlternatingFlip(40, seed=4).first, flip.first)
    assert not np.array_equal(AlternatingFlip(40, seed=5).first, flip.first)
    with pytest.raises(ValueError, match="expected 2 indices into its 40 images"):
        flip(images[:2], index=[0, 40], epoch=0)


def test_loader_hands_per_sample_transforms_their_indices(images):
    labels = np.arange(len(images)) % 3
    ds = ArrayDataset((images * 255).astype(np.uint8), labels, classes=["a", "b", "c"])
    flip = AlternatingFlip(len(ds), seed=1)
    tf = Compose([RandomCrop((8, 7), 1, padding_mode="reflect"), flip, Normalize((0.5,) * 3,
                                                                                  (0.25,) * 3)])
    assert tf.per_sample
    loader = DataLoader(ds, 8, shuffle=True, seed=1, transform=tf, drop_last=True)
    plain = DataLoader(ds, 8, shuffle=True, seed=1, transform=Compose(
        [RandomCrop((8, 7), 1, padding_mode="reflect"), Normalize((0.5,) * 3, (0.25,) * 3)]))
    for epoch in (0, 1):
        order = loader.order(epoch)
        for step, ((x, _), (x0, _)) in enumerate(zip(loader.iter_epoch(epoch),
                                                     plain.iter_epoch(epoch))):
            idx = order[step * 8:(step + 1) * 8]
            want = np.where((flip.first[idx] != bool(epoch))[:, None, None, None],
                            x0[:, :, ::-1], x0)             # same crops (same rng), then the flip
            np.testing.assert_array_equal(x, want)
    tail = list(loader.iter_epoch(1, start_step=3))          # a resumed epoch: the same batches
    np.testing.assert_array_equal(tail[0][0], list(loader.iter_epoch(1))[3][0])
