"""How the loss terms become one update: fixed λ, learned weights, or a combination of gradients.

A train step hands its unweighted terms (the primary cross-entropy first, then one per aux task,
each already scaled per replica) to `total`, and asks the weighting for the gradients of the
step's sources (`gradients`); after that it lets the weighting `update` itself. Three kinds:

- `FixedWeighting`: L = L_primary + Σ_i λ_i·L_i, one backward pass.
- Learned loss weights (`learned = True`: uncertainty, GradNorm, DWA, RLW): they replace every
  λ, the primary's implicit 1 included, and learn or draw the balance λ fixes by hand.
- `GradientWeighting` (PCGrad, CAGrad, MGDA, GradCosine, ...): one gradient per term on the
  weights the terms share, combined into the update by the method's rule; heads keep their own.

State a weighting keeps is a model weight (`model.add_weight`), so `save_weights`,
`BackupAndRestore` and a resumed run keep it. Each method is one module of this package,
registered with `register_weighting` and found by name; a new one is one new file (README,
"Extending it").
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import keras
import tensorflow as tf

from tfaux.names import require
from tfaux.registry import Registry
from tfaux.variant import Variant


def replicas() -> int:
    """Replicas in sync under the current strategy (1 outside one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


class FixedWeighting:
    """Today's objective, L = L_primary + Σ_i λ_i·L_i, with each task's λ from `AuxTask.weight`.

    Declared properties (class attributes), read by the variant checks and the budget:
        name: what a variant writes after "~".
        learned: it replaces every λ (and the primary's 1) with weights of its own, so a variant
            names no λ and a loop whose objective fixes its weights refuses it.
        needs_term_gradients: `gradients`/`update` read per-term gradients from the step's tape
            (which must then be persistent).
        settings: the `WeightingConfig` fields its constructor takes, as keyword arguments.
        min_tasks: aux tasks a variant needs for the weighting to act.

    Args:
        model: the model the terms come from (weightings with state add their weights to it).
        lambdas: term name → λ, the primary first (λ = 1).
    """

    name = "fixed"
    learned = False
    needs_term_gradients = False
    settings: tuple[str, ...] = ()
    min_tasks = 0

    def __init__(self, model: keras.Model, lambdas: Mapping[str, float]):
        self.lambdas = dict(lambdas)

    @classmethod
    def check_variant(cls, variant: Variant) -> None:
        """Refuses, in one line, a variant this weighting cannot act on: one naming a λ it
        would replace, or with fewer aux tasks than it needs (whatever the loop)."""
        require(
            not (cls.learned and variant.own_weights),
            f"no task λ with '~{variant.weighting}' (learned weights replace λ)",
            variant=variant.text,
        )
        require(
            len(variant.tasks) >= cls.min_tasks,
            f"at least {cls.min_tasks} aux task with '~{variant.weighting}' (with the "
            "primary alone there is nothing to weigh)",
            variant=variant.text,
        )

    @property
    def names(self) -> list[str]:
        """The weighted terms, primary first."""
        return list(self.lambdas)

    def total(self, terms: Mapping[str, tf.Tensor]) -> tf.Tensor:
        """The weighted sum of `terms` (already scaled per replica), summed in term order."""
        primary, *tasks = self.names
        total = terms[primary]  # the primary's λ = 1 is not multiplied: bit-for-bit as before
        for name in tasks:
            total += self.lambdas[name] * terms[name]
        return total

    def gradients(
        self,
        tape: tf.GradientTape,
        loss: tf.Tensor,
        terms: Mapping[str, tf.Tensor],
        sources: list,
        optimizer: keras.optimizers.Optimizer,
    ) -> list:
        """The gradients of `sources` (the model's trainable weights first, then any input the
        step differentiates) that the optimizer applies: here those of the (scaled) `loss`."""
        return tape.gradient(loss, sources)

    def update(self, tape: tf.GradientTape, terms: Mapping[str, tf.Tensor]) -> None:
        """Learns the weights after the backward pass; fixed weights do not move."""

    def weights(self) -> dict[str, tf.Tensor]:
        """Effective weight of every term, logged as `weight_<term>`; none for fixed λ, so its
        metrics stay what they were."""
        return {}

    def metrics(self) -> dict[str, tf.Tensor]:
        """What the step logs besides the losses: `weight_<term>` for every weight."""
        return {f"weight_{name}": value for name, value in self.weights().items()}

    def callbacks(self) -> list[keras.callbacks.Callback]:
        """Callbacks the fit needs (per-epoch state, as DWA's loss history), before the backup."""
        return []

    def decay_free_variables(self) -> list:
        """Trainable variables the optimizer must not weight-decay."""
        return []

    def get_config(self) -> dict:
        return {}

    @classmethod
    def extra_backward_passes(cls, tasks: int) -> int:
        """Backward passes over a batch a step takes beyond the loss's own (the budget)."""
        return 0


class GradientWeighting(FixedWeighting):
    """Base of the weightings that combine the terms' gradients on the shared weights.

    The rows: g_0, the gradient of the primary's objective (the loss without its aux terms: the
    cross-entropy and what the loop adds to it, as TRADES' KL), and g_i = ∇(λ_i·L_i) for each
    aux term, over the shared weights: those on the paths of both the primary logits and some
    aux output (the backbone, a front end), found once from the model's graph. A subclass maps
    the Gram matrix G·Gᵀ of the rows (and the losses) to weights w in `combine`; the shared
    weights step along d = Σ_i w_i·g_i, every other weight (the heads) and the input along its
    own gradient, as with fixed λ. The λ scale the rows: with λ = 1 a method sees the raw
    per-task gradients, as in its paper.

    Costs: one backward pass per aux term besides the loss's own (the primary row is the
    loss's gradient minus the aux rows), and T×P floats kept per step.

    Under tf.distribute the rows are summed over replicas before they are combined (each term is
    scaled per replica, so the sums are the global batch's gradients; combining per replica and
    summing would not be the method's update), every replica computes the same d, and hands the
    optimizer d / replicas, which its cross-replica sum restores. Under loss scaling the rows are
    unscaled before the combination (several rules are not linear in the scale) and d rescaled.

    Logged per step: `weight_<term>` (the w applied) and `cosine_<aux>` (between g_0 and g_i).
    """

    needs_term_gradients = True
    min_tasks = 1

    def __init__(self, model: keras.Model, lambdas: Mapping[str, float]):
        super().__init__(model, lambdas)
        self.shared = shared_weights(model, self.names)
        self.applied = model.add_weight(
            shape=(len(self.names),),
            initializer="ones",
            trainable=False,
            aggregation="mean",
            name=f"{self.name}_applied_weights",
        )
        self.cosines = model.add_weight(
            shape=(len(self.names) - 1,),
            initializer="zeros",
            trainable=False,
            aggregation="mean",
            name=f"{self.name}_cosines",
        )

    def combine(self, gram: tf.Tensor, losses: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """The weights w (T,) of the rows, from their Gram matrix (T, T), the terms' losses (T,)
        and a stateless seed (2,) that is the same on every replica and fresh every step."""
        raise NotImplementedError

    def gradients(self, tape, loss, terms, sources, optimizer):
        gradients = list(tape.gradient(loss, sources))
        variables = [v for v in sources if isinstance(v, keras.Variable)]
        shared = [k for k, v in enumerate(variables) if v.path in self.shared]
        if not shared:
            return gradients
        shared_variables = [variables[k] for k in shared]
        scale = tf.cast(optimizer.scale_loss(tf.constant(1.0)), tf.float32)
        primary, *tasks = self.names
        rows = []
        for name in tasks:  # seeded with the loss scale, as the loss's own backward pass is
            row = tape.gradient(
                terms[name],
                shared_variables,
                output_gradients=tf.cast(scale, terms[name].dtype),
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )
            rows.append(self.lambdas[name] * flatten(row))
        rows.insert(0, flatten([gradients[k] for k in shared]) - tf.add_n(rows))
        losses = tf.stack([tf.cast(terms[name], tf.float32) for name in self.names])
        context = tf.distribute.get_replica_context()
        matrix, losses = context.all_reduce(
            tf.distribute.ReduceOp.SUM, [tf.stack(rows) / scale, losses]
        )
        gram = tf.matmul(matrix, matrix, transpose_b=True)
        seed = tf.stack([tf.cast(optimizer.iterations, tf.int32), tf.constant(7_919)])
        weights = tf.cast(self.combine(gram, losses, seed), tf.float32)
        direction = tf.linalg.matvec(matrix, weights, transpose_a=True) * (scale / replicas())
        for k, value in zip(shared, unflatten(direction, shared_variables), strict=True):
            gradients[k] = value
        self.applied.assign(weights)
        norms = tf.sqrt(tf.linalg.diag_part(gram))
        self.cosines.assign(tf.math.divide_no_nan(gram[0, 1:], norms[0] * norms[1:]))
        return gradients

    def weights(self):
        weights = tf.convert_to_tensor(self.applied)
        return {name: weights[i] for i, name in enumerate(self.names)}

    def metrics(self):
        cosines = tf.convert_to_tensor(self.cosines)
        return {
            **super().metrics(),
            **{f"cosine_{name}": cosines[i] for i, name in enumerate(self.names[1:])},
        }

    @classmethod
    def extra_backward_passes(cls, tasks: int) -> int:
        return tasks


def flatten(tensors) -> tf.Tensor:
    """The tensors as one float32 vector, in order."""
    return tf.concat([tf.reshape(tf.cast(t, tf.float32), [-1]) for t in tensors], axis=0)


def unflatten(vector: tf.Tensor, variables) -> list[tf.Tensor]:
    """`vector` cut into the shapes (and dtypes) of `variables`, in order."""
    sizes = [math.prod(v.shape) for v in variables]
    parts = tf.split(vector, sizes)
    return [tf.cast(tf.reshape(p, v.shape), v.dtype) for p, v in zip(parts, variables, strict=True)]


def shared_weights(model: keras.Model, outputs: list[str]) -> set[str]:
    """Paths of the trainable weights on the path to the first output (the primary) and to at
    least one other: what the terms share, read from the functional graph."""
    primary, *others = outputs
    on_path = {
        name: {v.path for v in keras.Model(model.input, model.output[name]).trainable_weights}
        for name in (primary, *others)
        if name in model.output
    }
    aux = set().union(*(on_path[name] for name in others if name in on_path))
    return on_path[primary] & aux


WEIGHTINGS: Registry[type[FixedWeighting]] = Registry(
    "loss weighting", packages=("tfaux.weighting",)
)


def register_weighting(cls: type[FixedWeighting]) -> type[FixedWeighting]:
    """Class decorator: makes a `FixedWeighting` subclass selectable as "~<cls.name>" in a
    variant. It is built as `cls(model, lambdas, **settings)`, with the `WeightingConfig` fields
    it names in `settings`; settings without a field are class attributes."""
    return WEIGHTINGS.register(cls)


register_weighting(FixedWeighting)


def list_weightings() -> list[str]:
    """Names of the loss weightings."""
    return WEIGHTINGS.names()


def weighting_class(name: str) -> type[FixedWeighting]:
    """The class registered as `name`; an unknown name suggests the closest."""
    return WEIGHTINGS.get(name)


def create_weighting(
    name: str,
    model: keras.Model,
    lambdas: Mapping[str, float],
    options: Mapping[str, float] | None = None,
) -> FixedWeighting:
    """The weighting `name` of `model`'s terms.

    Args:
        name: a name from `list_weightings()`; unknown names suggest the closest.
        model: the model; weightings with state add their variables to it (call inside the
            strategy scope the model was built in).
        lambdas: term name → λ, the primary first with λ = 1.
        options: `WeightingConfig` fields by name; each weighting takes those it declares.
    """
    cls = weighting_class(name)
    options = options or {}
    return cls(model, lambdas, **{key: options[key] for key in cls.settings if key in options})
