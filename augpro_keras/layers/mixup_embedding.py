"""MixUp of a batch of embeddings with partners from the same batch."""

import math
import numbers

import keras
import tensorflow as tf
from keras import ops

from augpro_keras import input_checks
from augpro_keras.api_export import export


def validate_lam_alpha(lam, alpha):
    """Checks MixUp's `lam` and `alpha`; shared with the Distiller's augmentations."""
    input_checks.validate_number(lam, "lam", minimum=0, maximum=1)
    if alpha is not None and (
        isinstance(alpha, bool)
        or not isinstance(alpha, numbers.Real)
        or not math.isfinite(float(alpha))
        or alpha <= 0
    ):
        raise ValueError(
            f"`alpha` must be None (fixed lam) or a number > 0 (not NaN or infinite). Received: alpha={alpha!r}"
        )


@export
class MixUpEmbedding(keras.layers.Layer):
    """Mixes each sequence of embeddings with a partner from the same batch.

    Row `i` becomes `lam_i * x_i + (1 - lam_i) * x_{partner_i}` (Eq. 1 of the
    paper applied to embeddings). Partners are a random permutation of the
    batch. `lam` is fixed, or drawn per row from Beta(alpha, alpha) when
    `alpha` is given.

    The mixed padding mask is true where a sentence with a non-zero weight
    has a real token: the union of the two masks for `0 < lam < 1`, the
    row's own mask for `lam = 1` (so `lam = 1` gives the input back) and the
    partner's mask for `lam = 0`.

    To give a second tensor the same mix (the teacher's and the student's
    embeddings in distillation), draw the mix once with `sample_mix` and pass
    `partner_index` and `lam` to both calls. With a fixed `lam` (no
    `alpha`), `partner_index` alone is enough: the layer's own `lam`
    applies. With `alpha`, a call that gives `partner_index` must give the
    drawn `lam` too; `lam` without `partner_index` is refused.

    Boundary checks (`ValueError` naming what was given): `padding_mask`
    must have the shape `[B, L]` of the embeddings' leading axes,
    `partner_index` and `lam` the shape `[B]` (static shapes, checked when
    known); `lam` must be in [0, 1] (no extrapolation) and `partner_index`
    in `[0, B)` (no wrap-around of -1 to the last row). The value checks
    run at once in eager mode and as `tf.debugging.Assert` ops inside a
    `tf.function` (`tf.errors.InvalidArgumentError` when the graph runs);
    under XLA (`jit_compile=True`, TPU), which drops assertions, they are
    not built and out-of-range values are not caught.

    Args:
        lam: weight of the row's own sequence, in [0, 1]. The paper uses 0.5.
        alpha: `None` (use `lam`) or the parameter > 0 of the symmetric Beta
            distribution from which a weight is drawn per row.
        seed: optional int seed of the layer's random draws.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        embeddings: float tensor `[B, L, H]` (or `[B, ...]`).
        padding_mask: bool tensor `[B, L]`, true at real tokens.
        partner_index: optional int tensor `[B]` of rows in `[0, B)`; drawn
            when omitted.
        lam: optional float tensor `[B]` in [0, 1]; the layer's `lam` (fixed)
            or drawn (`alpha`) when omitted.

    Returns:
        `(mixed_embeddings, mixed_padding_mask)`.

    Example:
    ```python
    mix = augpro_keras.layers.MixUpEmbedding(lam=0.5, seed=1)
    partner_index, lam = mix.sample_mix(batch_size=4)
    teacher_mixed, mask = mix(teacher_embeddings, padding_mask, partner_index, lam)
    student_mixed, _ = mix(student_embeddings, padding_mask, partner_index, lam)
    ```

    References:
        - [Zhang et al., 2018, "mixup: Beyond Empirical Risk Minimization"](
          https://arxiv.org/abs/1710.09412)
        - [Wang et al., 2023, "Augmentation with Projection"](
          https://arxiv.org/abs/2210.11768)
    """

    def __init__(self, lam=0.5, alpha=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        validate_lam_alpha(lam, alpha)
        self.lam = float(lam)
        self.alpha = None if alpha is None else float(alpha)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def sample_mix(self, batch_size):
        """Draws `(partner_index [B] int32, lam [B] float32)` for one batch."""
        partner_index = keras.random.shuffle(
            ops.arange(batch_size, dtype="int32"), seed=self.seed_generator
        )
        if self.alpha is None:
            lam = ops.full((batch_size,), self.lam, dtype="float32")
        else:
            lam = keras.random.beta(
                (batch_size,), self.alpha, self.alpha, seed=self.seed_generator
            )
        return partner_index, lam

    def call(self, embeddings, padding_mask, partner_index=None, lam=None):
        if partner_index is None and lam is not None:
            raise ValueError(
                "`lam` was given without `partner_index`. Pass both (to repeat a mix from "
                "`sample_mix`), `partner_index` alone (fixed lam), or neither (to draw a new mix)."
            )
        if partner_index is not None and lam is None and self.alpha is not None:
            raise ValueError(
                f"This layer draws lam from Beta({self.alpha}, {self.alpha}): pass both "
                "`partner_index` and `lam` (from `sample_mix`) to repeat a mix, or neither."
            )
        embeddings = ops.convert_to_tensor(embeddings)
        padding_mask = ops.convert_to_tensor(padding_mask)
        batch_size = embeddings.shape[0]
        if batch_size is None:
            batch_size = ops.shape(embeddings)[0]
        if partner_index is None:
            partner_index, lam = self.sample_mix(batch_size)
            return mix_with_partners(embeddings, padding_mask, partner_index, lam)
        partner_index = ops.convert_to_tensor(partner_index)
        if lam is None:
            lam = ops.full((batch_size,), self.lam, dtype="float32")
        lam = ops.convert_to_tensor(lam)
        check_mix_shapes(embeddings, padding_mask, partner_index, lam)
        partner_index, lam = checked_mix(partner_index, lam, ops.shape(embeddings)[0])
        return mix_with_partners(embeddings, padding_mask, partner_index, lam)

    def compute_output_spec(self, embeddings, padding_mask, partner_index=None, lam=None):
        return (
            keras.KerasTensor(embeddings.shape, dtype=embeddings.dtype),
            keras.KerasTensor(padding_mask.shape, dtype="bool"),
        )

    def get_config(self):
        config = super().get_config()
        config.update({"lam": self.lam, "alpha": self.alpha, "seed": self.seed})
        return config


def check_mix_shapes(values, padding_mask, partner_index, lam):
    """Static checks: mask `[B, L]`, partner index `[B]` and lam `[B]` for values `[B, L, ...]`.

    Unknown dimensions pass; the error names both shapes.
    """
    shape = tf.TensorShape(values.shape)
    if shape.rank is not None and shape.rank < 2:
        raise ValueError(f"The values to mix must have shape [B, L, ...]; received {shape}.")
    leading = shape[:2] if shape.rank is not None else tf.TensorShape([None, None])
    input_checks.check_shape(padding_mask.shape, leading, "padding_mask", "the embeddings' [B, L]")
    input_checks.check_shape(partner_index.shape, leading[:1], "partner_index", "the batch size")
    input_checks.check_shape(lam.shape, leading[:1], "lam", "the batch size")
    if not tf.as_dtype(partner_index.dtype).is_integer:
        raise ValueError(
            f"`partner_index` must hold integer row indices. Received dtype {partner_index.dtype}."
        )


def checked_mix(partner_index, lam, batch_size):
    """`(partner_index, lam)` checked: lam in [0, 1], partner indices in `[0, batch_size)`.

    Eager: `ValueError` at once. Graph: the results depend on assertions.
    XLA: unchecked (XLA drops assertions). See `augpro_keras.input_checks`.
    """
    lam = tf.cast(lam, "float32")
    partner_index = tf.cast(partner_index, "int32")
    lam = input_checks.with_checks(lam, input_checks.check_in_range(lam, 0, 1, "lam"))
    partner_index = input_checks.with_checks(
        partner_index,
        input_checks.check_in_range(
            partner_index, 0, batch_size, "partner_index", high_exclusive=True,
            allowed=f"row indices in [0, {batch_size}) (the batch size)"
            if isinstance(batch_size, int) else "row indices in [0, batch size)",
        ),
    )
    return partner_index, lam


def mix_with_partners(values, padding_mask, partner_index, lam):
    """`lam * values + (1 - lam) * values[partner_index]` and the mixed mask.

    Shapes are checked statically (`check_mix_shapes`); values are not (the
    Distiller draws them; the layer's `call` checks what users pass).
    """
    values = ops.convert_to_tensor(values)
    check_mix_shapes(values, ops.convert_to_tensor(padding_mask), ops.convert_to_tensor(partner_index),
                     ops.convert_to_tensor(lam))
    lam = ops.cast(lam, "float32")
    weight = ops.reshape(lam, (-1,) + (1,) * (len(values.shape) - 1))
    weight = ops.cast(weight, values.dtype)
    partner_values = ops.take(values, partner_index, axis=0)
    mixed = weight * values + (1 - weight) * partner_values
    padding_mask = ops.cast(padding_mask, "bool")
    own = ops.logical_and(padding_mask, (lam > 0)[:, None])
    partner = ops.logical_and(ops.take(padding_mask, partner_index, axis=0), (lam < 1)[:, None])
    return mixed, ops.logical_or(own, partner)
