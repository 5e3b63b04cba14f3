"""Fast Gradient Sign Method perturbation of embeddings."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from augpro_keras import input_checks
from augpro_keras.api_export import export

DIRECTIONS = ("ascent", "descent", "random")


def validate_epsilon(epsilon, name="epsilon"):
    """A finite Python number >= 0, as a float; `ValueError` naming `name` otherwise."""
    return input_checks.validate_number(epsilon, name, minimum=0)


def validate_direction(direction):
    if direction not in DIRECTIONS:
        raise ValueError(
            f"Unknown direction {direction!r}. Allowed values: {', '.join(DIRECTIONS)}."
        )
    return direction


@export
class FGSMPerturb(keras.layers.Layer):
    """Moves every embedding entry by `epsilon` along the sign of a gradient.

    `x' = x + epsilon * sign(grad)` (Eq. 2 of the paper). Directions:

    - "ascent" (default): along the gradient's sign, raising the loss
      (FGSM and AugPro-FGSM).
    - "descent": against it, lowering the loss (AugPro-FGSM_D, Table 6).
    - "random": random signs; the gradient is ignored (AugPro-FGSM_R).

    Every entry at a real token moves by exactly `+epsilon` or `-epsilon`:
    an entry whose gradient is exactly zero moves as if its sign were
    positive. Entries at padding positions are returned unchanged. The
    step is a constant of the output: `x' = x + stop_gradient(delta)`, so
    a gradient reaches `x` (and the table it was looked up from) unchanged
    and none reaches `epsilon`.

    Non-finite gradients: in eager mode a gradient with a NaN or infinite
    entry raises `ValueError` (it says how many and where the first is).
    Inside a `tf.function` (and under XLA) such entries do not move: their
    embedding entry is returned unchanged, so a NaN gradient never turns
    into a step of `epsilon` in an arbitrary direction.

    Boundary checks: `epsilon` must be a finite number >= 0 (constructor
    and call). `gradient` must have the shape of `embeddings` and
    `padding_mask` the shape of `embeddings` without its last axis (static
    shapes, checked when known; the error names both). A tensor `epsilon`
    given to `call` is checked eagerly, by an assertion inside a
    `tf.function`, and not at all under XLA, which drops assertions.

    Args:
        epsilon: step size, a finite number >= 0, in the units of the
            embedding table.
        direction: "ascent", "descent" or "random".
        seed: optional int seed for the "random" direction.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        embeddings: float tensor `[B, L, H]`.
        gradient: gradient of the loss with respect to `embeddings`, same
            shape (may be `None` for "random").
        padding_mask: optional bool tensor `[B, L]`, true at real tokens.
        epsilon: optional scalar overriding the layer's `epsilon` for this
            call (for example an epsilon relative to the table's scale).

    Example:
    ```python
    with tf.GradientTape() as tape:
        tape.watch(embeddings)
        loss = loss_fn(labels, model.call_from_embeddings(embeddings, mask))
    gradient = tape.gradient(loss, embeddings)
    perturb = augpro_keras.layers.FGSMPerturb(epsilon=0.01)
    adversarial = perturb(embeddings, gradient, mask)
    ```

    References:
        - [Goodfellow et al., 2015, "Explaining and Harnessing Adversarial
          Examples"](https://arxiv.org/abs/1412.6572)
        - [Wang et al., 2023, "Augmentation with Projection"](
          https://arxiv.org/abs/2210.11768)
    """

    def __init__(self, epsilon, direction="ascent", seed=None, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = validate_epsilon(epsilon)
        self.direction = validate_direction(direction)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, embeddings, gradient=None, padding_mask=None, epsilon=None):
        embeddings = ops.convert_to_tensor(embeddings)
        if gradient is not None:
            gradient = ops.convert_to_tensor(gradient)
            input_checks.check_shape(gradient.shape, embeddings.shape, "gradient", "the embeddings")
        if padding_mask is not None:
            padding_mask = ops.convert_to_tensor(padding_mask)
            check_padding_mask(padding_mask, embeddings)
        step = self.epsilon if epsilon is None else checked_epsilon(epsilon)
        if self.direction == "random":
            gradient = keras.random.uniform(ops.shape(embeddings), -1.0, 1.0, seed=self.seed_generator)
        elif gradient is None:
            raise ValueError(f"direction={self.direction!r} needs a `gradient`.")
        elif tf.executing_eagerly():
            raise_if_not_finite(gradient)
        direction = "descent" if self.direction == "descent" else "ascent"
        return fgsm_step(embeddings, gradient, step, direction, padding_mask)

    def compute_output_spec(self, embeddings, gradient=None, padding_mask=None, epsilon=None):
        return keras.KerasTensor(embeddings.shape, dtype=embeddings.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"epsilon": self.epsilon, "direction": self.direction, "seed": self.seed}
        )
        return config


def check_padding_mask(padding_mask, embeddings):
    """Static check: `padding_mask` has the shape of `embeddings` without its last axis."""
    shape = tf.TensorShape(embeddings.shape)
    expected = shape[:-1] if shape.rank is not None else tf.TensorShape(None)
    input_checks.check_shape(padding_mask.shape, expected, "padding_mask", "the embeddings' leading axes")


def checked_epsilon(epsilon):
    """A call-time epsilon: a Python number (validated) or a scalar tensor (checked)."""
    if not tf.is_tensor(epsilon) and not isinstance(epsilon, (np.ndarray, keras.KerasTensor)):
        return validate_epsilon(epsilon)
    epsilon = tf.convert_to_tensor(epsilon, "float32")
    if epsilon.shape.rank not in (None, 0):
        raise ValueError(f"`epsilon` must be a scalar. Received a tensor of shape {epsilon.shape}.")
    checks = input_checks.check_values(
        tf.logical_and(tf.math.is_finite(epsilon), epsilon >= 0),
        "`epsilon` must be a number >= 0 (not NaN or infinite).",
        () if tf.executing_eagerly() else ("received epsilon=", epsilon),
        lambda: f"Received epsilon={float(epsilon)!r}.",
    )
    return input_checks.with_checks(epsilon, checks)


def raise_if_not_finite(gradient):
    """Eager only: `ValueError` when `gradient` holds a NaN or infinite entry."""
    values = np.asarray(gradient)
    bad = ~np.isfinite(values)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"The gradient holds {int(bad.sum())} non-finite entries (of {values.size}; the "
            f"first at index {first} is {float(values[first])}). FGSM needs a finite gradient; "
            "a NaN gradient usually means the loss is already NaN."
        )


def fgsm_delta(embeddings, gradient, epsilon, direction="ascent", padding_mask=None):
    """The FGSM step `epsilon * s` (float32, shape of `embeddings`), `s = sign(gradient)`.

    Zeros count as +1, `s` is negated for "descent"; entries at padding
    positions and entries whose gradient is NaN or infinite get 0.
    """
    gradient = ops.cast(gradient, "float32")
    signs = ops.where(gradient >= 0, 1.0, -1.0)
    if direction == "descent":
        signs = -signs
    move = ops.isfinite(gradient)
    if padding_mask is not None:
        move = ops.logical_and(move, ops.cast(padding_mask, "bool")[..., None])
    return ops.where(move, ops.cast(epsilon, "float32") * signs, 0.0)


def fgsm_step(embeddings, gradient, epsilon, direction="ascent", padding_mask=None):
    """`embeddings + stop_gradient(delta)` with `delta = fgsm_delta(...)`.

    Padding positions and entries with a non-finite gradient are left
    unchanged. `epsilon` may be a Python number or a scalar tensor. The
    gradient with respect to `embeddings` passes through unchanged.
    """
    delta = fgsm_delta(embeddings, gradient, epsilon, direction, padding_mask)
    return embeddings + ops.stop_gradient(ops.cast(delta, embeddings.dtype))
