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

from tfaux.attacks.carlini_wagner import CarliniWagner
from tfaux.attacks.fast_gradient import FGSM
from tfaux.attacks.momentum_iterative import MIM
from tfaux.attacks.projected_gradient import BIM, PGD
from tfaux.attacks.protocol import ATTACKS, Attack, AttackedModel
from tfaux.attacks.spsa import SPSA
from tfaux.attacks.threat_model import check_eps
from tfaux.config import EvalConfig
from tfaux.data.pipeline import labels_of
from tfaux.evaluate.autoattack import AutoAttack
from tfaux.evaluate.sanity import run_checks, warn_failed
from tfaux.progress import progress_bar


@dataclass(frozen=True)
class AttackJob:
    """One column of the report: `attack` at `eps` on the first `limit` test examples.

    Attributes:
        key: the column's label ("PGD-10 ε=0.1"), unique in a report.
        attack: bound to the model whose gradients craft the images; None for clean accuracy.
        eps: the budget it runs at.
        limit: how many examples from the start of the test set; None for all.
    """

    key: str
    attack: Attack | None
    eps: float
    limit: int | None


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
    attacked = AttackedModel(model)
    crafter = None if surrogate is None else AttackedModel(surrogate)
    jobs, roles = attack_jobs(config, attacked, surrogate=crafter)
    correct = {job.key: [] for job in jobs}
    seen, gradients, kept = 0, None, ([], [])  # kept: AutoAttack's first examples
    batches = progress_bar(dataset, desc=desc, unit="batch", enabled=progress)
    for index, (x, y) in enumerate(batches):
        y = labels_of(y)
        if gradients is None:
            gradients = input_gradient_stats(attacked, x, y)
        if config.autoattack and seen < config.autoattack_examples:
            kept[0].append(x[: config.autoattack_examples - seen].numpy())
            kept[1].append(y[: config.autoattack_examples - seen].numpy())
        for job in jobs:
            take = x.shape[0] if job.limit is None else min(x.shape[0], job.limit - seen)
            if take <= 0:
                continue
            xb, yb = x[:take], y[:take]
            if job.attack is not None:
                xb = job.attack(xb, yb, eps=job.eps, seed=index)
            predicted = np.argmax(attacked.predict(xb).numpy(), axis=-1)
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


def input_gradient_stats(attacked: AttackedModel, x, y) -> dict:
    """Whether ∇ₓ CE(logits, y) is finite, and the fraction of examples where it is all zero."""
    x = tf.convert_to_tensor(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(y, attacked.model_fn(x))
    gradient = tape.gradient(loss, x)
    if gradient is None:  # no differentiable path from the input at all
        return {"finite": True, "zero_fraction": 1.0}
    flat = tf.reshape(gradient, [x.shape[0], -1]).numpy()
    return {
        "finite": bool(np.all(np.isfinite(flat))),
        "zero_fraction": float(np.mean(np.all(flat == 0, axis=1))),
    }


def attack_jobs(
    config: EvalConfig, model: AttackedModel, surrogate: AttackedModel | None = None
) -> tuple[list[AttackJob], dict]:
    """The report's columns in order, and which of them each sanity check compares, before
    anything runs (what a config will cost; where a new attack's columns land).

    The report's own FGSM/PGD methodology, the columns its settings ask for, then the columns
    every other registered attack declares (`Attack.report_columns`); the transfer check's
    images are crafted on `surrogate`.

    Returns:
        (jobs, roles): the `AttackJob`s, and role → key(s) for the sanity checks and summary.
    """
    eps = check_eps(config.eps)
    jobs = [AttackJob("clean", None, eps, None)]

    def job(
        attack: Attack, at: float, limit: int | None = None, key: str | None = None
    ) -> AttackJob:
        at = attack.check_eps(at)
        return AttackJob(key or attack.label(at), attack, at, limit)

    fgsm = FGSM(model)
    fgsm_eps = sorted({check_eps(e) for e in config.fgsm_eps} | {eps})
    fgsm_labels = {fgsm.label(e) for e in fgsm_eps}
    jobs += [job(fgsm, e) for e in fgsm_eps]
    alpha = config.pgd_step_size  # None: PGD's 2.5ε/k
    pgd = [PGD(model, steps=k, restarts=config.restarts, step_size=alpha) for k in config.pgd_steps]
    jobs += [job(attack, eps, config.pgd_examples) for attack in pgd]
    extra = [
        (BIM(model, steps=config.bim_steps), eps) if config.bim_steps else None,
        (MIM(model, steps=config.mim_steps), eps) if config.mim_steps else None,
        (PGD(model, norm="l2", steps=max(config.pgd_steps)), config.l2_eps)
        if config.l2_eps
        else None,
        # Seed 001's Table 8 runs BIM and MIM in L2 too.
        (BIM(model, norm="l2", steps=config.bim_steps), config.l2_eps)
        if config.l2_eps and config.bim_steps
        else None,
        (MIM(model, norm="l2", steps=config.mim_steps), config.l2_eps)
        if config.l2_eps and config.mim_steps
        else None,
    ]
    jobs += [job(attack, at) for attack, at in filter(None, extra)]
    for e in sorted({check_eps(e) for e in config.extra_eps} - {eps}):  # second budgets
        second = [
            job(fgsm, e),
            *(job(_at_eps(attack, eps, e), e, config.pgd_examples) for attack in pgd),
        ]
        jobs += [j for j in second if j.key not in fgsm_labels]
    strongest = pgd[-1]
    roles = {"clean": "clean", "fgsm": fgsm.label(eps), "pgd": strongest.label(eps)}
    # The columns `_summary` names from `fgsm_eps` (FGSM ε=<key>).
    roles["fgsm_columns"] = {f"{e:g}": fgsm.label(check_eps(e)) for e in config.fgsm_eps}

    # ε curves on a prefix; a budget the full pass already ran is read from its prefix.
    for e in config.curve_eps:
        for name, attack in (("fgsm", fgsm), ("pgd", _at_eps(strongest, eps, e))):
            curve = job(attack, e, config.curve_examples)
            if curve.key not in {j.key for j in jobs}:
                jobs.append(curve)
                roles.setdefault("curve_only", []).append(curve.key)
            roles.setdefault("curves", []).append((name, curve.eps, curve.key))

    if config.sanity:
        n = config.sanity_examples  # the PGD run above covers these examples too
        more_steps = job(strongest.replace(steps=2 * strongest.steps), eps, n)
        more_restarts = job(strongest.replace(restarts=2 * strongest.restarts), eps, n)
        jobs += [more_steps, more_restarts]
        roles["pgd_more_steps"] = more_steps.key
        roles["pgd_more_restarts"] = more_restarts.key
        if config.curve_eps and max(config.curve_eps) >= 0.3:
            large = max(config.curve_eps)
            roles["large_eps"] = _at_eps(strongest, eps, large).label(large)
        m = config.blackbox_examples
        spsa = job(SPSA(model, steps=config.spsa_steps, samples=config.spsa_samples), eps, m)
        jobs.append(spsa)
        roles["blackbox"] = (spsa.key,)
        if config.l2_eps:
            jobs.append(job(CarliniWagner(model, steps=config.cw_steps), config.l2_eps, m))
        if surrogate is not None:
            transfer = f"transfer {strongest.label(eps)}"
            jobs.append(job(strongest.replace(model=surrogate), eps, n, key=transfer))
            roles["transfer"] = transfer

    # Every other registered attack that asks for columns: one new file adds them.
    for name in ATTACKS.names():
        for column in ATTACKS.get(name).report_columns(model, config):
            added = job(column.attack, column.eps, column.examples)
            if added.key in {j.key for j in jobs}:
                raise ValueError(
                    f"Expected the report columns of attack {name!r} to have labels of their "
                    f"own. Received: {added.key!r}, which the report has already"
                )
            jobs.append(added)
    return jobs, roles


def _at_eps(attack: PGD, eps: float, at: float) -> PGD:
    """PGD made for budget `eps`, run at `at`: a set step size scales with the budget (α/ε is
    kept, e.g. seed 002's α = ε/4), the default 2.5ε/k follows by itself."""
    if attack.step_size is None or at == 0:
        return attack.replace(step_size=None)
    return attack.replace(step_size=attack.step_size * at / eps)


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
    for name, eps, label in roles.pop("curves", []):
        curves[name][f"{eps:g}"] = float(np.mean(correct[label][:prefix]))
    fgsm = roles.pop("fgsm_columns")
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
