"""An experiment's parts, from a recipe: the one API the runner, the tuner, benchmarks and tests
share, so a model trained anywhere is the model the runner trains.

    splits = load_splits(recipe)
    check_recipe(recipe, splits.info.image_shape)
    model, strategy = build_model(recipe, "fourier@pgd", splits.info)
    loop = loop_of(recipe, "fourier@pgd")
    epochs = loop.epochs(recipe.training.epochs)
    callbacks = training_callbacks(recipe, loop, epochs, splits, history_file="history.csv")
    fit(model, splits, epochs=epochs, callbacks=callbacks, strategy=strategy)
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfaux import data
from tfaux.attacks.names import AUTOATTACK_VERSIONS
from tfaux.config import Recipe, selection_rule
from tfaux.data.augment import get_augmentation
from tfaux.data.pipeline import labels_of, repeated
from tfaux.data.sources import check_name, has_coarse_labels
from tfaux.distribute import create_strategy, shard_by_data
from tfaux.evaluate.disturbances import DISTURBANCES
from tfaux.models import build
from tfaux.models.registry import get_backbone_builder
from tfaux.names import require, unknown_name
from tfaux.precision import loss_scaled
from tfaux.progress import training_progress
from tfaux.tasks import create_task
from tfaux.tasks.base import task_class
from tfaux.training.callbacks import (
    ModelSelection,
    RobustAccuracy,
    SharedAttacker,
    StepBudget,
    TimedMonitor,
)
from tfaux.training.loop import Loop, create_loop, loop_class
from tfaux.training.monitor import ImageLogger, LearningRateLogger
from tfaux.training.schedules import (
    adamw,
    cosine_after_warmup,
    early_stopping,
    one_cycle,
    plateau_lr_cut,
    sgd_momentum,
    step_decay,
)
from tfaux.variant import Variant
from tfaux.weighting import WEIGHTINGS

log = logging.getLogger("tfaux")


# === Data ===
def load_splits(recipe: Recipe) -> data.Splits:
    """Fresh train/val/test pipelines of the recipe's data, seeded by `training.seed`.

    Fresh for every model: iterating one tf.data pipeline again continues its shuffle and
    augmentation streams, so a shared one would give each variant other batches.
    """
    # tf.data combines its op seeds with TF's global seed, which building a model sets: fix it
    # here too, or a pipeline built after a model would shuffle and augment differently.
    keras.utils.set_random_seed(recipe.training.seed)
    d = recipe.data
    wants_coarse = any(
        task_class(task).coarse_labels for v in recipe.variants for task in Variant.parse(v).tasks
    )
    return data.load(
        d.dataset,
        batch_size=d.batch_size,
        val_fraction=d.val_fraction,
        seed=recipe.training.seed,
        augment=d.augment,
        train_size=d.train_size,
        test_size=d.test_size,
        image_size=d.image_size,
        data_dir=d.data_dir,
        download=d.download,
        coarse=wants_coarse and has_coarse_labels(d.dataset),
        options=data.ImageOptions.from_settings(recipe.to_dict()["data"]),
        flip=d.flip,
    )


def first_examples(dataset: tf.data.Dataset, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` images and (primary) labels of a batched split, as arrays."""
    x, y = next(iter(dataset.unbatch().take(n).batch(n)))
    return x.numpy(), labels_of(y).numpy()


def steps_per_epoch(recipe: Recipe, info: data.DatasetInfo) -> int:
    """Batches in one epoch of the training split."""
    return math.ceil(info.num_train / recipe.data.batch_size)


def example_passes(recipe: Recipe, variant: str, info: data.DatasetInfo, steps: int) -> int:
    """Forward-backward passes over training examples in `steps` optimizer steps of `variant`
    (the budget): examples per step, twice for a two-view task (two views of each), times the
    loop's passes per step (attack steps; Free-AT's backward pass for δ with aux tasks) and the
    weighting's extra backward passes (one per aux term for a combination of gradients; each
    counted as a whole pass, an upper bound)."""
    parsed = Variant.parse(variant)
    tasks = parsed.tasks
    views = task_views(tasks)
    examples_per_step = info.num_train / steps_per_epoch(recipe, info) * views
    passes = loop_of(recipe, variant).passes_per_step(tasks)
    passes += WEIGHTINGS.get(parsed.weighting).extra_backward_passes(len(tasks))
    return round(steps * examples_per_step * passes)


def task_views(tasks) -> int:
    """Views of each image a step takes: 2 with a two-view task (contrastive), else 1."""
    return max([1, *(task_class(task).views for task in tasks)])


# === Checks ===
def check_recipe(recipe: Recipe, input_shape: tuple[int, int, int] | None = None) -> None:
    """Checks what a recipe's schema cannot: names against their registries (each error
    suggests the closest), each variant against its loop, λ and the selection rule, what the
    tasks and loops need of the data. Before any data is loaded (without `input_shape`) or
    before any model is trained (with it: layer names need the image shape)."""
    for backbone in (recipe.model.backbone, *recipe.backbones):
        get_backbone_builder(backbone)
    check_name(recipe.data.dataset)
    for text in recipe.variants:
        variant = Variant.parse(text)
        if variant.augmentation:
            get_augmentation(variant.augmentation)  # an unknown name suggests the closest
        WEIGHTINGS.get(variant.weighting).check_variant(variant)
        loop = loop_class(variant.loop)
        loop.check_variant(variant, task_views(variant.tasks))
        check_weights(variant, recipe.aux_weight)
        for task in variant.tasks:
            task_class(task).check_dataset(recipe.data.dataset)
        loop_of(recipe, text).check_settings()
        if selection_rule(recipe, loop) == "best_robust":
            require(
                recipe.evaluation.eps > 0,
                "evaluation.eps > 0 to select the best robust epoch (it is the validation "
                "PGD budget)",
                variant=text,
                eps=recipe.evaluation.eps,
            )
            require(
                recipe.monitor.robust_examples > 0,
                "monitor.robust_examples > 0 to select the best robust epoch (or "
                "--set training.select=best_clean)",
                variant=text,
                robust_examples=recipe.monitor.robust_examples,
            )
    for augmentation in recipe.evaluation.augmented:
        get_augmentation(augmentation)
    if recipe.evaluation.autoattack_version not in AUTOATTACK_VERSIONS:
        raise unknown_name(
            "evaluation.autoattack_version",
            recipe.evaluation.autoattack_version,
            AUTOATTACK_VERSIONS,
        )
    t = recipe.tuning
    if t.variant or t.eps is not None or t.replays is not None:
        tuning_variant(recipe)  # a recipe that names no aux variant is still fine to run
    for claim in recipe.claims:
        if claim.kind == "disturbance" and claim.argument not in DISTURBANCES:
            raise unknown_name(
                f"disturbance (claim of {claim.source!r})", claim.argument, DISTURBANCES
            )
    if input_shape is not None:
        for variant in recipe.variants:
            loop_of(recipe, variant).check(input_shape)


def check_weights(variant: Variant, default: float) -> None:
    """Refuses an aux task at λ = 0 (its own, or the `default` it takes) under fixed weights: its
    head trains nothing, so the variant is "none" at extra cost. A two-view task at λ = 0 is
    kept: its classifier still trains on two augmented views of every image (seed 002's control,
    "projection=0"). Learned weightings replace λ, so they are not checked; a combination of
    gradients scales each row by its λ, so it is."""
    if WEIGHTINGS.get(variant.weighting).learned:
        return
    for task, weight in variant.weights(default).items():
        if weight == 0 and task_class(task).views < 2:
            named = task in variant.own_weights
            fix = (
                f"give it a weight, e.g. '{task}=0.01', or drop it"
                if named
                else f"set aux_weight > 0 or give it its own, e.g. '{task}=0.01'"
            )
            received = f"{task}={weight}" if named else f"aux_weight={default}"
            raise ValueError(
                f"Expected λ > 0 for the aux task '{task}' of variant '{variant.text}' (at λ = 0 "
                "its head trains nothing and the variant is 'none' at extra cost; only a two-view "
                "task such as 'projection=0' is a control, its classifier trains on two views): "
                f"{fix}. Received: {received}"
            )


def tuning_variant(recipe: Recipe) -> str:
    """The variant `tune` searches: `tuning.variant`, else the first variant with aux tasks.

    Also checks that a searched ε or m is one the variant's loop uses.
    """
    t = recipe.tuning
    tunable = [v for v in recipe.variants if Variant.parse(v).tasks]
    if not t.variant:
        require(
            bool(tunable),
            "a variant with aux tasks to tune (add one to variants or set tuning.variant)",
            variants=recipe.variants,
        )
        variant = tunable[0]
    elif t.variant not in tunable:
        raise unknown_name("variant with aux tasks to tune (tuning.variant)", t.variant, tunable)
    else:
        variant = t.variant
    parsed = Variant.parse(variant)
    require(
        not WEIGHTINGS.get(parsed.weighting).learned,
        "a tuning.variant whose weighting uses λ (learned weights have no λ to tune)",
        variant=variant,
    )
    loop = loop_class(parsed.loop)
    if t.eps is not None:
        require(
            loop.trains_at_eps,
            f"a loop that trains at adversarial.eps (not '@{loop.name}') to search tuning.eps",
            variant=variant,
        )
    if t.replays is not None:
        require(
            loop.replays,
            f"a loop that replays batches (not '@{loop.name}') to search tuning.replays",
            variant=variant,
        )
    return variant


# === Models ===
def loop_of(recipe: Recipe, variant: str) -> Loop:
    """The training loop of `variant`, set up from `recipe` with the variant's bracketed loop
    settings applied ("none@fgsm[eps=0.3]" trains at ε = 0.3; see `Variant.recipe`)."""
    parsed = Variant.parse(variant)
    return create_loop(parsed.loop, parsed.recipe(recipe))


def build_model(
    recipe: Recipe,
    variant: str,
    info: data.DatasetInfo,
    *,
    compile: bool = True,
    distributed: bool = True,
    precision: str | None = None,
) -> tuple[keras.Model, tf.distribute.Strategy]:
    """The variant's model, compiled with the recipe's optimizer, and its strategy.

    The same seed gives the same initial weights. `distributed=False` builds it outside the
    recipe's strategy, for evaluation and export: under MultiWorkerMirroredStrategy `evaluate`
    on a distributed model is a collective every worker would have to join. `precision`
    overrides `training.precision` for the layers (evaluation uses "float32"); the optimizer is
    always the recipe's, loss-scaled for mixed_float16, so a rebuild loads the state it saved.
    """
    keras.utils.set_random_seed(recipe.training.seed)
    strategy = (
        create_strategy(recipe.training.strategy) if distributed else tf.distribute.get_strategy()
    )
    loop, parsed = loop_of(recipe, variant), Variant.parse(variant)
    tasks = [
        create_task(name, weight=weight, **task_class(name).options(info))
        for name, weight in parsed.weights(recipe.aux_weight).items()
    ]
    tasks += loop.tasks(info.num_classes)
    with strategy.scope():
        model = build(
            recipe.model.backbone,
            input_shape=info.image_shape,
            num_classes=info.num_classes,
            mean=info.mean,
            std=info.std,
            tasks=tasks,
            width=recipe.model.width,
            dropout=recipe.model.dropout,
            random_sign=loop.random_sign(),
            # Synchronized statistics make a multi-replica step equal a single-device step.
            norm=loop.norm(recipe.model.bn_momentum, strategy.num_replicas_in_sync > 1),
            name=re.sub(r"\W", "_", variant),
            precision=precision or recipe.training.precision,
        )
        model = loop.wrap(
            model,
            augmentation=parsed.augmentation,
            weighting=parsed.weighting,
        )
        if compile:
            model.compile(
                optimizer=loss_scaled(
                    optimizer(recipe, steps_per_epoch(recipe, info)), recipe.training.precision
                ),
                jit_compile=False,  # XLA is 1.5–10× slower on these CPUs, breaks MirroredStrategy
            )
    return model, strategy


def load_trained(
    recipe: Recipe, variant: str, info: data.DatasetInfo, weights: str | Path
) -> keras.Model:
    """The variant's model rebuilt in float32, undistributed, with the weights file loaded.

    Whatever `training.precision` trained it, attacks, reports and the export compute in
    float32: variables are float32 under every mixed policy, so the weights load unchanged.
    """
    model, strategy = build_model(recipe, variant, info, distributed=False, precision="float32")
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)  # the file holds its state too
    model.load_weights(weights)
    return model


def optimizer(recipe: Recipe, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """SGD with momentum or AdamW (`training.optimizer`) at `learning_rate_schedule`'s rate."""
    t = recipe.training
    learning_rate = learning_rate_schedule(recipe, steps_per_epoch)
    if t.optimizer == "adamw":
        return adamw(learning_rate, t.weight_decay)
    return sgd_momentum(learning_rate, t.momentum, t.weight_decay)


def learning_rate_schedule(
    recipe: Recipe, steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """A constant rate (cut on plateaus by `training_callbacks`), a cosine after a warm-up, a
    one-cycle or seed 001's steps (`training.schedule`); per-step schedules span natural
    training's optimizer steps."""
    t = recipe.training
    total_steps = t.epochs * steps_per_epoch
    if t.schedule == "onecycle":
        return one_cycle(
            t.learning_rate, total_steps=total_steps, warmup_fraction=t.warmup_fraction
        )
    if t.schedule == "step":
        return step_decay(t.learning_rate, total_steps=total_steps)
    if t.schedule == "cosine":
        return cosine_after_warmup(
            t.learning_rate,
            epochs=t.epochs,
            warmup_epochs=t.warmup_epochs,
            steps_per_epoch=steps_per_epoch,
        )
    return t.learning_rate


def step_learning_rates(
    recipe: Recipe, steps_per_epoch: int, history: dict[str, list], start: int, stop: int
) -> np.ndarray:
    """The learning rate of each optimizer step in [start, stop) of a finished fit: the
    schedule's, or for a constant rate (cut on plateaus) the one each epoch logged."""
    if not 0 <= start <= stop:
        raise ValueError(f"Expected 0 <= start <= stop. Received: start={start}, stop={stop}")
    schedule = learning_rate_schedule(recipe, steps_per_epoch)
    if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        per_epoch = np.asarray(history["learning_rate"], dtype=np.float64)
        return per_epoch[np.minimum(np.arange(start, stop) // steps_per_epoch, len(per_epoch) - 1)]
    return _evaluate_schedule(schedule, tf.range(start, stop, dtype=tf.int64)).numpy()


@tf.function(reduce_retracing=True)
def _evaluate_schedule(schedule, steps: tf.Tensor) -> tf.Tensor:
    # One step at a time: CosineDecay branches on a scalar step (ops.cond), so it takes no vector.
    return tf.map_fn(
        lambda step: tf.cast(schedule(step), tf.float64), steps, fn_output_signature=tf.float64
    )


# === Training ===
def fit(
    model: keras.Model,
    splits: data.Splits,
    *,
    epochs: int,
    callbacks: list[keras.callbacks.Callback],
    initial_epoch: int = 0,
    strategy: tf.distribute.Strategy | None = None,
) -> keras.callbacks.History:
    """`model.fit` on the training split, validated on the validation split, the way every
    variant trains: one iterator per split for the whole fit, never one per epoch (`repeated`);
    under multi-worker training each worker takes its share of every batch; the pipeline
    shuffles, with the run's seed, so Keras does not. The weighting's callbacks (DWA's epoch
    history) go first, so the epoch's backup holds what they did at its end."""
    weighting = getattr(model, "weighting", None)
    callbacks = [*(weighting.callbacks() if weighting else []), *callbacks]
    train, steps = repeated(shard_by_data(splits.train))
    val, val_steps = repeated(shard_by_data(splits.val))
    with (strategy or tf.distribute.get_strategy()).scope():
        return model.fit(
            train,
            steps_per_epoch=steps,
            validation_data=val,
            validation_steps=val_steps,
            epochs=epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            shuffle=False,
            verbose=0,
        )


# === Callbacks ===
def training_callbacks(
    recipe: Recipe,
    loop: Loop,
    epochs: int,
    splits: data.Splits,
    *,
    history_file: str | Path,
    log_dir: str | Path | None = None,
    robust_examples: int | None = None,
    robust_steps: int | None = None,
    robust_every: int | None = None,
    progress: str | None = None,
    budget: bool = True,
) -> list[keras.callbacks.Callback]:
    """The callbacks of one training, in the order their epoch logs need:

    1. the loop's own (ε/m schedule, stage switch), which log their state;
    2. the learning rate and, with `robust_examples` > 0, `RobustAccuracy` (PGD-`robust_steps`
       at `evaluation.eps` on that many validation images, every `robust_every` epochs, 0:
       never; defaults: `monitor.robust_examples`, `adversarial.pgd_steps` and
       `val_pgd_every`), which add metrics;
    3. the model selection (`training.select` or the loop's rule), which keeps the weights of
       the selected epoch and restores them at the end, then the overfitting guard of
       single-step loops: a rollback never hides the collapsed epoch's metrics, and it tells the
       selection, which never restores an epoch the rollback discarded;
    4. with `log_dir`, TensorBoard and the image logger: before the LR cut, so TensorBoard
       plots the rate each epoch used, not the next one's;
    5. the plateau LR cut, early stopping on the selection's metric (it only stops) and, with
       `budget`, the step budget: natural training's optimizer steps, which caps Free-AT's
       last epoch (the tuner turns it off when Hyperband sets the epochs);
    6. the CSV history (appended across a resume), TerminateOnNaN, the progress line
       (`progress`: its label; None for none).

    A `RunBackup` goes after these (it restores their state on resume).
    """
    m = recipe.monitor
    attackers = SharedAttacker()  # validation PGD and the panels' PGD: one trace
    callbacks = [*loop.callbacks(epochs), LearningRateLogger()]
    robust_examples = m.robust_examples if robust_examples is None else robust_examples
    every = val_pgd_every(recipe, type(loop)) if robust_every is None else robust_every
    if robust_examples and every:  # the primary's clean vs adversarial accuracy
        x, y = first_examples(splits.val, min(robust_examples, splits.info.num_val))
        steps = recipe.adversarial.pgd_steps if robust_steps is None else robust_steps
        callbacks.append(
            RobustAccuracy(
                x, y, eps=recipe.evaluation.eps, steps=steps, every=every, attackers=attackers
            )
        )
    # After the metrics it reads, and before a guard may roll the weights back: the epoch's
    # logs and the selected weights are the epoch's own.
    selection = ModelSelection(selection_rule(recipe, type(loop)))
    callbacks += [selection, *loop.guards(lambda: _guard_batch(recipe), selection)]
    if log_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(str(log_dir)))
        if m.images_every:
            x, y = first_examples(splits.val, min(m.images, splits.info.num_val))
            callbacks.append(
                ImageLogger(
                    log_dir,
                    x,
                    y,
                    n=len(x),
                    every=m.images_every,
                    eps=recipe.evaluation.eps,
                    steps=recipe.adversarial.pgd_steps,
                    attackers=attackers,
                )
            )
    callbacks += [
        *lr_schedule_callbacks(recipe, selection.metric),
        *([StepBudget(recipe.training.epochs * steps_per_epoch(recipe, splits.info))] * budget),
        keras.callbacks.CSVLogger(str(history_file), append=True),
        keras.callbacks.TerminateOnNaN(),
    ]
    if progress is not None:
        steps = steps_per_epoch(recipe, splits.info)
        callbacks.append(training_progress(epochs=epochs, steps=steps, desc=progress))
    return callbacks


def val_pgd_every(recipe: Recipe, loop: type[Loop]) -> int:
    """Every how many epochs a variant on `loop` measures validation PGD (0: never).

    Every epoch where something reads it: a loop that selects its epoch by it ("best_robust",
    which early stopping then watches too) and a robust objective (the best variant is the one
    whose selected epoch scored best). Elsewhere `monitor.robust_every`: a clean selection never
    reads it, and the evaluation measures PGD on the test split anyway.
    """
    if recipe.objective == "robust" or selection_rule(recipe, loop) == "best_robust":
        return 1
    return recipe.monitor.robust_every


def lr_schedule_callbacks(recipe: Recipe, metric: str | None) -> list[keras.callbacks.Callback]:
    """The plateau LR cut (`training.schedule="plateau"`) and early stopping on `metric`, the
    model selection's (None: a fixed schedule, no early stopping). Early stopping never
    restores weights: `ModelSelection` decides which epoch is kept."""
    t = recipe.training
    callbacks = [plateau_lr_cut(t.plateau_patience)] if t.schedule == "plateau" else []
    if metric is not None:
        callbacks.append(early_stopping(t.stop_patience, monitor=metric))
    return callbacks


def selection_of(callbacks: list[keras.callbacks.Callback]) -> dict:
    """The selected epoch of a finished fit (`ModelSelection.summary`) among its callbacks."""
    return next(c for c in callbacks if isinstance(c, ModelSelection)).summary()


def steps_of(callbacks: list[keras.callbacks.Callback]) -> dict:
    """The optimizer steps a finished fit took, applied or skipped (`StepBudget.summary`)."""
    return next(c for c in callbacks if isinstance(c, StepBudget)).summary()


def monitor_seconds(callbacks: list[keras.callbacks.Callback]) -> dict[str, float]:
    """What each monitor of a finished fit cost: {"val_pgd" | "images" | "guard": seconds} for
    those it ran (`TimedMonitor`), traces included; a part of the fit's own seconds."""
    return {c.monitor_name: round(c.seconds, 1) for c in callbacks if isinstance(c, TimedMonitor)}


def _guard_batch(recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """The overfitting guard's fixed training batch, from its own pipeline (reading the
    training pipeline would advance its shuffle and augmentation seeds)."""
    return first_examples(load_splits(recipe).train, recipe.adversarial.guard_examples)


# === Logs ===
def log_to(path: str | Path) -> None:
    """Sends the "tfaux" log to the file `path` only (the console shows progress and tables)."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.handlers = [h for h in log.handlers if not isinstance(h, logging.FileHandler)]
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
