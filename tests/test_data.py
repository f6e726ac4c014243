"""Tests for ddpm_nb.data: scaling, IDX reading, offline MNIST/CIFAR-10 loading, clear errors, loaders."""
import gzip, struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ddpm_nb.data import (CIFAR10_CLASSES, BatchSampler, DataError, ImageDataset, check_images, dataset_for_preset,
                          load_cifar10, load_dataset, load_digits, load_mnist, read_idx)
from ddpm_nb.testing import write_idx, fake_mnist
from ddpm_nb.presets import load_preset

MNIST_DIR = Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'mnist'  # ../shared/data from the repo root


@pytest.fixture(scope='module')
def digits():
    return load_digits()


def test_digits_scaling_and_labels(digits):
    assert digits.images.shape == (1797, 1, 16, 16) and digits.images.dtype == torch.float32
    assert digits.images.min().item() == -1.0 and digits.images.max().item() == 1.0  # exact ends of the range
    assert digits.labels.dtype == torch.long and sorted(digits.labels.unique().tolist()) == list(range(10))
    assert digits.num_classes == 10 and not digits.hflip
    small = load_digits(8)
    # the 8x8 originals keep their 17 levels 0..16 -> 2k/16 - 1
    assert torch.equal(small.images.unique(), torch.arange(17) / 8 - 1)


def test_read_idx_roundtrip_and_corruption(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (4, 3, 5), dtype=np.uint8)
    write_idx(tmp_path / 'a', a)
    write_idx(tmp_path / 'a.gz', a, gz=True)
    for p in ('a', 'a.gz'):
        t = read_idx(tmp_path / p)
        assert t.dtype == torch.uint8 and np.array_equal(t.numpy(), a)
    (tmp_path / 'short').write_bytes((tmp_path / 'a').read_bytes()[:-1])
    with pytest.raises(DataError, match='truncated or corrupt'): read_idx(tmp_path / 'short')
    (tmp_path / 'bad.gz').write_bytes((tmp_path / 'a.gz').read_bytes()[:15])
    with pytest.raises(DataError, match='damaged gzip'): read_idx(tmp_path / 'bad.gz')
    (tmp_path / 'text').write_bytes(b'hello world')
    with pytest.raises(DataError, match='not an IDX file'): read_idx(tmp_path / 'text')
    assert issubclass(DataError, ValueError)


def test_missing_mnist_is_clear_and_offline(tmp_path):
    # download defaults to False: no network attempt, just a message saying which files go where
    with pytest.raises(DataError) as e: load_mnist(tmp_path / 'nowhere')
    msg = str(e.value)
    assert 'train-images-idx3-ubyte.gz' in msg and 'train-labels-idx1-ubyte.gz' in msg
    assert str(tmp_path / 'nowhere') in msg and 'download=True' in msg


def test_mnist_test_split_as_train_needs_opt_in(tmp_path):
    fake_mnist(tmp_path / 'MNIST' / 'raw', n=5)  # torchvision's layout, test split only
    with pytest.raises(DataError, match='allow_test_as_train=True'): load_mnist(tmp_path)
    ds = load_mnist(tmp_path, allow_test_as_train=True)
    assert ds.images.shape == (5, 1, 28, 28) and ds.labels.tolist() == [0, 1, 2, 3, 4]
    assert '(as train)' in ds.name
    assert ds.images.min() >= -1 and ds.images.max() <= 1


def test_cifar_image_folder(tmp_path):
    colours = {}
    for c in ('truck', 'bird', 'airplane'):  # a subset of classes: labels still follow the standard order
        (tmp_path / 'train' / c).mkdir(parents=True)
        for i in range(2):
            level = 20 * CIFAR10_CLASSES.index(c) + 5 * i
            colours[(c, i)] = level
            Image.new('RGB', (32, 32), (level, 100, 200)).save(tmp_path / 'train' / c / f'{i}.jpg', quality=95)
    ds = load_cifar10(tmp_path, cache_dir=tmp_path / 'cache')
    assert ds.images.shape == (6, 3, 32, 32) and ds.hflip
    assert ds.labels.tolist() == [0, 0, 2, 2, 9, 9]
    want = torch.tensor([float(colours[(c, i)]) for c in ('airplane', 'bird', 'truck') for i in range(2)])
    red = (ds.images[:, 0].mean((1, 2)) + 1) * 127.5
    assert torch.allclose(red, want, atol=3)  # JPEG is lossy: flat colours come back within 3 grey levels
    again = load_cifar10(tmp_path, cache_dir=tmp_path / 'cache')  # from the .npy cache
    assert torch.equal(again.images, ds.images) and len(list((tmp_path / 'cache').glob('*.npy'))) == 1
    with pytest.raises(DataError, match='put the images in'): load_cifar10(tmp_path, train=False)


def test_shape_and_label_errors(digits):
    with pytest.raises(DataError, match='16x16 images but the model expects 28x28'): check_images(digits, 1, 28)
    with pytest.raises(DataError, match='1-channel'): check_images(digits, 3, 16)
    with pytest.raises(DataError, match='set num_classes = 10'): check_images(digits, 1, 16, num_classes=4)
    with pytest.raises(DataError, match='is empty'):
        ImageDataset(torch.zeros(0, 1, 4, 4), torch.zeros(0, dtype=torch.long), 10)
    with pytest.raises(DataError, match='outside 0..1'):
        ImageDataset(torch.zeros(2, 1, 4, 4), torch.tensor([0, 2]), 2)
    with pytest.raises(DataError, match="preset 'digits' expects 3"): dataset_for_preset(load_preset('digits', channels=3))


def test_load_dataset_and_preset(tmp_path, digits):
    fake_mnist(tmp_path, n=5, split='train')
    assert load_dataset('mnist', tmp_path, image_size=32).images.shape == (5, 1, 32, 32)
    assert dataset_for_preset('digits').images.shape == (1437, 1, 8, 8)      # native 8x8, every fifth held out
    with pytest.raises(DataError, match='resize explicitly'):
        dataset_for_preset(load_preset('mnist', image_size=32), tmp_path)
    with pytest.raises(DataError, match='unknown dataset'): load_dataset('imagenet')
    with pytest.raises(DataError, match='pass root='): load_dataset('cifar10')


def test_batch_sampler_batches_and_flips(digits):
    g = lambda: torch.Generator().manual_seed(3)
    xb, yb = BatchSampler(digits, 64, g()).next()
    assert xb.shape == (64, 1, 16, 16) and yb.shape == (64,)
    assert torch.equal(BatchSampler(digits, 64, g()).next()[1], yb)
    bs = BatchSampler(digits, 800, g())  # 2 batches per epoch: 5 batches run through 3 epochs
    assert sum(len(bs.next()[1]) for _ in range(5)) == 4000 and bs.epoch == 2
    with pytest.raises(DataError, match='larger than the dataset'): BatchSampler(digits, 2000, g())
    # hflip: every image comes back as itself or its mirror image, and both happen
    img = torch.linspace(-1, 1, 4).expand(1, 4, 4)
    ds = ImageDataset(img.expand(400, 1, 4, 4).contiguous(), torch.zeros(400).long(), 1, hflip=True)
    bs = BatchSampler(ds, 100, g())
    x = torch.cat([bs.next()[0] for _ in range(4)])
    same, mirrored = (x == img).flatten(1).all(1), (x == img.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 160 < int(mirrored.sum()) < 240  # Binomial(400, 1/2): sd 10, 4 sd


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason='real MNIST test set not on this machine')
def test_real_mnist_test_split():
    ds = load_mnist(MNIST_DIR, train=False)
    assert ds.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.images.min().item() == -1.0 and ds.images.max().item() == 1.0
