"""`AuxModel`: a functional multi-output classifier trained on CE + Σ λ_i · aux_i.

The train step mirrors Keras' own (keras/src/backend/tensorflow/trainer.py) stage by stage. Two
extension points: `augment` (in-graph augmentation, and the two views of contrastive tasks) and
`perturb`, which adversarial and noise-training loops override. How the terms are weighted (fixed
λ or learned) is `tfaux.weighting`'s business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import tensorflow as tf

from tfaux.config import AUX_TARGETS
from tfaux.data.augment import get_augmentation, two_views
from tfaux.data.pipeline import labels_of
from tfaux.tasks.base import AuxTask
from tfaux.weighting import FixedWeighting, create_weighting, weighting_class

PRIMARY = "logits"
VALIDATION_SEED = 20200614  # fixed augmentations and corruptions in validation, so epochs compare


def replica_id() -> tf.Tensor:
    """This replica's index in its sync group (0 outside a replica context)."""
    context = tf.distribute.get_replica_context()
    return tf.cast(context.replica_id_in_sync_group, tf.int32) if context else tf.constant(0)


def step_seed(model: keras.Model, stream: int = 0) -> tf.Tensor:
    """A stateless seed fresh at every step and replica, reproducible from the step counter;
    `stream` separates independent draws (augmentation, corruptions) within a step."""
    return tf.stack(
        [tf.cast(model.optimizer.iterations, tf.int32), replica_id() * 1_000_003 + stream]
    )


def repeat_batch(y, times: int):
    """Labels (a tensor or a dict of them) repeated `times` along the batch axis."""
    return tf.nest.map_structure(lambda t: tf.tile(t, [times] + [1] * (len(t.shape) - 1)), y)


_OLD_WEIGHTING_PARAMS = ("gradnorm_alpha", "gradnorm_learning_rate")


def _unscaled(value: tf.Tensor) -> tf.Tensor:
    # keras.losses objects divide by the number of replicas (so gradients summed across replicas
    # give the global-batch mean); metrics must report the per-example mean, so undo it.
    return value * tf.distribute.get_strategy().num_replicas_in_sync


@keras.saving.register_keras_serializable(package="tfaux")
class AuxModel(keras.Model):
    """Functional `keras.Model` with dict outputs {"logits", <task names>} and a multi-task step.

    Loss = CE(logits, y) + Σ_i λ_i · loss_i(target_i(x, y), output_i), with every aux target
    computed from the clean images in the step (or, with `aux_targets="perturbed"`, from the
    perturbed images the weights train on). Metrics: `loss`, `logits_loss`, `<task>_loss`
    for each task, and `accuracy` of the primary classifier.

    Args:
        *args, **kwargs: the functional `keras.Model` arguments (inputs, outputs dict, name).
        tasks: the auxiliary tasks; each task's `name` must be an output of the model.
        augmentation: an in-graph augmentation of `tfaux.data.augment` ("simclr", "geometric")
            applied to every training batch; tasks with `views == 2` (the contrastive
            projection) train on two augmented views of each image ("simclr" by default), with
            the labels repeated, so the classifier predicts both (seed 002 eq. 5).
        flip: whether the augmentation may mirror images (not for digits).
        weighting: how the loss terms become the update (`tfaux.weighting`): "fixed" (λ as
            above), learned weights replacing every λ and the primary's 1 ("uncertainty",
            "gradnorm", ...), or a combination of the per-term gradients ("pcgrad", ...; a
            persistent tape then gives them). They log `weight_<term>` for every term.
        weighting_options: `WeightingConfig` fields by name (GradNorm's α, CAGrad's c, ...);
            each weighting takes those it declares.
        aux_targets: what aux targets are computed from in training: "clean" (the augmented,
            unperturbed images) or "perturbed" (the adversarial or noisy images the weights
            train on). Tasks that reproduce the pre-augmentation image (the denoiser) keep it.

    Example:
        model = tfaux.models.build("resnet8", input_shape=(28, 28, 1), num_classes=10,
                                   tasks=[FourierTask(0.01)])
        model.compile(optimizer="sgd")
        model.fit(splits.train, validation_data=splits.val, epochs=2)
    """

    # Constructor arguments of a training loop, saved in the config (subclasses extend it).
    LOOP_PARAMS: tuple[str, ...] = ()
    # Loss weightings the loop supports, read by `accepts_weighting` (which `Loop.check_variant`
    # asks). Its objective fixes the weights of its terms (TRADES' β, eq. (7) of Auxiliary
    # Training): no learned weighting.
    fixed_loss_weights: bool = False
    # Its objective fixes the weights of its aux terms too (Auxiliary Training's eq. (7)): only
    # fixed λ, no combination of gradients either.
    fixed_aux_weights: bool = False

    def __init__(
        self,
        *args,
        tasks: Sequence[AuxTask] = (),
        augmentation: str | None = None,
        flip: bool = True,
        weighting: str = "fixed",
        weighting_options: Mapping[str, float] | None = None,
        aux_targets: str = "clean",
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        if not isinstance(self.output, dict) or PRIMARY not in self.output:
            raise ValueError(
                f"Expected a model whose outputs are a dict with a {PRIMARY!r} entry. "
                f"Received outputs: {self.output}"
            )
        missing = [t.name for t in tasks if t.name not in self.output]
        if missing:
            raise ValueError(
                f"Expected an output for every aux task. Missing: {missing}; "
                f"outputs: {sorted(self.output)}"
            )
        self.tasks = tuple(tasks)
        self.views = max([1, *(t.views for t in self.tasks)])
        if augmentation is None and self.views == 2:
            augmentation = "simclr"
        if augmentation is not None:
            get_augmentation(augmentation)  # an unknown name fails here
        self.augmentation, self.flip = augmentation, bool(flip)
        if aux_targets not in AUX_TARGETS:
            raise ValueError(
                f"Expected aux_targets in {AUX_TARGETS}. Received: aux_targets={aux_targets!r}"
            )
        self.aux_targets = aux_targets
        if not self.accepts_weighting(weighting_class(weighting)):
            raise ValueError(
                f"Expected weighting 'fixed' for {type(self).__name__} (its loss has its own fixed "
                f"weights). Received: weighting={weighting!r}"
            )
        self.weighting_options = dict(weighting_options or {})
        self.weighting = create_weighting(
            weighting,
            self,
            {PRIMARY: 1.0, **{t.name: t.weight for t in self.tasks}},
            self.weighting_options,
        )
        self._cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self._trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ["loss", f"{PRIMARY}_loss", *(f"{t.name}_loss" for t in self.tasks)]
        }
        self._weighting_metrics = tuple(self.weighting.metrics())
        for name in self._weighting_metrics:
            self._trackers[name] = keras.metrics.Mean(name=name)
        self._accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @classmethod
    def accepts_weighting(cls, weighting: type[FixedWeighting]) -> bool:
        """Whether the loop's objective takes `weighting`: fixed weights of its aux terms take
        fixed λ only; fixed weights within the primary's objective (TRADES' β) take no learned
        weights, but a combination of gradients, which keeps the primary's objective whole."""
        if weighting.name == FixedWeighting.name:
            return True
        return not cls.fixed_aux_weights and not (cls.fixed_loss_weights and weighting.learned)

    # === Steps ===
    def augment(self, x: tf.Tensor, y, seed: tf.Tensor | None = None):
        """(images, labels, originals): the augmented batch, or two views of it with the labels
        and originals repeated; originals are the un-augmented images (denoising targets)."""
        if self.augmentation is None:
            return x, y, x
        seed = step_seed(self, stream=1) if seed is None else seed
        augment = get_augmentation(self.augmentation)
        if self.views == 1:
            return augment(x, seed, flip=self.flip), y, x
        views = two_views(x, seed, augment, flip=self.flip)
        return views, repeat_batch(y, 2), repeat_batch(x, 2)

    @property
    def steps_per_batch(self) -> int:
        """Optimizer steps one training batch takes (the step budget counts them)."""
        return 1

    def perturb(self, x: tf.Tensor, y) -> tf.Tensor:
        """Input the weights are trained on; identity here, attacks and noise in subclasses."""
        return x

    def train_step(self, data):
        # Augmentation and perturbation (outside the weight tape)
        x, y, originals = self.augment(*data)
        x_train = self.perturb(x, y)
        # Forward pass, gradients, update; metrics
        outputs, terms, _ = self.gradient_step(x, y, originals, x_train)
        return self._update_metrics(y, outputs, terms)

    def gradient_step(self, x, y, originals, x_train, input_gradient: str | None = None):
        """One optimizer step on `x_train` (aux targets from `target_images`): the step every loop
        shares. Returns (outputs, loss terms, input gradient or None).

        `input_gradient` asks for ∂/∂x_train (Free-AT's δ ascends it) of "loss", the total loss
        (free: the weights' backward pass gives it), or of "primary", the classifier's
        cross-entropy alone. With aux tasks the latter costs a second backward pass through the
        tape, from the CE to the input (the tape is then kept persistent); without aux tasks the
        total is the CE times a positive weight (plus weight-only regularizers), so it is the
        same sign at no extra cost.
        """
        if input_gradient not in (None, "loss", "primary"):
            raise ValueError(
                'Expected input_gradient in (None, "loss", "primary"). '
                f"Received: input_gradient={input_gradient!r}"
            )
        separate = input_gradient == "primary" and bool(self.tasks)
        # Forward pass (GradNorm reads per-term gradients from the tape, and the CE's own input
        # gradient is a second backward pass: then it is persistent)
        persistent = self.weighting.needs_term_gradients or separate
        with tf.GradientTape(persistent=persistent) as tape:
            if input_gradient:
                tape.watch(x_train)
            outputs = self.train_outputs(x, x_train)
            loss, terms = self.loss_terms(self.target_images(x, x_train), y, outputs, originals)
            loss = self.optimizer.scale_loss(loss)
            if separate:
                primary = self.optimizer.scale_loss(terms[PRIMARY])
        # Gradients (the weighting's: the loss's, or its per-term gradients combined) and update
        # (of the weights, then of learned loss weights)
        with_input = input_gradient is not None and not separate
        sources = [*self.trainable_weights, *([x_train] if with_input else [])]
        gradients = self.weighting.gradients(tape, loss, terms, sources, self.optimizer)
        x_gradient = gradients[-1] if with_input else None
        if separate:
            x_gradient = tape.gradient(primary, x_train)
        self.weighting.update(tape, terms)
        self.optimizer.apply(gradients[: len(self.trainable_weights)], self.trainable_weights)
        return outputs, terms, x_gradient

    def target_images(self, x: tf.Tensor, x_train: tf.Tensor) -> tf.Tensor:
        """The images aux targets are computed from: the clean `x`, or with
        `aux_targets="perturbed"` the `x_train` the weights train on (under adversarial training
        a Recon target of the clean image would make Recon a denoiser)."""
        return x_train if self.aux_targets == "perturbed" else x

    def train_outputs(self, x: tf.Tensor, x_train: tf.Tensor) -> dict:
        """The outputs the loss is computed from, inside the tape: the model on `x_train`;
        loops whose loss compares clean and perturbed predictions (TRADES) add to it."""
        return self(x_train, training=True)

    def test_step(self, data):
        x, y = data
        outputs = self(x, training=False)
        if self.views == 2:  # two-view losses on two fixed views; accuracy on clean images
            views, _, _ = self.augment(x, y, seed=tf.constant([VALIDATION_SEED, 0]))
            on_views = self(views, training=False)
            outputs = {**outputs, **{t.name: on_views[t.name] for t in self.tasks if t.views == 2}}
        _, terms = self.loss_terms(x, y, outputs)
        return self._update_metrics(y, outputs, terms, training=False)

    # === Loss ===
    def loss_terms(self, x, y, outputs, originals=None) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """Total loss (weighted by `self.weighting`) and its unweighted terms, all already scaled
        per replica.

        Args:
            x: the clean (augmented, unperturbed) images; aux targets are computed from them.
            y: labels, or a dict with "label" and extra label kinds.
            outputs: the model's output dict.
            originals: the images before augmentation, for tasks whose `target_originals` is
                set (the denoiser reproduces the pre-augmentation image); default `x`.
        """
        terms = {PRIMARY: self.primary_loss(labels_of(y), outputs[PRIMARY])}
        for task in self.tasks:
            source = originals if task.target_originals and originals is not None else x
            terms[task.name] = task.loss(task.target(source, y), outputs[task.name])
        total = self.weighting.total(terms)
        if self.losses:  # kernel regularizers, scaled like keras' own compute_loss
            total += tf.add_n(self.losses) / tf.distribute.get_strategy().num_replicas_in_sync
        terms["loss"] = total
        return total, terms

    def primary_loss(self, labels, logits) -> tf.Tensor:
        """The primary classifier's term: cross-entropy (MART boosts it)."""
        return self._cross_entropy(labels, logits)

    def compile(self, *args, **kwargs):
        super().compile(*args, **kwargs)
        # Decoupled weight decay (SGD, AdamW) would pull learned log-variances toward 0.
        if self.weighting.decay_free_variables() and self.optimizer is not None:
            self.optimizer.exclude_from_weight_decay(var_list=self.weighting.decay_free_variables())

    # === Metrics ===
    @property
    def metrics(self):
        return [*self._trackers.values(), self._accuracy]

    def _update_metrics(self, y, outputs, terms, training: bool = True):
        """The step's logs; a validation step (`training=False`) logs no weighting metrics: the
        weights and cosines are the training steps' state, not the validation data's."""
        for name, value in terms.items():
            key = name if name == "loss" else f"{name}_loss"
            self._trackers[key].update_state(_unscaled(value))
        if training:
            for name, value in self.weighting.metrics().items():
                self._trackers[name].update_state(value)
        self._accuracy.update_state(labels_of(y), outputs[PRIMARY])
        return {
            m.name: m.result()
            for m in self.metrics
            if training or m.name not in self._weighting_metrics
        }

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config["tasks"] = [keras.saving.serialize_keras_object(t) for t in self.tasks]
        config.update(augmentation=self.augmentation, flip=self.flip, aux_targets=self.aux_targets)
        config.update(weighting=self.weighting.name, weighting_options=self.weighting_options)
        config.update({key: getattr(self, key) for key in self.LOOP_PARAMS})
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        tasks = [keras.saving.deserialize_keras_object(t) for t in config.pop("tasks", [])]
        options = dict(config.pop("weighting_options", None) or {})
        for key in _OLD_WEIGHTING_PARAMS:  # configs saved before `weighting_options`
            if key in config:
                options[key] = config.pop(key)
        keys = (
            *cls.LOOP_PARAMS,
            "weighting",
            "augmentation",
            "flip",
            "aux_targets",
        )
        loop = {key: config.pop(key) for key in keys if key in config}
        # Revive the plain functional graph, then wrap it so __init__ sees the tasks.
        graph = keras.Model.from_config(config, custom_objects=custom_objects)
        return cls(
            inputs=graph.input,
            outputs=graph.output,
            tasks=tasks,
            name=graph.name,
            weighting_options=options,
            **loop,
        )
