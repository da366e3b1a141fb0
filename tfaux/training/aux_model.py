"""`AuxModel`: a functional multi-output classifier trained on CE + Σ λ_i · aux_i.

The train step mirrors Keras' own (keras/src/backend/tensorflow/trainer.py) stage by stage; the
only extension point is `perturb`, which adversarial and noise-training loops override.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from tfaux.aux.base import AuxTask

PRIMARY = "logits"


def labels_of(y):
    """The primary (fine) labels of a batch: `y` itself or `y["label"]` when labels are a dict."""
    return y["label"] if isinstance(y, dict) else y


def _unscaled(value: tf.Tensor) -> tf.Tensor:
    # keras.losses objects divide by the number of replicas (so gradients summed across replicas
    # give the global-batch mean); metrics must report the per-example mean, so undo it.
    return value * tf.distribute.get_strategy().num_replicas_in_sync


@keras.saving.register_keras_serializable(package="tfaux")
class AuxModel(keras.Model):
    """Functional `keras.Model` with dict outputs {"logits", <task names>} and a multi-task step.

    Loss = CE(logits, y) + Σ_i λ_i · loss_i(target_i(x, y), output_i), with every aux target
    computed from the clean images in the step. Metrics: `loss`, `logits_loss`, `<task>_loss`
    for each task, and `accuracy` of the primary classifier.

    Args:
        *args, **kwargs: the functional `keras.Model` arguments (inputs, outputs dict, name).
        tasks: the auxiliary tasks; each task's `name` must be an output of the model.

    Example:
        model = tfaux.models.build("resnet8", input_shape=(28, 28, 1), num_classes=10,
                                   tasks=[FourierTask(0.01)])
        model.compile(optimizer="sgd")
        model.fit(splits.train, validation_data=splits.val, epochs=2)
    """

    # Constructor arguments of a training loop, saved in the config (subclasses extend it).
    LOOP_PARAMS: tuple[str, ...] = ()

    def __init__(self, *args, tasks: Sequence[AuxTask] = (), **kwargs):
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
        self._cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self._trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ["loss", f"{PRIMARY}_loss", *(f"{t.name}_loss" for t in self.tasks)]
        }
        self._accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    # === Steps ===
    def perturb(self, x: tf.Tensor, y) -> tf.Tensor:
        """Input the weights are trained on; identity here, attacks and noise in subclasses."""
        return x

    def train_step(self, data):
        x, y = data
        # Perturbation (outside the weight tape)
        x_train = self.perturb(x, y)
        # Forward pass
        with tf.GradientTape() as tape:
            outputs = self(x_train, training=True)
            loss, terms = self.loss_terms(x, y, outputs)
            loss = self.optimizer.scale_loss(loss)
        # Gradients and update
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(gradients, self.trainable_weights)
        # Metrics
        return self._update_metrics(y, outputs, terms)

    def test_step(self, data):
        x, y = data
        outputs = self(x, training=False)
        _, terms = self.loss_terms(x, y, outputs)
        return self._update_metrics(y, outputs, terms)

    # === Loss ===
    def loss_terms(self, x, y, outputs) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """Total loss and its unweighted terms, all already scaled per replica.

        Args:
            x: the clean images (aux targets are computed from them).
            y: labels, or a dict with "label" and extra label kinds.
            outputs: the model's output dict.
        """
        terms = {PRIMARY: self._cross_entropy(labels_of(y), outputs[PRIMARY])}
        total = terms[PRIMARY]
        for task in self.tasks:
            terms[task.name] = task.loss(task.target(x, y), outputs[task.name])
            total += task.weight * terms[task.name]
        if self.losses:  # kernel regularizers, scaled like keras' own compute_loss
            total += tf.add_n(self.losses) / tf.distribute.get_strategy().num_replicas_in_sync
        terms["loss"] = total
        return total, terms

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return self.loss_terms(x, y, y_pred)[0]

    # === Metrics ===
    @property
    def metrics(self):
        return [*self._trackers.values(), self._accuracy]

    def _update_metrics(self, y, outputs, terms):
        for name, value in terms.items():
            key = name if name == "loss" else f"{name}_loss"
            self._trackers[key].update_state(_unscaled(value))
        self._accuracy.update_state(labels_of(y), outputs[PRIMARY])
        return {m.name: m.result() for m in self.metrics}

    # === Config ===
    def get_config(self):
        config = super().get_config()
        config["tasks"] = [keras.saving.serialize_keras_object(t) for t in self.tasks]
        config.update({key: getattr(self, key) for key in self.LOOP_PARAMS})
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        tasks = [keras.saving.deserialize_keras_object(t) for t in config.pop("tasks", [])]
        loop = {key: config.pop(key) for key in cls.LOOP_PARAMS if key in config}
        # Revive the plain functional graph, then wrap it so __init__ sees the tasks.
        graph = keras.Model.from_config(config, custom_objects=custom_objects)
        return cls(inputs=graph.input, outputs=graph.output, tasks=tasks, name=graph.name, **loop)
