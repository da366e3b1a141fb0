"""Square Attack, score-based (no gradients), as AutoAttack's "standard" version runs it.

Untargeted, margin loss, one restart. It needs only logits, so gradient masking (rounding,
`stop_gradient`, a shattered or zero gradient) does not stop it: that is why AutoAttack runs it
last. Written natively in TensorFlow because cleverhans has no Square Attack and the reference is
a PyTorch loop.

    square = Square(model, norm="linf", queries=5000)
    x_adv = square(x, y, eps=8 / 255, seed=0)
    square.queries_used  # per example, as the reference's `n_queries`

One `tf.function` per image shape (any batch size), with ε and the seed as tensors; the queries
run in a `tf.while_loop` that ends when every example is misclassified. The reference attacks only
the still-robust examples (`idx_to_fool`); here the loop keeps a fixed batch and masks, and the
model is evaluated on the gathered still-robust examples only, so a fooled example costs nothing.

Where this differs from `autoattack/square.py` (fra31/auto-attack), and why:
- Square position, signs and (L2) the transposition of the pattern are drawn per example; the
  reference draws one of each per iteration for the whole batch. Per example the law of the
  search is the same, and independent draws are what the paper and its original code
  (max-andr/square-attack, a loop over images) do; results no longer depend on the batch.
- Randomness is stateless TensorFlow ops keyed by (seed, iteration), not torch's global RNG.
- L2 needs images of side >= 5 (its initial squares are side // 5 wide), and its squares are cut
  at the image border where the reference's would not fit (e.g. 12x12), instead of crashing.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import keras
import tensorflow as tf

from tfaux.attacks.protocol import (
    Attack,
    check_settings,
    compiled,
    model_function,
    register_attack,
    shape_key,
)
from tfaux.attacks.threat_model import NORMS, check_eps, clip
from tfaux.names import unknown_name

# The reference's piecewise-constant schedule: p halves after each of these iterations (counted
# on a 10,000-query scale, so a smaller budget runs the same schedule faster).
_P_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


@register_attack
class Square(Attack):
    """Square Attack under an L∞ or L2 budget, compiled; reproducible with a seed.

    Args:
        model: a Keras classifier (its primary logits), an `AttackedModel`, or x → logits,
            float32 [B, K] for images float32 [B, H, W, C] in [0, 1], used as it is.
        norm: "linf" or "l2".
        queries: iterations of the random search (AutoAttack: 5000); each costs one forward pass
            per still-robust example, the initialization one more.
        p_init: initial fraction of the image a square covers (AutoAttack: 0.8).
        rescale: stretch the square-size schedule (p halves at iterations 10, 50, ..., 8000 of
            10,000) to `queries`, the Square paper's default; AutoAttack runs it unscaled.

    Attributes:
        queries_used: after a call, int32 [B]: model evaluations spent on each example (0 for an
            example misclassified from the start), the reference's `n_queries`. Two more
            batch-wide passes (the clean check and the final check) are not counted.

    Reference:
        Andriushchenko et al., "Square Attack: a query-efficient black-box adversarial attack via
        random search", ECCV 2020; Croce & Hein, "Reliable evaluation of adversarial robustness
        with an ensemble of diverse parameter-free attacks", ICML 2020.
    """

    name, gradient_free = "square", True

    def __init__(
        self,
        model: keras.Model | Callable[[tf.Tensor], tf.Tensor],
        *,
        norm: str = "linf",
        queries: int = 5000,
        p_init: float = 0.8,
        rescale: bool = True,
    ):
        if norm not in NORMS:
            raise unknown_name("norm", norm, NORMS)
        check_settings(queries=queries)
        if not 0.0 < p_init <= 1.0:
            raise ValueError(f"Expected 0 < p_init <= 1. Received: p_init={p_init}")
        self.model, self.model_fn = model, model_function(model, gradient_path=False)
        self.norm, self.queries, self.p_init, self.rescale = norm, queries, p_init, rescale
        self.queries_used: tf.Tensor | None = None
        self._compiled: dict = {}

    @property
    def steps(self) -> int:
        """The query budget: Square's iterations."""
        return self.queries

    def get_config(self) -> dict:
        return {
            "norm": self.norm,
            "queries": self.queries,
            "p_init": self.p_init,
            "rescale": self.rescale,
        }

    def __call__(self, x, y, *, eps: float, seed: int = 0) -> tf.Tensor:
        """Adversarial images within ε of `x` and in [0, 1]; the clean image where the attack
        fails or the clean image is already misclassified (as the reference returns).

        Args:
            x: float32 [B, H, W, C] images in [0, 1].
            y: int [B] true labels.
            eps: the budget (L∞ or L2 by `norm`) in pixel units.
            seed: same seed, same images.
        """
        x = tf.convert_to_tensor(x, tf.float32)
        y = tf.convert_to_tensor(y)
        if x.shape.rank != 4:
            raise ValueError(f"Expected images shaped [B, H, W, C]. Received: x {x.shape}")
        if y.shape.rank != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"Expected one label per image. Received: x {x.shape}, y {y.shape}")
        if self.norm == "l2" and min(x.shape[1:3]) < 5:
            raise ValueError(f"Expected images of side >= 5 for L2. Received: x {x.shape}")
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"Expected an integer seed. Received: seed={seed!r}")
        eps = check_eps(eps, self.norm)
        fn = self._function(x.shape[1:])
        x_adv, self.queries_used = fn(
            x, tf.cast(y, tf.int32), tf.constant(eps, tf.float32), tf.constant(int(seed), tf.int32)
        )
        return x_adv

    def tracing_counts(self) -> dict[str, int]:
        """How often the attack was traced, per image shape: once, whatever ε, seed and batch."""
        return {key: fn.experimental_get_tracing_count() for key, fn in self._compiled.items()}

    def _function(self, image_shape):
        key = shape_key(image_shape)
        if key not in self._compiled:
            signature = [
                tf.TensorSpec([None, *image_shape], tf.float32),
                tf.TensorSpec([None], tf.int32),
                tf.TensorSpec([], tf.float32),
                tf.TensorSpec([], tf.int32),
            ]
            # This instance's traces counted alone: AutoAttack builds one Square per model.
            self._compiled[key] = compiled(self._attack, signature)
        return self._compiled[key]

    # === The attack (traced) ===
    def _attack(self, x, y, eps, seed):
        batch = tf.shape(x)[0]
        key = tf.stack([seed, 0])
        # Only correctly classified images are attacked (the reference's `perturb`).
        attacked = tf.argmax(self.model_fn(x), -1, output_type=tf.int32) == y

        # Initialization: one query.
        init = _init_linf if self.norm == "linf" else _init_l2
        x_best = init(x, eps, tf.random.experimental.stateless_fold_in(key, 0))
        margin_min = _margin(self.model_fn(x_best), y)
        queries = tf.cast(attacked, tf.int32)

        step = _step_linf if self.norm == "linf" else _step_l2

        def robust(margin_min):
            return attacked & (margin_min > 0.0)

        def body(i, x_best, margin_min, queries):
            active = robust(margin_min)
            # A new square for each example
            draws = tf.random.experimental.stateless_fold_in(key, i + 1)
            x_new = step(x, x_best, eps, self._side(i, x.shape[1:]), draws)
            # Forward pass on the still-robust examples only
            index = tf.where(active)[:, 0]
            margin = _margin(self.model_fn(tf.gather(x_new, index)), tf.gather(y, index))
            margin = tf.scatter_nd(index[:, None], margin, [batch])
            # Keep the new images where the margin improved (for the margin loss this includes
            # every newly misclassified one)
            better = active & (margin < margin_min)
            x_best = tf.where(better[:, None, None, None], x_new, x_best)
            margin_min = tf.where(better, margin, margin_min)
            return i + 1, x_best, margin_min, queries + tf.cast(active, tf.int32)

        def cond(i, x_best, margin_min, queries):
            return (i < self.queries) & tf.reduce_any(robust(margin_min))

        loop = (tf.constant(0), x_best, margin_min, queries)
        _, x_best, _, queries = tf.while_loop(cond, body, loop)

        fooled = tf.argmax(self.model_fn(x_best), -1, output_type=tf.int32) != y
        x_adv = tf.where((attacked & fooled)[:, None, None, None], x_best, x)
        return tf.stop_gradient(x_adv), queries

    def _side(self, i, image_shape):
        """The square's side at iteration `i` (shared by the batch, as in the reference)."""
        height, width, channels = image_shape
        # p_selection; with rescale_schedule, iteration i of `queries` is read on a 10,000
        # scale, in float64 and truncated like the reference's `int(it / n_queries * 10000)`.
        scaled = tf.cast(i, tf.int32)
        if self.rescale:
            scaled = tf.cast(tf.cast(i, tf.float64) / self.queries * 10000.0, tf.int32)
        halvings = tf.reduce_sum(tf.cast(scaled > tf.constant(_P_HALVINGS), tf.int32))
        p = self.p_init / tf.pow(tf.constant(2.0, tf.float64), tf.cast(halvings, tf.float64))
        # round() is half-to-even in both Python and TensorFlow
        side = tf.cast(tf.round(tf.sqrt(p * (height * width * channels) / channels)), tf.int32)
        if self.norm == "linf":
            return tf.maximum(side, 1)
        side = tf.maximum(side, 3)
        side += 1 - side % 2  # odd, so the pattern has a centre
        return tf.minimum(side, min(height, width))


# === L∞ ===
def _init_linf(x, eps, seed):
    """Vertical stripes: ±ε per column and channel, constant along the height."""
    shape = tf.stack([tf.shape(x)[0], 1, x.shape[2], x.shape[3]])
    return clip(x + eps * _random_sign(shape, seed))


def _step_linf(x, x_best, eps, side, seed):
    """x_best with one square set to x ± ε: a ±2ε step per channel, projected back."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    batch, (height, width, channels) = tf.shape(x)[0], x.shape[1:]
    window = _window(
        _random_corner(batch, height, side, seeds[0]),
        _random_corner(batch, width, side, seeds[1]),
        side, height, width,
    )  # fmt: skip
    sign = _random_sign(tf.stack([batch, 1, 1, channels]), seeds[2])
    x_new = x_best + 2.0 * eps * sign * window[..., None]
    return clip(tf.clip_by_value(x_new, x - eps, x + eps))


# === L2 ===
def _init_l2(x, eps, seed):
    """A grid of squares of side h // 5, each an `eta_pattern` with a random sign per channel (and
    a random transposition), scaled to L2 norm ε."""
    batch, (height, width, channels) = tf.shape(x)[0], x.shape[1:]
    side = height // 5
    start = (height - 5 * side) // 2  # the reference centres the grid by the height on both axes
    seeds = tf.random.experimental.stateless_split(seed, 2)

    def grid(length, count):  # per pixel: which square, where inside it, and whether in one
        offset = tf.range(length) - start
        inside = (offset >= 0) & (offset < count * side)
        return tf.clip_by_value(offset // side, 0, count - 1), offset % side, inside

    rows, row_in, rows_inside = grid(height, height // side)
    cols, col_in, cols_inside = grid(width, width // side)
    squares = tf.stack([batch, height // side, width // side])
    transposed = tf.random.stateless_uniform(squares, seeds[0]) > 0.5
    sign = _random_sign(tf.concat([squares, [channels]], 0), seeds[1])
    # Spread the per-square draws to pixels
    transposed = tf.gather(tf.gather(transposed, rows, axis=1), cols, axis=2)
    sign = tf.gather(tf.gather(sign, rows, axis=1), cols, axis=2)
    eta = eta_pattern(tf.constant(side))
    pattern = tf.where(
        transposed,
        tf.gather(tf.gather(tf.transpose(eta), row_in, axis=0), col_in, axis=1)[None],
        tf.gather(tf.gather(eta, row_in, axis=0), col_in, axis=1)[None],
    )
    inside = tf.cast(rows_inside[:, None] & cols_inside[None, :], x.dtype)
    delta = (pattern * inside)[..., None] * sign
    return clip(x + _normalize(delta) * eps)


def _step_l2(x, x_best, eps, side, seed):
    """The reference's L2 step: draws two squares, a transposition and a sign per channel, then
    `l2_window_update`, then the whole perturbation is rescaled to norm ε."""
    seeds = tf.random.experimental.stateless_split(seed, 6)
    batch, (height, width, channels) = tf.shape(x)[0], x.shape[1:]
    top = _random_corner(batch, height, side, seeds[0])
    left = _random_corner(batch, width, side, seeds[1])
    window = _window(top, left, side, height, width)[..., None]
    top_2 = _random_corner(batch, height, side, seeds[2])
    left_2 = _random_corner(batch, width, side, seeds[3])
    window_2 = _window(top_2, left_2, side, height, width)[..., None]
    transposed = tf.random.stateless_uniform([batch], seeds[4]) > 0.5
    sign = _random_sign(tf.stack([batch, 1, 1, channels]), seeds[5])
    pattern = _placed_eta(top, left, side, transposed, height, width)[..., None] * sign
    delta = l2_window_update(x_best - x, window, window_2, pattern, eps)
    return clip(x + _normalize(delta) * eps)


def l2_window_update(delta, window, window_2, pattern, eps) -> tf.Tensor:
    """The L2 step's new perturbation given its random draws, before the rescaling to norm ε:
    the reference's `delta_curr` after an iteration (fra31/auto-attack,
    `SquareAttack.attack_single_run`). Public so that a test can check it against the reference.

    The second square is emptied; in the first, each channel c gets `pattern` plus its old
    perturbation at unit norm, scaled so that ‖new_c‖² = ‖δ_c in both squares‖² + the unused
    budget max(ε² − ‖δ‖², 0) / C. Per channel, as the reference: the mass moved is each
    channel's own, not the whole image's.

    Args:
        delta: [B, H, W, C], the current perturbation x_best − x.
        window, window_2: [B, H, W, 1], 1 inside the first and the second square, 0 elsewhere.
        pattern: [B, H, W, C], the new pattern (`eta` × a sign per channel) inside the first
            square, 0 elsewhere.
        eps: the L2 budget.

    Returns:
        float32 [B, H, W, C]: the new window in the first square, 0 in the rest of the second,
        `delta` elsewhere.
    """
    delta, window, window_2, pattern = (
        tf.convert_to_tensor(t, tf.float32) for t in (delta, window, window_2, pattern)
    )
    if delta.shape.rank != 4 or window.shape[-1] != 1 or window_2.shape[-1] != 1:
        raise ValueError(
            "Expected delta [B, H, W, C] and windows [B, H, W, 1]. "
            f"Received: delta {delta.shape}, window {window.shape}, window_2 {window_2.shape}"
        )
    channels = tf.cast(tf.shape(delta)[-1], delta.dtype)
    norm_window = _norm(delta * window, axis=(1, 2))  # per channel
    norm_image = _norm(delta, axis=(1, 2, 3))
    norm_windows = _norm(delta * tf.maximum(window, window_2), axis=(1, 2))  # per channel
    new = pattern + delta * window / (1e-12 + norm_window)
    budget = tf.maximum(eps**2 - norm_image**2, 0.0) / channels + norm_windows**2
    new = new / (1e-12 + _norm(new, axis=(1, 2))) * tf.sqrt(budget)
    return delta * (1.0 - window_2) * (1.0 - window) + new


def eta_pattern(side):
    """The reference's `eta(s)`: an s×s pattern, +1 on the top half and −1 on the bottom half,
    each half concentric rectangles weighted 1/(k+1)², unit L2 norm. Public so that a test can
    check it against the reference."""
    top = _eta_rectangles(side // 2, side)
    bottom = -_eta_rectangles(side - side // 2, side)
    eta = tf.concat([top, bottom], 0)
    return eta / tf.sqrt(tf.reduce_sum(eta**2))


def _eta_rectangles(rows, cols):
    """The reference's `eta_rectangles(x, y)` in closed form: its loop adds 1/(k+1)² to every cell
    within Chebyshev distance k of the centre (x // 2, y // 2), for k < max(x, y) // 2 + 1, so a
    cell at distance d holds the tail sum over k >= d."""
    distance = tf.maximum(
        tf.abs(tf.range(rows)[:, None] - rows // 2), tf.abs(tf.range(cols)[None, :] - cols // 2)
    )
    k = tf.cast(tf.range(tf.maximum(rows, cols) // 2 + 1), tf.float32)
    tail = tf.cumsum(1.0 / (k + 1.0) ** 2, reverse=True)
    delta = tf.gather(tail, distance)
    return delta / tf.sqrt(tf.reduce_sum(delta**2))


def _placed_eta(top, left, side, transposed, height, width):
    """`eta_pattern(side)` placed at each example's square (transposed where asked), zero elsewhere:
    [B, H, W]. A gather from per-pixel coordinates inside the square, with no loop over the
    batch."""
    eta = eta_pattern(side)
    row_in = tf.range(height)[None, :] - top[:, None]  # [B, H]
    col_in = tf.range(width)[None, :] - left[:, None]  # [B, W]
    rows = tf.broadcast_to(row_in[:, :, None], tf.stack([tf.shape(top)[0], height, width]))
    cols = tf.broadcast_to(col_in[:, None, :], tf.shape(rows))
    t = transposed[:, None, None]
    index = tf.stack([tf.where(t, cols, rows), tf.where(t, rows, cols)], -1)
    values = tf.gather_nd(eta, tf.clip_by_value(index, 0, side - 1))
    return values * _window(top, left, side, height, width)


# === Shared helpers ===
def _margin(logits, y):
    """Logit of the true class minus the best other logit: <= 0 once misclassified."""
    logits = tf.cast(logits, tf.float32)
    true = tf.one_hot(y, tf.shape(logits)[-1], on_value=True, off_value=False)
    correct = tf.reduce_sum(tf.where(true, logits, 0.0), -1)
    return correct - tf.reduce_max(tf.where(true, -float("inf"), logits), -1)


def _random_corner(batch, length, side, seed):
    """Per example, the reference's `random_int(0, length - side)`: floor(U · (length − side)),
    so in [0, length − side − 1] (the last position is never drawn) or 0 when the square fills
    the image."""
    u = tf.random.stateless_uniform([batch], seed)
    return tf.cast(u * tf.cast(length - side, tf.float32), tf.int32)


def _window(top, left, side, height, width):
    """1 inside each example's square [top, top + side) × [left, left + side), 0 elsewhere:
    [B, H, W], built by comparing with `tf.range`."""
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + side)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + side)
    return tf.cast(in_rows[:, :, None] & in_cols[:, None, :], tf.float32)


def _random_sign(shape, seed):
    """±1 with equal probability (the reference's sign(2U − 1))."""
    return tf.where(tf.random.stateless_uniform(shape, seed) < 0.5, -1.0, 1.0)


def _norm(x, axis):
    return tf.sqrt(tf.reduce_sum(x**2, axis=axis, keepdims=True))


def _normalize(delta):
    """Per example to unit L2 norm (the reference's `normalize`, with its 1e-12)."""
    return delta / (_norm(delta, axis=(1, 2, 3)) + 1e-12)
