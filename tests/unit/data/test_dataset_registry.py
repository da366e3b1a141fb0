"""The dataset registry is the one source of dataset facts: what other modules derive agrees."""

import dataclasses

import pytest

import tfaux.data as data
from tfaux.data import pipeline
from tfaux.tasks.coarse import COARSE_GROUPS, check_hierarchy, coarse_options, label_map


def test_every_dataset_fact_comes_from_its_spec_and_the_derived_lists_agree():
    names = data.list_datasets()
    specs = {name: data.dataset_spec(name) for name in names}
    assert [spec.name for spec in specs.values()] == names
    assert len({spec.title for spec in specs.values()}) == len(names)  # titles tell them apart

    flip = {n for n, s in specs.items() if s.flip_invariant}
    coarse = {n for n, s in specs.items() if s.coarse_labels}
    no_default_crop = {n for n, s in specs.items() if not s.default_crop}
    # What the specs say today; a new dataset must state these facts, not inherit a default.
    assert flip == {"fashion_mnist", "cifar10", "cifar100"}
    assert coarse == {"cifar100"}
    assert no_default_crop == {"digits"}

    # The functions other modules call read the same facts.
    assert {n for n in names if pipeline.default_augmentation(n)[1]} == flip
    assert {n for n in names if not pipeline.default_augmentation(n)[0]} == no_default_crop
    assert {n for n in names if data.has_coarse_labels(n)} == coarse
    for name in names:
        assert pipeline.default_augmentation(name, True) == (True, name in flip)
        assert pipeline.default_augmentation(name, False) == (False, False)

    # The coarse task accepts exactly the datasets with their own labels or a grouping.
    with_hierarchy = set()
    for name in names:
        try:
            check_hierarchy(name)
            with_hierarchy.add(name)
        except ValueError as error:
            assert "(cifar100)" in str(error)
    assert with_hierarchy == coarse | set(COARSE_GROUPS)


@pytest.mark.parametrize("name", sorted(COARSE_GROUPS))
def test_coarse_groups_are_for_registered_datasets_and_cover_their_classes(name):
    spec = data.dataset_spec(name)  # raises for a name the registry does not know
    assert not spec.coarse_labels  # a dataset with its own coarse labels needs no grouping
    groups = COARSE_GROUPS[name]
    assert sorted(c for group in groups.values() for c in group) == list(range(spec.num_classes))
    assert coarse_options(name, spec.num_classes) == {
        "num_coarse": len(groups),
        "fine_to_coarse": label_map(groups, spec.num_classes),
    }


def test_unknown_dataset_and_duplicate_registration_are_rejected():
    with pytest.raises(ValueError, match="Did you mean 'cifar100'"):
        data.dataset_spec("cifar-100")
    with pytest.raises(ValueError, match="Did you mean 'svhn_cropped'"):
        pipeline.default_augmentation("svhn")
    with pytest.raises(ValueError, match="already registered"):
        data.register_dataset("digits", title="digits again", num_classes=10)


def test_load_raw_holds_the_spec_to_the_loaded_data():
    digits = data.dataset_spec("digits")
    assert len(data.load_raw("digits").class_names) == digits.num_classes
    with data.DATASETS.scoped():
        data.DATASETS.unregister("digits")
        data.DATASETS.register(dataclasses.replace(digits, num_classes=12))
        with pytest.raises(ValueError, match=r"\(12, False\). Received: \(10, False\)"):
            data.load_raw("digits")
    assert data.dataset_spec("digits") is digits  # the scope left no trace
