"""The AutoAttack ensemble: worst case over attacks run on the still-robust points, its checks on
models built to trip them, and resuming an interrupted evaluation."""

import json

import keras
import numpy as np
import pytest

from tests.helpers import linear_problem, random_images, tiny_model
from tfaux.evaluate.autoattack import ATTACKS, AutoAttack

QUICK = {"steps": 10, "queries": 100, "targets": 3}

# What each version runs and with which settings, for L∞ and L2, read from fra31/auto-attack,
# autoattack/autoattack.py: `AutoAttack.set_version`, over the values of `AutoAttack.__init__`
# it leaves (FAB: 5 restarts; APGD-T: 1; Square: p_init 0.8, resc_schedule False; every APGD
# and FAB: n_iter 100; APGD: rho 0.75, eot_iter 1), and `run_standard_evaluation`, which sets
# `self.fab.n_restarts = 1` before every FAB-T run. APGD-CE and APGD-DLR are one object (`apgd`),
# FAB and FAB-T another (`fab`). Attacks a version does not run hold those same objects' values.
APGD_SETTINGS = ("restarts", "steps", "eot", "rho")
FAB_SETTINGS = ("restarts", "steps")
SQUARE_SETTINGS = ("queries", "p_init", "rescale")
REFERENCE_VERSIONS = {
    "standard": {
        "runs": ("apgd-ce", "apgd-t", "fab-t", "square"),
        "apgd-ce": (1, 100, 1, 0.75),
        "apgd-dlr": (1, 100, 1, 0.75),
        "fab": (1, 100),
        "apgd-t": (1, 100, 1, 0.75),
        "fab-t": (1, 100),
        "square": (5000, 0.8, False),
        "targets": {"apgd-t": 9, "fab-t": 9},
    },
    "plus": {
        "runs": ("apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"),
        "apgd-ce": (5, 100, 1, 0.75),
        "apgd-dlr": (5, 100, 1, 0.75),
        "fab": (5, 100),
        "apgd-t": (1, 100, 1, 0.75),
        "fab-t": (1, 100),  # not FAB's 5: `run_standard_evaluation` resets it
        "square": (5000, 0.8, False),
        "targets": {"apgd-t": 9, "fab-t": 9},
    },
    "rand": {
        "runs": ("apgd-ce", "apgd-dlr"),
        "apgd-ce": (1, 100, 20, 0.75),
        "apgd-dlr": (1, 100, 20, 0.75),
        "fab": (5, 100),  # the constructor's, untouched by set_version('rand')
        "apgd-t": (1, 100, 1, 0.75),  # its own object: no EOT
        "fab-t": (1, 100),
        "square": (5000, 0.8, False),
        "targets": {"apgd-t": 9, "fab-t": 9},
    },
}


def _passed(result) -> dict:
    return {check.name: check.passed for check in result.checks}


def test_the_ensemble_is_exact_on_a_linear_model_and_its_checks_pass():
    model, x, y, distance = linear_problem()
    eps = 0.05
    # One target: the other two classes sit at −100, where the targeted DLR loss is flat.
    result = AutoAttack(model, eps=eps, steps=20, queries=200, targets=1).run(x, y)
    assert result.clean.all()
    np.testing.assert_array_equal(result.robust, distance > eps)
    # Accuracy after each attack only falls, and the last one is the worst case.
    after = list(result.after.values())
    assert list(result.after) == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert after == sorted(after, reverse=True) and after[-1] == result.robust_accuracy
    assert _passed(result) == {
        "deterministic model": True,
        "logits, not probabilities": True,
        "no zero DLR gradient": True,
        "adversarial images valid": True,
        "Square finds nothing new": True,
    }


def test_plus_runs_untargeted_fab_in_the_reference_order_and_is_exact_on_a_linear_model():
    model, x, y, distance = linear_problem()
    eps = 0.05
    attack = AutoAttack(model, eps=eps, version="plus", steps=10, queries=100, targets=2)
    # The reference's order: ['apgd-ce', 'apgd-dlr', 'fab', 'square', 'apgd-t', 'fab-t'].
    assert attack.stages() == [
        ("apgd-ce", 0), ("apgd-dlr", 0), ("fab", 0), ("square", 0),
        ("apgd-t", 2), ("apgd-t", 3), ("fab-t", 2), ("fab-t", 3),
    ]  # fmt: skip
    assert attack.by_name["fab"].restarts == attack.by_name["apgd-ce"].restarts == 5
    result = attack.run(x, y)
    np.testing.assert_array_equal(result.robust, distance > eps)
    assert list(result.after) == ["apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"]
    assert "untargeted FAB" not in _passed(result)  # built: no skipped check any more

    # FAB on its own: it stops ~0.5 % beyond the boundary, so no point lies within 1 % below ε.
    eps = 0.052
    assert not np.any((distance > eps / 1.01) & (distance <= eps))
    alone = AutoAttack(model, eps=eps, attacks=("fab",), steps=20).run(x, y)
    assert list(alone.after) == ["fab"]
    np.testing.assert_array_equal(alone.robust, distance > eps)


@pytest.mark.parametrize("version", sorted(REFERENCE_VERSIONS))
def test_each_version_sets_the_reference_restarts_targets_and_queries(version):
    expected = REFERENCE_VERSIONS[version]
    model = tiny_model(num_classes=10)
    assert AutoAttack(model, eps=0.03, version=version).attacks == expected["runs"]
    # Every attack, so that those the version does not run show their settings too
    attack = AutoAttack(model, eps=0.03, version=version, attacks=ATTACKS)
    for name in ATTACKS:
        family = name.split("-")[0]
        names = {"apgd": APGD_SETTINGS, "fab": FAB_SETTINGS, "square": SQUARE_SETTINGS}[family]
        observed = tuple(getattr(attack.by_name[name], key) for key in names)
        assert observed == expected[name], (name, dict(zip(names, observed, strict=True)))
    targets = {name: [n for n, _ in attack.stages()].count(name) for name in ("apgd-t", "fab-t")}
    assert targets == expected["targets"]


def test_each_attack_runs_only_on_the_points_still_robust(monkeypatch, digits_model):
    model, x, y = digits_model
    x, y = x[:48], y[:48]
    attack = AutoAttack(model, eps=0.1, **QUICK)
    seen, perturb = [], attack._perturb

    def recording(name, rank, xb, yb):
        seen.append((name, len(xb)))
        return perturb(name, rank, xb, yb)

    monkeypatch.setattr(attack, "_perturb", recording)
    result = attack.run(x, y)
    assert seen[0] == ("apgd-ce", result.clean.sum())  # misclassified points are not attacked
    robust_before = {"apgd-t": result.after["apgd-ce"], "square": result.after["fab-t"]}
    assert 0 < result.robust_accuracy  # every attack had points to work on
    for name, accuracy in robust_before.items():
        assert dict(seen)[name] == round(accuracy * len(x))


def test_a_softmax_output_and_a_randomized_model_trip_their_checks():
    x, y = random_images(16, (16, 16, 1), seed=6), np.arange(16) % 10
    base = tiny_model(num_classes=10)
    inputs = keras.Input((16, 16, 1))
    logits = base(inputs)["logits"]
    softmax = keras.Model(inputs, keras.layers.Softmax()(logits))
    noise = keras.layers.Lambda(lambda t: t + keras.random.normal(keras.ops.shape(t)))
    noisy = keras.Model(inputs, noise(logits))
    attacks = ("apgd-ce",)
    assert (
        _passed(AutoAttack(softmax, eps=0.03, attacks=attacks, steps=2).run(x, y))[
            "logits, not probabilities"
        ]
        is False
    )
    assert (
        _passed(AutoAttack(noisy, eps=0.03, attacks=attacks, steps=2).run(x, y))[
            "deterministic model"
        ]
        is False
    )
    honest = _passed(AutoAttack(base, eps=0.03, attacks=attacks, steps=2).run(x, y))
    assert honest["deterministic model"] and honest["logits, not probabilities"]
    # The rand version is the one for randomized models: gradients averaged over 20 passes.
    rand = AutoAttack(noisy, eps=0.03, version="rand", steps=2)
    assert rand.stages() == [("apgd-ce", 0), ("apgd-dlr", 0)]
    assert rand.by_name["apgd-ce"].eot == 20
    assert _passed(rand.run(x, y))["deterministic model"] is True


def test_square_catches_a_model_that_hides_its_gradients():
    """Quantized inputs behind a stop-gradient: the white-box attacks see a zero gradient and find
    little, Square finds what they missed, and both checks say so."""
    model, x, y, distance = linear_problem()
    inputs = keras.Input((4, 4, 1))
    hidden = keras.layers.Lambda(lambda t: keras.ops.stop_gradient(keras.ops.round(t * 64) / 64))(
        inputs
    )
    masked = keras.Model(inputs, model(hidden))
    result = AutoAttack(masked, eps=0.05, steps=10, queries=300, targets=2).run(x, y)
    passed = _passed(result)
    assert passed["no zero DLR gradient"] is False
    assert passed["Square finds nothing new"] is False
    assert result.after["fab-t"] - result.after["square"] > 0.2


def test_an_interrupted_evaluation_resumes_to_the_same_result(tmp_path, monkeypatch, digits_model):
    model, x, y = digits_model
    x, y = x[:48], y[:48]
    settings = dict(eps=0.1, batch_size=8, **QUICK)
    expected = AutoAttack(model, **settings).run(x, y)

    state = tmp_path / "autoattack.npz"
    attack, calls, perturb = AutoAttack(model, **settings), [], None
    perturb = attack._perturb

    def dies_on_the_fifth_batch(*args):
        calls.append(args[0])
        if len(calls) == 5:
            raise KeyboardInterrupt
        return perturb(*args)

    monkeypatch.setattr(attack, "_perturb", dies_on_the_fifth_batch)
    with pytest.raises(KeyboardInterrupt):
        attack.run(x, y, state_path=state)
    assert state.exists()
    resumed = AutoAttack(model, **settings).run(x, y, state_path=state)
    np.testing.assert_array_equal(resumed.robust, expected.robust)
    assert resumed.after == expected.after

    with pytest.raises(ValueError, match="another evaluation's"):
        AutoAttack(model, **{**settings, "eps": 0.05}).run(x, y, state_path=state)
    assert resumed.robust.any() and not resumed.robust.all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"version": "fast"}, "Received: version='fast'"),
        ({"attacks": ("apgd-ce", "pgd")}, "Received: attacks="),
        ({"eps": -0.1}, "Received: eps=-0.1"),
        ({"queries": 0}, "Received: queries=0"),
    ],
)
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AutoAttack(tiny_model(), **{"eps": 0.03, **kwargs})


def test_too_few_classes_for_the_dlr_losses_is_refused():
    with pytest.raises(ValueError, match="at least 4 classes"):
        AutoAttack(tiny_model(num_classes=3), eps=0.03)
    AutoAttack(tiny_model(num_classes=3), eps=0.03, attacks=("apgd-ce", "square"))


def test_a_robust_recipe_reports_autoattack_as_its_headline_and_evaluate_reads_the_export(
    tmp_path, capsys
):
    from tests.helpers import quick_eval_cli, run_cli

    code = run_cli(
        "robust_baselines",
        *("--set", "data.dataset=digits", "--set", "data.train_size=none"),
        *("--set", "data.test_size=none", "--set", "variants=none@pgd,none@fgsm_rs"),
        *("--set", "model.backbone=small_cnn", "--set", "training.epochs=1"),
        *("--set", "monitor.robust_examples=32", "--set", "monitor.images_every=0"),
        *quick_eval_cli(),
        "--no-progress",
        tmp_path=tmp_path,
    )
    assert code == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    results = json.loads((run_dir / "results.json").read_text())
    label = "AutoAttack ε=0.1"
    for variant in results["variants"].values():
        assert variant["robust_attack"] == label
        autoattack = variant["robustness"]["autoattack"]
        assert autoattack["examples"] == 16 and variant["robustness"]["examples"][label] == 16
        assert variant["robust_accuracy"] == autoattack["robust"] <= autoattack["clean"]
        checks = {c["name"] for c in variant["robustness"]["sanity"]}
        assert {"deterministic model", "Square finds nothing new"} <= checks
        assert len(np.load(run_dir / "variants" / variant["correct"])["robust"]) == 16
    assert results["comparison"]["metrics"]["robust"] == label
    assert f"{label} (n=16)" in (run_dir / "results.md").read_text()
    entries = json.loads((run_dir / "robustbench.json").read_text())
    assert [e["name"] for e in entries] == [f"robust_baselines/{n}" for n in results["variants"]]
    assert entries[0]["architecture"] == "small_cnn" and entries[0]["autoattack_examples"] == 16

    capsys.readouterr()
    export = results["export"]
    args = ["evaluate", export, "--eps", "0.1", "--examples", "24", "--no-progress"]
    assert run_cli(*args, "--attacks", "apgd-ce,pgd", "--json") == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["examples"] == 24 and report["eps"] == 0.1
    assert report["robust"] <= min(report["apgd-ce"], report["PGD-20 ε=0.1"]) <= report["clean"]
    for bad, message in [
        (["evaluate", str(tmp_path), "--eps", "0.1"], "Expected a SavedModel directory"),
        (["evaluate", export, "--eps", "-0.1"], "Expected --eps >= 0"),
        (["evaluate", export, "--eps", "0.1", "--dataset", "fashion_mnist"], "shape"),
        (["evaluate", export, "--eps", "0.1", "--attacks", "pgdd"], "Expected attacks from"),
    ]:
        assert run_cli(*bad) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_an_attack_that_leaves_the_ball_fools_nothing_and_fails_its_check(monkeypatch):
    model, x, y, _ = linear_problem(32)
    attack = AutoAttack(model, eps=0.05, attacks=("apgd-ce",), steps=2)
    monkeypatch.setattr(attack, "_perturb", lambda name, rank, xb, yb: 1.0 - xb)  # far outside
    result = attack.run(x, y)
    assert result.robust_accuracy == result.clean_accuracy == 1.0
    assert _passed(result)["adversarial images valid"] is False


@pytest.mark.parametrize(
    "change",
    ["reversed images", "more steps", "another seed", "rand version", "other weights"],
)
def test_a_saved_state_is_only_continued_by_the_same_evaluation(change, tmp_path, digits_model):
    model, x, y = digits_model
    x, y = x[:16], y[:16]
    state = tmp_path / "state.npz"
    settings = {"eps": 0.1, "attacks": ("apgd-ce",), "steps": 3}
    AutoAttack(model, **settings).run(x, y, state_path=state)
    AutoAttack(model, **settings).run(x, y, state_path=state)  # the same: read back
    if change == "reversed images":
        x, y = x[::-1], y[::-1]
    else:
        settings.update(
            {"more steps": {"steps": 4}, "another seed": {"seed": 1}}.get(change, {}),
            **({"version": "rand"} if change == "rand version" else {}),
        )
    if change == "other weights":
        model = keras.models.clone_model(model)  # new random weights
    with pytest.raises(ValueError, match="another evaluation's"):
        AutoAttack(model, **settings).run(x, y, state_path=state)
