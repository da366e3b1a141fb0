"""A robustness report that cannot be fooled easily: many attacks, ε curves, sanity checks.

One pass over the test set, batch by batch (adversarial images are scored and dropped, so memory
does not grow with the dataset): every attack records per-example correctness, expensive attacks
(SPSA, C&W, the ε curves, the sanity attacks) on a prefix of the set. The sanity checks then
compare attacks on the same examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from tfaux.attacks import Attacker, AttackSpec, check_eps
from tfaux.config import EvalConfig
from tfaux.data.pipeline import labels_of
from tfaux.evaluate.autoattack import AutoAttack
from tfaux.evaluate.sanity import run_checks, warn_failed
from tfaux.progress import progress_bar


@dataclass(frozen=True)
class _Job:
    key: str
    spec: AttackSpec | None  # None: clean
    limit: int | None  # first `limit` examples; None: all
    source: str = "model"  # whose gradients craft the images: "model" or "surrogate"


def robustness(
    model: keras.Model,
    dataset: tf.data.Dataset,
    config: EvalConfig | None = None,
    *,
    surrogate: keras.Model | None = None,
    progress: bool = True,
    desc: str = "evaluate",
    context: str = "",
) -> dict:
    """Accuracy of the primary classifier under every configured attack, with sanity checks.

    Args:
        model: a dict-output model (uses "logits") or a plain classifier.
        dataset: batches of (images in [0, 1], labels).
        config: which attacks, budgets and subset sizes (default `EvalConfig()`).
        surrogate: a standard-trained model for the transfer check (skipped without one).
        progress: show progress (a bar on a terminal, one line otherwise).
        desc: label of the bar.
        context: prefix of the warning printed when a check fails (e.g. the variant).

    Returns:
        {"clean", "fgsm": {ε: acc}, "attacks": {label: acc}, "curves": {"fgsm"|"pgd": {ε: acc}},
         "examples": {label: n}, "sanity": [checks], "trustworthy": bool, "num_examples": n,
         "correct": {key: bool array}}; "correct" holds the per-example correctness (numpy, not
        JSON: paired tests between variants on the same test images read it) of "clean", of
        every attack in "attacks" (on the prefix it ran on), under each FGSM's table column
        "FGSM ε=<key of "fgsm">" too, and "robust" (the headline attack's again, as older runs
        saved it). Each array's mean is its reported accuracy.
    """
    config = config or EvalConfig()
    jobs, roles = _jobs(config, surrogate is not None)
    attackers = {"model": Attacker(model)}
    if surrogate is not None:
        attackers["surrogate"] = Attacker(surrogate)
    correct = {job.key: [] for job in jobs}
    seen, gradients, kept = 0, None, ([], [])  # kept: AutoAttack's first examples
    batches = progress_bar(dataset, desc=desc, unit="batch", enabled=progress)
    for index, (x, y) in enumerate(batches):
        y = labels_of(y)
        if gradients is None:
            gradients = input_gradient_stats(attackers["model"], x, y)
        if config.autoattack and seen < config.autoattack_examples:
            kept[0].append(x[: config.autoattack_examples - seen].numpy())
            kept[1].append(y[: config.autoattack_examples - seen].numpy())
        for job in jobs:
            take = x.shape[0] if job.limit is None else min(x.shape[0], job.limit - seen)
            if take <= 0:
                continue
            xb, yb = x[:take], y[:take]
            if job.spec is not None:
                xb = attackers[job.source](job.spec, xb, yb, seed=index)
            predicted = np.argmax(attackers["model"].predict(xb).numpy(), axis=-1)
            correct[job.key].append(predicted == yb.numpy())
        seen += int(x.shape[0])
    if seen == 0:
        raise ValueError("Expected a non-empty dataset. Received: a dataset with no examples.")
    correct = {k: np.concatenate(v) if v else np.zeros(0, bool) for k, v in correct.items()}
    autoattack = None
    if config.autoattack:
        autoattack = AutoAttack(
            model,
            eps=config.eps,
            version=config.autoattack_version,
            steps=config.autoattack_steps,
            queries=config.autoattack_queries,
        ).run(np.concatenate(kept[0]), np.concatenate(kept[1]), progress=progress)
    return _summary(config, correct, roles, gradients, _num_classes(model), context, autoattack)


def input_gradient_stats(attacker: Attacker, x, y) -> dict:
    """Whether ∇ₓ CE(logits, y) is finite, and the fraction of examples where it is all zero."""
    x = tf.convert_to_tensor(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(y, attacker.model_fn(x))
    gradient = tape.gradient(loss, x)
    if gradient is None:  # no differentiable path from the input at all
        return {"finite": True, "zero_fraction": 1.0}
    flat = tf.reshape(gradient, [x.shape[0], -1]).numpy()
    return {
        "finite": bool(np.all(np.isfinite(flat))),
        "zero_fraction": float(np.mean(np.all(flat == 0, axis=1))),
    }


def _jobs(config: EvalConfig, with_surrogate: bool) -> tuple[list[_Job], dict]:
    """The attacks to run and which of them each sanity check compares."""
    eps = check_eps(config.eps)
    jobs = [_Job("clean", None, None)]
    fgsm_eps = sorted({check_eps(e) for e in config.fgsm_eps} | {eps})
    fgsm_labels = {AttackSpec("fgsm", eps=e).label for e in fgsm_eps}
    for e in fgsm_eps:
        jobs.append(_Job(AttackSpec("fgsm", eps=e).label, AttackSpec("fgsm", eps=e), None))
    alpha = config.pgd_step_size  # None: AttackSpec's 2.5ε/k
    pgd = [
        AttackSpec("pgd", eps=eps, steps=k, restarts=config.restarts, step_size=alpha)
        for k in config.pgd_steps
    ]
    jobs += [_Job(spec.label, spec, None) for spec in pgd]
    extra = [
        AttackSpec("bim", eps=eps, steps=config.bim_steps) if config.bim_steps else None,
        AttackSpec("mim", eps=eps, steps=config.mim_steps) if config.mim_steps else None,
        AttackSpec("pgd", eps=config.l2_eps, norm="l2", steps=max(config.pgd_steps))
        if config.l2_eps
        else None,
        # Seed 001's Table 8 runs BIM and MIM in L2 too.
        AttackSpec("bim", eps=config.l2_eps, norm="l2", steps=config.bim_steps)
        if config.l2_eps and config.bim_steps
        else None,
        AttackSpec("mim", eps=config.l2_eps, norm="l2", steps=config.mim_steps)
        if config.l2_eps and config.mim_steps
        else None,
    ]
    jobs += [_Job(spec.label, spec, None) for spec in extra if spec is not None]
    for e in sorted({check_eps(e) for e in config.extra_eps} - {eps}):  # second budgets
        specs = [AttackSpec("fgsm", eps=e), *(_at_eps(spec, e) for spec in pgd)]
        jobs += [_Job(spec.label, spec, None) for spec in specs if spec.label not in fgsm_labels]
    strongest = pgd[-1]
    roles = {"clean": "clean", "fgsm": AttackSpec("fgsm", eps=eps).label, "pgd": strongest.label}

    # ε curves on a prefix; a budget the full pass already ran is read from its prefix.
    for e in config.curve_eps:
        for spec in (AttackSpec("fgsm", eps=e), _at_eps(strongest, e)):
            if spec.label not in {job.key for job in jobs}:
                jobs.append(_Job(spec.label, spec, config.curve_examples))
                roles.setdefault("curve_only", []).append(spec.label)
            roles.setdefault("curves", []).append(spec)

    if config.sanity:
        n = config.sanity_examples  # the PGD run above covers these examples too
        more_steps = strongest.replace(steps=2 * strongest.steps)
        more_restarts = strongest.replace(restarts=2 * strongest.restarts)
        jobs += [_Job(more_steps.label, more_steps, n), _Job(more_restarts.label, more_restarts, n)]
        roles["pgd_more_steps"] = more_steps.label
        roles["pgd_more_restarts"] = more_restarts.label
        if config.curve_eps and max(config.curve_eps) >= 0.3:
            roles["large_eps"] = _at_eps(strongest, max(config.curve_eps)).label
        m = config.blackbox_examples
        spsa = AttackSpec("spsa", eps=eps, steps=config.spsa_steps, samples=config.spsa_samples)
        jobs.append(_Job(spsa.label, spsa, m))
        roles["blackbox"] = (spsa.label,)
        if config.l2_eps:
            cw = AttackSpec("cw_l2", eps=config.l2_eps, steps=config.cw_steps)
            jobs.append(_Job(cw.label, cw, m))
        if with_surrogate:
            jobs.append(_Job(f"transfer {strongest.label}", strongest, n, "surrogate"))
            roles["transfer"] = f"transfer {strongest.label}"
    return jobs, roles


def _at_eps(spec: AttackSpec, eps: float) -> AttackSpec:
    """`spec` at another budget; a set step size scales with it (α/ε is kept, e.g. seed 002's
    α = ε/4), the default 2.5ε/k follows by itself."""
    if spec.step_size is None or eps == 0:
        return spec.replace(eps=eps, step_size=None)
    return spec.replace(eps=eps, step_size=spec.step_size * eps / spec.eps)


def _summary(config, correct, roles, gradients, num_classes, context, autoattack) -> dict:
    roles = dict(roles)
    headline = roles["pgd"]
    if autoattack is not None:
        headline = f"AutoAttack ε={config.eps:g}"
        correct[headline] = autoattack.robust
    accuracy = {k: float(np.mean(v)) if len(v) else float("nan") for k, v in correct.items()}
    prefix = config.curve_examples
    curves = {name: {"0": float(np.mean(correct["clean"][:prefix]))} for name in ("fgsm", "pgd")}
    curve_only = roles.pop("curve_only", [])
    for spec in roles.pop("curves", []):
        curves[spec.name][f"{spec.eps:g}"] = float(np.mean(correct[spec.label][:prefix]))
    checks = []
    if config.sanity:
        checks = run_checks(
            correct,
            **roles,
            gradients=gradients,
            num_classes=num_classes,
            tolerance=config.tolerance,
        )
    if autoattack is not None:
        checks += autoattack.checks
    if checks:
        warn_failed(checks, context)
    clean = accuracy.pop("clean")
    examples = {k: int(len(v)) for k, v in correct.items()}
    fgsm = {f"{e:g}": AttackSpec("fgsm", eps=e).label for e in config.fgsm_eps}
    attacks = {k: v for k, v in accuracy.items() if k not in curve_only}
    return {
        "clean": clean,
        "fgsm": {key: accuracy[label] for key, label in fgsm.items()},
        "attacks": attacks,
        "pgd_attack": roles["pgd"],  # the PGD-k the checks use
        "headline": headline,  # the robust accuracy to quote: AutoAttack's if it ran, else PGD's
        **({"autoattack": autoattack.to_dict()} if autoattack is not None else {}),
        "curves": curves,
        "examples": examples,
        "gradients": gradients,
        "sanity": [c.to_dict() for c in checks],
        "trustworthy": all(c.passed is not False for c in checks),
        "num_examples": int(len(correct["clean"])),
        "correct": {
            "clean": correct["clean"],
            **{label: correct[label] for label in attacks},
            # The columns `evidence.headline_metrics` names from "fgsm"'s keys.
            **{f"FGSM ε={key}": correct[label] for key, label in fgsm.items()},
            "robust": correct[headline],
        },
    }


def _num_classes(model: keras.Model) -> int:
    output = model.output["logits"] if isinstance(model.output, dict) else model.output
    return int(output.shape[-1])
