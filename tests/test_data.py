"""Datasets and the batched augmentation."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from dskd_core.data import BatchLoader, LoaderOptions, TensorDataset, augment_batch, get_dataset_spec, load_dataset
from dskd_core.data.testing import write_fake_cifar100
from dskd_core.errors import DatasetNotFound, UnknownNameError


def test_cifar100_reads_python_format_files(tmp_path: Path) -> None:
    write_fake_cifar100(tmp_path / "cifar-100-python")
    train, test = load_dataset("cifar100", tmp_path, download=False)
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (10, 3, 32, 32)
    assert train.images.dtype == torch.uint8 and int(train.labels.max()) < 100


def test_cifar100_missing_offline_is_one_line_naming_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFound, match="cifar-100-python/") as err:
        load_dataset("cifar100", tmp_path, download=False)
    assert "\n" not in str(err.value)


def test_cifar100_download_failure_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.utils as tv_utils

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", offline)
    with pytest.raises(DatasetNotFound, match="download failed") as err:
        load_dataset("cifar100", tmp_path, download=True)
    assert "\n" not in str(err.value) and "cifar-100-python/" in str(err.value)


def test_cifar_files_that_would_run_code_are_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    folder = tmp_path / "cifar-100-python"
    write_fake_cifar100(folder)
    (folder / "train").write_bytes(pickle.dumps({"data": Evil()}))
    with pytest.raises(DatasetNotFound, match="unreadable"):
        load_dataset("cifar100", tmp_path, download=False)


def test_digits_is_embedded_stratified_and_fixed() -> None:
    train, test = load_dataset("digits", Path("unused"))
    assert len(train) + len(test) == 1797
    assert train.images.shape[1:] == (3, 32, 32)
    counts = torch.bincount(test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # every 5th image of each class
    again, _ = load_dataset("digits", Path("unused"))
    assert torch.equal(train.images, again.images)


def test_unknown_dataset_lists_close_matches() -> None:
    with pytest.raises(UnknownNameError, match="cifar100"):
        get_dataset_spec("cifar10")


def test_augmentation_matches_random_crop_and_flip_distribution() -> None:
    """Offsets uniform over the 9×9 crop positions, zero padding, flips at p = 0.5."""
    n = 4000
    # Each image has a single bright pixel at (16, 16); its landing spot reveals the crop offset.
    images = torch.zeros(n, 1, 32, 32)
    images[:, :, 16, 16] = 1.0
    out = augment_batch(images, torch.Generator().manual_seed(0), hflip=False)
    pos = out.view(n, -1).argmax(dim=1)
    rows, cols = pos // 32, pos % 32
    assert rows.min() == 12 and rows.max() == 20 and cols.min() == 12 and cols.max() == 20
    freq = torch.bincount((rows - 12) * 9 + (cols - 12), minlength=81).float() / n
    assert (freq - 1 / 81).abs().max() < 0.01  # uniform over 81 offsets
    # Zero padding: an all-ones image shows zeros exactly where the window leaves the image.
    ones = augment_batch(torch.ones(n, 1, 32, 32), torch.Generator().manual_seed(1), hflip=False)
    assert set(ones.unique().tolist()) == {0.0, 1.0}
    # Flips: a left-half image is mirrored about half the time.
    half = torch.zeros(n, 1, 32, 32)
    half[..., :16] = 1.0
    flipped = augment_batch(half, torch.Generator().manual_seed(2), pad=0)
    rate = (flipped[..., 0, 31] == 1.0).float().mean()
    assert abs(float(rate) - 0.5) < 0.03


def test_loader_order_is_a_function_of_seed_and_epoch() -> None:
    train, _ = load_dataset("synthetic", Path("unused"))
    spec = get_dataset_spec("synthetic")

    def first_indices(seed: int, epoch: int) -> list[int]:
        loader = BatchLoader(train, spec, 32, LoaderOptions(train=True, device=torch.device("cpu"), seed=seed))
        loader.set_epoch(epoch)
        return next(iter(loader))["index"].tolist()

    assert first_indices(0, 1) == first_indices(0, 1)
    assert first_indices(0, 1) != first_indices(0, 2)
    assert first_indices(0, 1) != first_indices(1, 1)
    test_loader = BatchLoader(train, spec, 100, LoaderOptions(train=False, device=torch.device("cpu")))
    batches = list(test_loader)
    assert [len(b["target"]) for b in batches] == [100, 100, 56]
    assert torch.cat([b["index"] for b in batches]).tolist() == list(range(256))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("views", [{}, {"aug": True}, {"strong_view": True}], ids=["plain", "aug", "two-view"])
def test_batches_do_not_depend_on_how_many_the_loader_prepares_at_once(
    monkeypatch: pytest.MonkeyPatch, train: bool, channels_last: bool, views: dict[str, bool]
) -> None:
    """The loader augments and normalises chunks of batches at once; any chunk size gives the same stream."""
    from dskd_core.data import loader as loader_module

    gen = torch.Generator().manual_seed(0)
    data = loader_module.TensorDataset(
        torch.randint(0, 256, (1000, 3, 32, 32), dtype=torch.uint8, generator=gen),
        torch.randint(0, 100, (1000,), generator=gen),
    )
    extras = {"draw": lambda index, g: index * 1000 + torch.randint(0, 1000, (len(index),), generator=g)}

    def stream(chunk_bytes: int) -> list[dict[str, torch.Tensor]]:
        monkeypatch.setattr(loader_module, "CHUNK_BYTES", chunk_bytes)
        loader = BatchLoader(
            data,
            get_dataset_spec("synthetic"),
            64,
            LoaderOptions(
                train=train, device=torch.device("cpu"), seed=4, extras=extras, channels_last=channels_last, **views
            ),
        )
        loader.set_epoch(3)
        return list(loader)

    per_batch, chunked = stream(1), stream(3 * 64 * 3 * 32 * 32 * 4 + 5)  # one batch; three batches a chunk
    assert [len(b["target"]) for b in chunked] == [64] * 15 + [40]
    layout = torch.channels_last if channels_last else torch.contiguous_format
    for a, b in zip(per_batch, chunked, strict=True):
        assert a.keys() == b.keys() and b["image"].is_contiguous(memory_format=layout)
        for key in a:
            assert torch.equal(a[key], b[key]), key


def _loader(data: TensorDataset, seed: int = 2, epoch: int = 1, **options: bool) -> list[dict[str, torch.Tensor]]:
    options_ = LoaderOptions(train=True, device=torch.device("cpu"), seed=seed, **options)
    loader = BatchLoader(data, get_dataset_spec("synthetic"), 32, options_)
    loader.set_epoch(epoch)
    return list(loader)


def _images(n: int = 96) -> TensorDataset:
    gen = torch.Generator().manual_seed(5)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return TensorDataset(images, torch.randint(0, 100, (n,), generator=gen))


def test_a_two_view_loader_adds_an_independent_strongly_augmented_view() -> None:
    """The weak view is the one-view loader's batch; the strong one another crop and flip, then the augmentation."""
    data = _images()
    plain, two = _loader(data), _loader(data, strong_view=True)
    assert len(plain) == len(two) == 3
    for a, b in zip(plain, two, strict=True):
        assert set(b) == {"image", "image_strong", "target", "index"}
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["index"], b["index"])
        assert b["image_strong"].shape == b["image"].shape
        assert not torch.equal(b["image"], b["image_strong"])
    # The strong view, rebuilt from the documented draw order: the order, the first view's crops and flips,
    # then the second view's own crops and flips and its strong draws.
    from dskd_core.data import loader as loader_module
    from dskd_core.data.strong import apply_strong, draw_strong

    spec = get_dataset_spec("synthetic")
    gen = torch.Generator().manual_seed(2 * 1_000_003 + 1)
    order = torch.randperm(len(data), generator=gen)
    loader_module.draw_crop_flip(len(order), gen, hflip=spec.hflip)
    dy, dx, flip = loader_module.draw_crop_flip(len(order), gen, hflip=spec.hflip)
    expected = apply_strong(loader_module.crop_flip(data.images[order], dy, dx, flip), draw_strong(len(order), gen))
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0
    assert torch.allclose(torch.cat([b["image_strong"] for b in two]), (expected.float() - mean) / std)
    again = _loader(data, strong_view=True)
    assert all(torch.equal(a["image_strong"], b["image_strong"]) for a, b in zip(two, again, strict=True))
    other_epoch = _loader(data, epoch=2, strong_view=True)
    assert not torch.equal(two[0]["image_strong"], other_epoch[0]["image_strong"])


def test_aug_is_the_strong_augmentation_of_the_loaders_crops(monkeypatch: pytest.MonkeyPatch) -> None:
    """``aug`` strongly augments the one view after its crop and flip, with draws taken after the crops."""
    from dskd_core.data import loader as loader_module
    from dskd_core.data.strong import apply_strong, draw_strong

    data = _images()
    spec = get_dataset_spec("synthetic")
    seed, epoch = 2, 1
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(data), generator=gen)
    dy, dx, flip = loader_module.draw_crop_flip(len(order), gen, hflip=spec.hflip)
    draws = draw_strong(len(order), gen)
    expected = apply_strong(loader_module.crop_flip(data.images[order], dy, dx, flip), draws)
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0
    got = torch.cat([b["image"] for b in _loader(data, seed=seed, epoch=epoch, aug=True)])
    assert torch.allclose(got, (expected.float() - mean) / std)
    assert not torch.allclose(got, torch.cat([b["image"] for b in _loader(data, seed=seed, epoch=epoch)]))


# --------------------------------------------------------------------------- train_per_class (few labels)


def test_per_class_keeps_count_images_of_each_class_in_one_fixed_draw() -> None:
    from dskd_core.data import per_class

    labels = torch.tensor([i % 4 for i in range(40)] + [3] * 2)  # class 3 has 12 images, the others 10
    images = torch.arange(len(labels), dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).contiguous()
    split = TensorDataset(images, labels)
    few = per_class(split, 3)
    assert torch.bincount(few.labels).tolist() == [3, 3, 3, 3]
    index = few.images[:, 0, 0, 0].long()
    assert torch.equal(few.labels, labels[index]) and torch.equal(index, torch.sort(index).values)  # split order
    again = per_class(split, 3)
    assert torch.equal(again.images, few.images)  # the same draw every time: no seed of the run's
    assert set(per_class(split, 5).images[:, 0, 0, 0].tolist()) >= set(index.tolist())  # a prefix of one order
    assert torch.bincount(per_class(split, 11).labels).tolist() == [10, 10, 10, 11]  # a short class keeps all
    assert per_class(split, None) is split


def test_a_run_on_few_labels_trains_on_them_and_records_the_key(tmp_path: Path) -> None:
    import json

    from dskd_core.resolve import resolve_run_config
    from dskd_core.train.engine import fit
    from dskd_core.train.lockstep import stream_key
    from tests.helpers import make_settings

    flags = {"epochs": 1}
    cfg = resolve_run_config(
        method="vanilla", student="resnet8", dataset="digits", flags=flags, overrides={"train_per_class": 2}
    )
    run_dir = fit(cfg, make_settings(tmp_path)).run_dir
    start = json.loads((run_dir / "log.jsonl").read_text().splitlines()[0])
    assert start["train_samples"] == 20 and start["test_samples"] == 364  # 2 of each digit; the whole test split
    assert json.loads((run_dir / "config.json").read_text())["train_per_class"] == 2
    whole = resolve_run_config(method="vanilla", student="resnet8", dataset="digits", flags=flags)
    assert whole.train_per_class is None and stream_key(whole) != stream_key(cfg)  # never one lockstep stream
