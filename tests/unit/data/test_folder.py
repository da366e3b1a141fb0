"""Your own images: class-per-subfolder trees the tests write (PNG, JPEG, BMP, GIF from digits and
Fashion-MNIST), read in memory and streamed, and every bad-data case; `tfds:<name>` through
`tfds.testing.mock_data`. Pixels are checked against Pillow's decoder, an independent one."""

import keras
import numpy as np
import pytest
from PIL import Image

import tfaux.data as data
from tfaux.data import folder, image_cache, tfds_images


@pytest.fixture(scope="module")
def fashion():
    raw = data.load_raw("fashion_mnist")
    return raw.x_train[..., 0], raw.y_train


def _write(path, pixels, fmt="png"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format={"jpg": "JPEG"}.get(fmt, fmt.upper()))
    return path


def _fashion_tree(root, fashion, *, per_class=6, test_per_class=0, classes=(0, 1, 2), fmt="png"):
    """`root/[train/]<class name>/NN.fmt` images of Fashion-MNIST; returns {path: pixels}."""
    x, y = fashion
    written = {}
    for split, count, offset in (("train", per_class, 0), ("test", test_per_class, 1000)):
        if not count:
            continue
        base = root / "train" if test_per_class else root
        base = root / "test" if split == "test" else base
        for k in classes:
            rows = np.flatnonzero(y == k)[offset : offset + count]
            for i, row in enumerate(rows):
                written[_write(base / f"class_{k}" / f"{i:02d}.{fmt}", x[row], fmt)] = x[row]
    return written


def _options(tmp_path, **kwargs):
    return data.ImageOptions(cache_dir=str(tmp_path / "cache"), **kwargs)


def test_a_nested_folder_keeps_its_test_split_class_names_and_exact_pixels(tmp_path, fashion):
    written = _fashion_tree(tmp_path / "d", fashion, per_class=5, test_per_class=2)
    raw = data.load_raw("folder", options=_options(tmp_path, path=str(tmp_path / "d")))
    assert raw.class_names == ("class_0", "class_1", "class_2")
    assert raw.x_train.shape == (15, 28, 28, 1) and raw.x_test.shape == (6, 28, 28, 1)
    np.testing.assert_array_equal(raw.y_train, np.repeat([0, 1, 2], 5))
    np.testing.assert_array_equal(np.sort(raw.y_test), np.repeat([0, 1, 2], 2))
    expected = [written[p] for p in sorted(written) if "/train/" in str(p)]
    np.testing.assert_array_equal(raw.x_train[..., 0], np.stack(expected))  # PNG is lossless
    for image, label in zip(raw.x_test[..., 0], raw.y_test, strict=True):  # test images keep labels
        folder_images = [x for p, x in written.items() if f"/test/class_{label}/" in str(p)]
        assert any(np.array_equal(image, x) for x in folder_images)
    assert any("28x28, grayscale" in note for note in raw.notes)


def test_the_test_split_is_in_a_fixed_mixed_order_so_its_first_images_span_the_classes(
    tmp_path, fashion
):
    # Evaluations take the first N test images; class-sorted files would give one class.
    _fashion_tree(tmp_path / "d", fashion, per_class=2, test_per_class=10, classes=range(10))
    _fashion_tree(tmp_path / "flat", fashion, per_class=10, classes=range(10))
    for root in ("d", "flat"):
        options = _options(tmp_path, path=str(tmp_path / root), test_fraction=0.5)
        first = data.load_raw("folder", options=options).y_test
        assert len(set(first[:20].tolist())) >= 6, first
        np.testing.assert_array_equal(first, data.load_raw("folder", options=options).y_test)


def test_a_flat_folder_gets_a_stratified_test_split_that_no_run_seed_moves(tmp_path, fashion):
    _fashion_tree(tmp_path / "d", fashion, per_class=10)
    options = _options(tmp_path, path=str(tmp_path / "d"), test_fraction=0.3)
    first = data.load_arrays("folder", options=options, seed=0, val_fraction=0.2)
    second = data.load_arrays("folder", options=options, seed=1, val_fraction=0.2)
    assert np.bincount(first.y_test).tolist() == [3, 3, 3]
    np.testing.assert_array_equal(first.x_test, second.x_test)  # the same test images
    assert not np.array_equal(first.val_index, second.val_index)  # the run seed splits train/val
    assert first.info.class_counts == tuple(np.bincount(first.y_train, minlength=3))


def test_mixed_sizes_resize_to_the_most_common_and_channels_follow_the_data(tmp_path, fashion):
    x, _ = fashion
    root = tmp_path / "d"
    for i in range(3):
        _write(root / "a" / f"{i}.png", x[i, :12, :12])
        _write(root / "b" / f"{i}.png", x[10 + i, :12, :12])
    odd = x[20, :20, :16]
    _write(root / "b" / "odd.png", odd)
    raw = data.load_raw("folder", options=_options(tmp_path, path=str(root), test_fraction=0.25))
    assert raw.image_shape == (12, 12, 1)
    # The odd image, wherever it went, is Pillow's antialiased bilinear resize within rounding.
    resized = np.asarray(Image.fromarray(odd).resize((12, 12), Image.Resampling.BILINEAR), float)
    images = np.concatenate([raw.x_train, raw.x_test])[..., 0].astype(float)
    closest = np.abs(images - resized).mean(axis=(1, 2)).min()
    assert closest < 6.0, closest  # two antialiasing filters; an unrelated image is ~60 away

    # One color image makes the set RGB; its gray images become three equal channels.
    color = np.stack([x[30, :12, :12], x[31, :12, :12], x[32, :12, :12]], -1)
    _write(root / "a" / "color.png", color)
    rgb = data.load_raw("folder", options=_options(tmp_path, path=str(root), test_fraction=0.25))
    assert rgb.image_shape == (12, 12, 3)
    gray_rows = [i for i in range(len(rgb.x_train)) if (rgb.x_train[i] != color).any()]
    for i in gray_rows:
        np.testing.assert_array_equal(rgb.x_train[i, ..., 0], rgb.x_train[i, ..., 2])
    # Forced to one channel, the color image is its ITU-R 601 luma.
    gray = data.load_raw(
        "folder", options=_options(tmp_path, path=str(root), test_fraction=0.25, channels=1)
    )
    luma = color.astype(float) @ np.array([0.2989, 0.5870, 0.1140])
    images = np.concatenate([gray.x_train, gray.x_test])[..., 0].astype(float)
    assert np.abs(images - luma).max(axis=(1, 2)).min() <= 1.0


# JPEG decoders may round their inverse DCTs differently: 3 levels apart at most, measured.
@pytest.mark.parametrize("fmt, tolerance", [("png", 0), ("bmp", 0), ("gif", 0), ("jpg", 4)])
def test_each_format_decodes_like_pillow(tmp_path, fashion, fmt, tolerance):
    written = _fashion_tree(tmp_path / "d", fashion, per_class=3, classes=(0, 1), fmt=fmt)
    raw = data.load_raw(
        "folder", options=_options(tmp_path, path=str(tmp_path / "d"), test_fraction=0.4)
    )
    decoded = {p: np.asarray(Image.open(p).convert("L")) for p in written}
    images = np.concatenate([raw.x_train, raw.x_test])[..., 0].astype(int)
    for pixels in decoded.values():  # every file is one of the loaded images
        assert np.abs(images - pixels.astype(int)).max(axis=(1, 2)).min() <= tolerance


def test_in_memory_and_streamed_give_the_same_batches_for_the_same_seed(tmp_path, fashion):
    _fashion_tree(tmp_path / "d", fashion, per_class=20, test_per_class=4)
    batches = {}
    for limit in (None, "0"):
        options = _options(tmp_path, path=str(tmp_path / "d"), memory_limit=limit)
        keras.utils.set_random_seed(3)  # as the runner does before every load
        splits = data.load("folder", batch_size=16, seed=3, val_fraction=0.2, options=options)
        batches[limit] = {
            split: [(x.numpy(), y.numpy()) for _ in range(2) for x, y in getattr(splits, split)]
            for split in ("train", "val", "test")
        }
        streamed = any("streamed from the cache" in note for note in splits.info.notes)
        assert streamed == (limit == "0")
    for split in ("train", "val", "test"):
        for (x1, y1), (x2, y2) in zip(batches[None][split], batches["0"][split], strict=True):
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)
    streamed = data.load_raw(
        "folder", options=_options(tmp_path, path=str(tmp_path / "d"), memory_limit="0")
    )
    assert isinstance(streamed.x_train, np.memmap)  # on disk, not in memory


def test_a_broken_image_is_named_or_skipped_and_counted(tmp_path, fashion):
    written = _fashion_tree(tmp_path / "d", fashion, per_class=4)
    broken = sorted(written)[1]
    broken.write_bytes(broken.read_bytes()[:60])  # truncated
    options = _options(tmp_path, path=str(tmp_path / "d"))
    with pytest.raises(data.BadDataError, match="skip_bad_images") as excinfo:
        data.load_raw("folder", options=options)
    assert str(broken) in str(excinfo.value)
    raw = data.load_raw(
        "folder", options=_options(tmp_path, path=str(tmp_path / "d"), skip_bad_images=True)
    )
    assert len(raw.x_train) + len(raw.x_test) == 11
    assert any("skipped 1 image that" in note and str(broken) in note for note in raw.notes)


def test_files_that_are_not_images_are_ignored_and_counted(tmp_path, fashion):
    _fashion_tree(tmp_path / "d", fashion, per_class=3)
    (tmp_path / "d" / "class_0" / "notes.txt").write_text("not an image")
    (tmp_path / "d" / ".hidden").mkdir()
    raw = data.load_raw("folder", options=_options(tmp_path, path=str(tmp_path / "d")))
    assert len(raw.x_train) + len(raw.x_test) == 9 and raw.class_names[0] == "class_0"
    assert any("ignored 1 file that" in note and "notes.txt" in note for note in raw.notes)


def _empty_class(root):
    (root / "class_9").mkdir()
    return "class_9"


def _one_class(root):
    for extra in ("class_1", "class_2"):
        for f in (root / extra).iterdir():
            f.unlink()
        (root / extra).rmdir()
    return str(root)


def _mismatched(root):
    test = root.parent / "nested"
    (test / "train").mkdir(parents=True)
    root.rename(test / "train")
    (test / "test" / "class_0").mkdir(parents=True)
    _write(test / "test" / "class_0" / "x.png", np.zeros((28, 28), np.uint8))
    (test.parent / "d").symlink_to(test)
    return "missing ['class_1', 'class_2']"


@pytest.mark.parametrize("damage", [_empty_class, _one_class, _mismatched])
def test_unusable_folders_are_one_line_errors_naming_the_folder(tmp_path, fashion, damage):
    root = tmp_path / "d"
    _fashion_tree(root, fashion, per_class=3)
    named = damage(root)
    with pytest.raises(data.BadDataError, match="Expected") as excinfo:
        data.load_raw("folder", options=_options(tmp_path, path=str(tmp_path / "d")))
    assert named in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_the_cache_is_reused_and_renewed_when_a_file_changes(tmp_path, fashion, monkeypatch):
    written = _fashion_tree(tmp_path / "d", fashion, per_class=3)
    options = _options(tmp_path, path=str(tmp_path / "d"))
    decodes = []
    original = folder.decode_files
    monkeypatch.setattr(folder, "decode_files", lambda *a: decodes.append(1) or original(*a))
    first = data.load_raw("folder", options=options)
    data.load_raw("folder", options=options)
    assert len(decodes) == 1  # the second load read the cache
    changed = sorted(written)[0]
    _write(changed, np.full((28, 28), 255, np.uint8))
    again = data.load_raw("folder", options=options)
    assert len(decodes) == 2
    assert not np.array_equal(first.x_train, again.x_train) or not np.array_equal(
        first.x_test, again.x_test
    )


def test_sizes_parse_with_units_and_bad_ones_are_refused():
    assert image_cache.parse_size("4GiB") == 4 * 2**30
    assert image_cache.parse_size("500 MB") == 500 * 10**6
    assert image_cache.parse_size("0") == 0 and image_cache.parse_size(7) == 7
    with pytest.raises(ValueError, match="4GiB"):
        image_cache.parse_size("lots")


def test_a_strongly_imbalanced_folder_warns_in_one_line(tmp_path, fashion):
    x, _ = fashion
    for i in range(22):
        _write(tmp_path / "d" / "many" / f"{i}.png", x[i])
    for i in range(2):
        _write(tmp_path / "d" / "few" / f"{i}.png", x[100 + i])
    with pytest.warns(UserWarning, match="strongly imbalanced classes: .* 'many'"):
        data.load("folder", options=_options(tmp_path, path=str(tmp_path / "d")), val_fraction=0.1)


def test_any_prepared_tfds_dataset_by_name_with_its_label_names(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(tfds_images, "tfds_is_prepared", lambda name, data_dir: True)
    with tfds.testing.mock_data(num_examples=12):  # random images of random sizes
        splits = data.load(
            "tfds:tf_flowers",
            batch_size=4,
            image_size=16,
            options=_options(tmp_path),
            val_fraction=0.25,
        )
    assert splits.info.class_names == ("dandelion", "daisy", "tulips", "sunflowers", "roses")
    assert splits.info.image_shape == (16, 16, 3)
    x, _ = next(iter(splits.train))
    assert x.shape[1:] == (16, 16, 3)


def test_a_tfds_dataset_that_is_not_prepared_says_how_to_prepare_it(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="tfds build tf_flowers"):
        data.load_raw("tfds:tf_flowers", data_dir=str(tmp_path), options=_options(tmp_path))


def test_your_own_images_are_not_mirrored_unless_you_say_mirrors_keep_their_labels():
    from tfaux.data.pipeline import default_augmentation

    assert default_augmentation("folder") == (True, False)
    assert default_augmentation("folder", flip=True) == (True, True)
    assert default_augmentation("fashion_mnist", flip=False) == (True, False)
    assert default_augmentation("tfds:beans", augment=False, flip=True) == (False, False)


def test_streaming_is_chosen_by_the_default_budget_a_share_of_the_memory(
    tmp_path, fashion, monkeypatch
):
    _fashion_tree(tmp_path / "d", fashion, per_class=4)
    options = _options(tmp_path, path=str(tmp_path / "d"))  # no memory_limit
    assert not isinstance(data.load_raw("folder", options=options).x_train, np.memmap)
    ram = image_cache.memory_budget() / image_cache.DEFAULT_MEMORY_SHARE
    # 12 images of 784 bytes: above the budget on a machine whose quarter is 9,000 bytes.
    monkeypatch.setattr(image_cache, "DEFAULT_MEMORY_SHARE", 9000 / ram)
    assert isinstance(data.load_raw("folder", options=options).x_train, np.memmap)


def test_an_unknown_tfds_name_is_one_line_that_says_so(tmp_path):
    with pytest.raises(data.BadDataError, match="Unknown TFDS dataset 'does_not_exist'"):
        data.load_raw("tfds:does_not_exist", download=True, options=_options(tmp_path))
    with pytest.raises(ValueError, match="e.g. tfds:beans"):
        data.load_raw("tfds:", options=_options(tmp_path))
