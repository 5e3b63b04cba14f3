"""Fast Gradient Sign Method perturbation of embeddings."""

import keras
from keras import ops

from augpro_keras.api_export import export

DIRECTIONS = ("ascent", "descent", "random")


def validate_epsilon(epsilon, name="epsilon"):
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or epsilon < 0:
        raise ValueError(f"`{name}` must be a number >= 0. Received: {name}={epsilon!r}")
    return float(epsilon)


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
    positive. Entries at padding positions are returned unchanged.

    Args:
        epsilon: step size >= 0, in the units of the embedding table.
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
        if self.direction == "random":
            gradient = keras.random.uniform(ops.shape(embeddings), -1.0, 1.0, seed=self.seed_generator)
        elif gradient is None:
            raise ValueError(f"direction={self.direction!r} needs a `gradient`.")
        step = self.epsilon if epsilon is None else epsilon
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


def fgsm_step(embeddings, gradient, epsilon, direction="ascent", padding_mask=None):
    """`embeddings + epsilon * s`, `s = sign(gradient)` (zeros count as +1), negated for "descent".

    Padding positions are left unchanged. `epsilon` may be a Python number
    or a scalar tensor.
    """
    signs = ops.where(ops.cast(gradient, "float32") >= 0, 1.0, -1.0)
    if direction == "descent":
        signs = -signs
    delta = ops.cast(epsilon, "float32") * signs
    if padding_mask is not None:
        delta = delta * ops.cast(padding_mask, "float32")[..., None]
    return embeddings + ops.cast(delta, embeddings.dtype)
