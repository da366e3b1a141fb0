"""AutoAttack: the parameter-free ensemble a robustness claim is measured with (Croce & Hein 2020).

Each attack runs only on the points every earlier attack left robust, from the clean image, and
robust accuracy is the per-example worst case, as the reference's `run_standard_evaluation`:

- `standard`: APGD-CE, APGD-T (9 target classes), FAB-T (9 targets), Square (5,000 queries),
  one restart each.
- `plus`: APGD-CE, APGD-DLR and untargeted FAB with 5 restarts each, Square, APGD-T and FAB-T
  (one restart per target: the reference sets FAB's restarts to 1 before every FAB-T run).
- `rand`: APGD-CE and APGD-DLR, one restart, with gradients averaged over 20 passes
  (expectation over transformation), for models with randomness at inference.

`RESTARTS` holds each version's restarts per attack, as the reference's `set_version` and
`run_standard_evaluation` leave them.

AutoAttack's own checks come with the result: a randomized model, softmax instead of logits at
the output, points with a zero DLR gradient at APGD's start, Square lowering the accuracy left by
the white-box attacks before it (> 0.2 points: the gradients are not to be trusted), too few
classes for the targets, and adversarial images outside the ε-ball or [0, 1] (not counted).

A long evaluation is resumable: with `state_path`, the per-example flags and the attacks done are
saved after every batch, and the same call continues where it stopped; a state made by another
model, other images or other settings is refused.

Reference: Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", ICML 2020; github.com/fra31/auto-attack.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfaux.attacks.apgd import APGD
from tfaux.attacks.names import AUTOATTACK_ATTACKS, AUTOATTACK_ORDER, AUTOATTACK_VERSIONS
from tfaux.attacks.protocol import Attack, check_settings, create_attack, logits_fn
from tfaux.attacks.threat_model import check_eps
from tfaux.evaluate.sanity import Check
from tfaux.export import weights_sha256
from tfaux.progress import progress_bar

VERSIONS = AUTOATTACK_VERSIONS
ATTACKS = AUTOATTACK_ATTACKS
# Restarts per attack and version: what the reference's objects hold when each attack runs.
# APGD-CE and APGD-DLR share one object (`apgd`), as do FAB and FAB-T (`fab`, whose restarts
# `run_standard_evaluation` sets to 1 before FAB-T). An attack a version does not run (reachable
# here with `attacks=`) keeps the reference constructor's value: `rand`'s FAB has 5.
RESTARTS = {
    "standard": {"apgd-ce": 1, "apgd-dlr": 1, "fab": 1, "apgd-t": 1, "fab-t": 1},
    "plus": {"apgd-ce": 5, "apgd-dlr": 5, "fab": 5, "apgd-t": 1, "fab-t": 1},
    "rand": {"apgd-ce": 1, "apgd-dlr": 1, "fab": 5, "apgd-t": 1, "fab-t": 1},
}
SQUARE_TOLERANCE = 0.002  # the reference's: Square may find 0.2 % more, not more than that


@dataclass
class AutoAttackResult:
    """Per-example outcome of one AutoAttack run (accuracies as fractions)."""

    clean: np.ndarray  # bool [N]: classified correctly without attack
    robust: np.ndarray  # bool [N]: still correct after every attack (the worst case)
    after: dict[str, float]  # robust accuracy after each attack, in the order they ran
    checks: list[Check]
    eps: float
    norm: str
    version: str
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def examples(self) -> int:
        return int(len(self.clean))

    @property
    def clean_accuracy(self) -> float:
        return float(np.mean(self.clean))

    @property
    def robust_accuracy(self) -> float:
        return float(np.mean(self.robust))

    def to_dict(self) -> dict:
        return {
            "clean": self.clean_accuracy,
            "robust": self.robust_accuracy,
            "after": self.after,
            "examples": self.examples,
            "eps": self.eps,
            "norm": self.norm,
            "version": self.version,
            "seconds": self.seconds,
            "checks": [check.to_dict() for check in self.checks],
            "trustworthy": all(check.passed is not False for check in self.checks),
        }


class AutoAttack:
    """The AutoAttack ensemble on a model's primary logits.

    Args:
        model: a Keras classifier (dict outputs: "logits" is used).
        eps: the budget in pixel units of [0, 1] images.
        norm: "linf" or "l2".
        version: "standard", "plus" or "rand" (see the module docstring).
        attacks: run these instead of the version's list (in the order of `ATTACKS`), e.g.
            ("apgd-ce", "square") for a quick look.
        steps: APGD's and FAB's iterations (AutoAttack: 100). Restarts follow the version
            (`RESTARTS`: 5 for `plus`'s APGD-CE, APGD-DLR and untargeted FAB, 1 otherwise).
        targets: target classes of APGD-T and FAB-T (AutoAttack: 9; at most classes − 1).
        queries: Square's query budget (AutoAttack: 5,000).
        batch_size: points attacked together.
        seed: seeds every random start.

    Example:
        result = AutoAttack(model, eps=0.1).run(x_test[:500], y_test[:500])
        print(result.robust_accuracy, result.after)
    """

    def __init__(
        self,
        model: keras.Model,
        *,
        eps: float,
        norm: str = "linf",
        version: str = "standard",
        attacks: tuple[str, ...] | None = None,
        steps: int = 100,
        targets: int = 9,
        queries: int = 5000,
        batch_size: int = 250,
        seed: int = 0,
    ):
        if version not in VERSIONS:
            raise ValueError(f"Expected version in {VERSIONS}. Received: version={version!r}")
        unknown = [a for a in attacks or () if a not in ATTACKS]
        if unknown or attacks == ():
            raise ValueError(
                f"Expected attacks from {ATTACKS}. Received: attacks={tuple(attacks or ())}"
            )
        check_settings(steps=steps, targets=targets, queries=queries)
        if batch_size < 1:
            raise ValueError(f"Expected batch_size >= 1. Received: batch_size={batch_size}")
        self.eps, self.norm, self.version = check_eps(eps, norm), norm, version
        self.attacks = (
            tuple(a for a in ATTACKS if a in attacks) if attacks else AUTOATTACK_ORDER[version]
        )
        self.model, self.model_fn = model, logits_fn(model)
        restarts = dict(RESTARTS[version])
        eot = 20 if version == "rand" else 1
        self.settings = {"steps": steps, "queries": queries, "restarts": restarts, "eot": eot}
        # The registered attacks, by name, with the settings the reference's objects hold
        # (`rand` makes APGD-CE and APGD-DLR, the reference's `apgd` object, average 20
        # gradients: `eot`; its APGD-T keeps one). AutoAttack runs Square with the schedule of
        # 10,000 queries, not rescaled.
        settings = {
            "apgd-ce": {"steps": steps, "restarts": restarts["apgd-ce"], "eot": eot},
            "apgd-dlr": {"steps": steps, "restarts": restarts["apgd-dlr"], "eot": eot},
            "fab": {"steps": steps, "restarts": restarts["fab"]},
            "apgd-t": {"steps": steps, "restarts": restarts["apgd-t"]},
            "fab-t": {"steps": steps, "restarts": restarts["fab-t"]},
            "square": {"queries": queries, "rescale": False},
        }
        self.by_name: dict[str, Attack] = {
            name: create_attack(name, model, norm=norm, **settings[name]) for name in ATTACKS
        }
        self.num_classes = int(self.model_fn(tf.zeros([1, *model.input_shape[1:]])).shape[-1])
        chosen = [self.by_name[name] for name in self.attacks]
        if self.num_classes < 4 and any(_uses_dlr(a) or a.targeted for a in chosen):
            raise ValueError(
                "Expected at least 4 classes for the DLR losses and the targeted attacks. "
                f"Received: a model with {self.num_classes} classes; use "
                "attacks=('apgd-ce', 'square')"
            )
        self.targets = min(targets, self.num_classes - 1)
        self.batch_size, self.seed = batch_size, seed
        self._predict = tf.function(
            lambda x: tf.argmax(self.model_fn(x), axis=-1, output_type=tf.int32),
            reduce_retracing=True,
        )

    def stages(self) -> list[tuple[str, int]]:
        """(attack, target rank) in the order they run; rank 0 for the untargeted attacks."""
        return [
            (name, rank)
            for name in self.attacks
            for rank in (range(2, self.targets + 2) if self.by_name[name].targeted else [0])
        ]

    def run(
        self, x, y, *, state_path: str | os.PathLike | None = None, progress: bool = False
    ) -> AutoAttackResult:
        """Attacks every example; resumes from `state_path` if it holds an unfinished run.

        Args:
            x: images in [0, 1], [N, H, W, C] (numpy or tensor).
            y: true labels, [N].
            state_path: a .npz file the per-example flags are saved to after every batch.
            progress: a bar per attack on a terminal, one line per attack otherwise.
        """
        x = np.asarray(x, np.float32)
        y = np.asarray(y).astype(np.int32)
        if x.ndim != 4 or y.shape != (len(x),) or len(x) == 0:
            raise ValueError(
                "Expected images [N, H, W, C] and N labels, N > 0. "
                f"Received: x {x.shape}, y {y.shape}"
            )
        key = self._key(x, y)
        state = _State.load(state_path, key)
        if state is None:
            clean = self._predictions(x) == y
            state = _State(clean, clean.copy(), stage=0, attacked=np.zeros(len(x), bool))
            state.save(state_path, key)
        checks = self._checks_before(x[: self.batch_size], y[: self.batch_size])
        stages = self.stages()
        while state.stage < len(stages):
            name, rank = stages[state.stage]
            todo = np.flatnonzero(state.robust & ~state.attacked)
            label = name if not rank else f"{name} (target {rank - 1}/{self.targets})"
            bar = progress_bar(
                total=len(todo),
                desc=f"{label} ε={self.eps:g}",
                unit="img",
                enabled=progress and len(todo) > 0,  # nothing left to attack: no line
            )
            start = time.perf_counter()
            for begin in range(0, len(todo), self.batch_size):
                index = todo[begin : begin + self.batch_size]
                x_adv = np.asarray(self._perturb(name, rank, x[index], y[index]))
                valid = self._valid(x_adv, x[index])  # a broken attack must not count
                state.counts["invalid"] += int(np.sum(~valid))
                if _uses_dlr(self.by_name[name]):
                    state.counts["zero_gradient"] += self.by_name[name].zero_gradients
                    state.counts["dlr_points"] += int(np.sum(state.clean[index]))
                fooled = (self._predictions(x_adv) != y[index]) & valid
                state.robust[index[fooled]] = False
                state.attacked[index] = True
                state.seconds[name] = state.seconds.get(name, 0.0) + time.perf_counter() - start
                start = time.perf_counter()
                state.save(state_path, key)
                bar.update(len(index))
            bar.set_postfix_str(f"robust {100 * state.robust.mean():.1f}%")
            bar.close()
            if rank in (0, self.targets + 1):  # an attack's last stage
                state.after[name] = float(state.robust.mean())
            state.stage, state.attacked[:] = state.stage + 1, False
            state.save(state_path, key)
        checks += self._checks_after(state.after, state.counts)
        return AutoAttackResult(
            clean=state.clean,
            robust=state.robust,
            after=dict(state.after),
            checks=checks,
            eps=self.eps,
            norm=self.norm,
            version=self.version,
            seconds={k: round(v, 2) for k, v in state.seconds.items()},
        )

    # === Attacks ===
    def _perturb(self, name: str, rank: int, x, y) -> tf.Tensor:
        # Each target class draws its own random start (the reference seeds once per attack).
        attack, seed = self.by_name[name], self.seed + 1000 * rank
        if attack.targeted:
            return attack(x, y, eps=self.eps, seed=seed, target_rank=rank)
        return attack(x, y, eps=self.eps, seed=seed)

    def _predictions(self, x) -> np.ndarray:
        return np.concatenate(
            [
                self._predict(tf.constant(x[i : i + self.batch_size])).numpy()
                for i in range(0, len(x), self.batch_size)
            ]
        )

    def _valid(self, x_adv: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Per example: finite, in [0, 1] and within ε (the reference's final report checks
        the same)."""
        delta = (x_adv - x).reshape(len(x), -1)
        size = np.abs(delta).max(1) if self.norm == "linf" else np.linalg.norm(delta, axis=1)
        flat = x_adv.reshape(len(x), -1)
        return (
            np.all(np.isfinite(flat), 1)
            & np.all((flat >= 0) & (flat <= 1), 1)
            & (size <= self.eps * (1 + 1e-5) + 1e-6)
        )

    def _key(self, x: np.ndarray, y: np.ndarray) -> dict:
        """What a saved state must match to be continued: the attacks and their settings, the
        images and labels, and the model's weights."""
        data = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()
        return {
            "eps": self.eps,
            "norm": self.norm,
            "version": self.version,
            "stages": self.stages(),
            "settings": self.settings,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "data": data,
            "weights": weights_sha256(self.model),
        }

    # === AutoAttack's checks ===
    def _checks_before(self, x, y) -> list[Check]:
        x = tf.constant(x)
        outputs = [self.model_fn(x).numpy() for _ in range(5)]
        unit = [o / (np.linalg.norm(o, axis=1, keepdims=True) + 1e-10) for o in outputs]
        spread = max(float(np.linalg.norm(a - b, axis=1).max()) for a in unit for b in unit)
        correct = {int((o.argmax(1) == y).sum()) for o in outputs}
        randomized = spread > 1e-4 or len(correct) > 1
        checks = [
            Check(
                "deterministic model",
                not randomized or self.version == "rand",
                f"largest change of the normalized logits over 5 passes: {spread:.2g}"
                + ("; use version='rand'" if randomized and self.version != "rand" else ""),
            )
        ]
        first = outputs[0]
        softmax = bool(
            first.max() < 1 + 1e-5
            and first.min() > -1e-5
            and np.all(np.abs(first.sum(-1) - 1) < 1e-5)
        )
        checks.append(
            Check(
                "logits, not probabilities",
                not softmax,
                "the outputs are a probability distribution: attack the logits"
                if softmax
                else "the outputs are not a probability distribution",
            )
        )
        return checks

    def _checks_after(self, after: dict[str, float], counts: dict[str, int]) -> list[Check]:
        zero, points = counts["zero_gradient"], counts["dlr_points"]
        checks = [
            Check(
                "no zero DLR gradient",
                zero == 0 if points else None,
                f"{zero} of {points} attacks of a correctly classified point (each target "
                "counted) started with a zero DLR gradient"
                if points
                else "no APGD with a DLR loss ran",
            ),
            Check(
                "adversarial images valid",
                counts["invalid"] == 0,
                f"{counts['invalid']} adversarial images were outside the ε-ball or [0, 1] or "
                "not finite (not counted as fooled)",
            ),
        ]
        # Square against the white-box attacks that ran before it (in plus, APGD-T and FAB-T
        # run after it: they would hide what Square found).
        order = list(after)
        before = (
            [after[n] for n in order[: order.index("square")] if not self.by_name[n].gradient_free]
            if ("square" in after)
            else []
        )
        if not before:
            checks.append(
                Check("Square finds nothing new", None, "needs Square after a white-box attack")
            )
            return checks
        gain = min(before) - after["square"]
        checks.append(
            Check(
                "Square finds nothing new",
                gain <= SQUARE_TOLERANCE,
                f"Square lowered the accuracy left by the white-box attacks by "
                f"{100 * gain:.1f} points",
            )
        )
        return checks


def _uses_dlr(attack: Attack) -> bool:
    """APGD-DLR and APGD-T: the DLR losses, whose gradient at the start AutoAttack checks."""
    return isinstance(attack, APGD) and attack.loss != "ce"


@dataclass
class _State:
    """The resumable part of a run: per-example flags and where the attack order stands."""

    clean: np.ndarray
    robust: np.ndarray
    stage: int
    attacked: np.ndarray  # points the current stage has attacked already
    after: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(
        default_factory=lambda: {"zero_gradient": 0, "dlr_points": 0, "invalid": 0}
    )

    def save(self, path, key: dict) -> None:
        if path is None:
            return
        path = Path(path)
        info = {
            "key": key,
            "stage": self.stage,
            "after": self.after,
            "seconds": self.seconds,
            "counts": self.counts,
        }
        partial = path.with_name(path.name + ".partial.npz")
        np.savez(
            partial,
            clean=self.clean,
            robust=self.robust,
            attacked=self.attacked,
            info=np.array(json.dumps(info)),
        )
        os.replace(partial, path)  # atomic: a kill leaves the previous state, never half of one

    @classmethod
    def load(cls, path, key: dict) -> _State | None:
        if path is None or not Path(path).exists():
            return None
        with np.load(path) as saved:
            info = json.loads(str(saved["info"]))
            if info["key"] != json.loads(json.dumps(key)):  # the key hashes the images too
                raise ValueError(
                    f"Expected {path} to hold this evaluation's state (same model, images, ε, "
                    "norm, attacks, settings and seed). Received: another evaluation's; delete "
                    "it to start over"
                )
            return cls(
                saved["clean"].copy(),
                saved["robust"].copy(),
                int(info["stage"]),
                saved["attacked"].copy(),
                dict(info["after"]),
                dict(info["seconds"]),
                dict(info["counts"]),
            )
