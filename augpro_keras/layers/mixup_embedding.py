"""MixUp of a batch of embeddings with partners from the same batch."""

import keras
from keras import ops

from augpro_keras.api_export import export


def validate_lam_alpha(lam, alpha):
    """Checks MixUp's `lam` and `alpha`; shared with the Distiller's augmentations."""
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0.0 <= lam <= 1.0:
        raise ValueError(f"`lam` must be a number in [0, 1]. Received: lam={lam!r}")
    if alpha is not None and (
        isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0
    ):
        raise ValueError(
            f"`alpha` must be None (fixed lam) or a number > 0. Received: alpha={alpha!r}"
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
    `partner_index` and `lam` to both calls.

    Args:
        lam: weight of the row's own sequence, in [0, 1]. The paper uses 0.5.
        alpha: `None` (use `lam`) or the parameter > 0 of the symmetric Beta
            distribution from which a weight is drawn per row.
        seed: optional int seed of the layer's random draws.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        embeddings: float tensor `[B, L, H]` (or `[B, ...]`).
        padding_mask: bool tensor `[B, L]`, true at real tokens.
        partner_index: optional int tensor `[B]`; drawn when omitted.
        lam: optional float tensor `[B]`; drawn when omitted.

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
        if (partner_index is None) != (lam is None):
            raise ValueError(
                "Pass both `partner_index` and `lam` (to repeat a mix) or neither "
                "(to draw a new one)."
            )
        if partner_index is None:
            partner_index, lam = self.sample_mix(ops.shape(embeddings)[0])
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


def mix_with_partners(values, padding_mask, partner_index, lam):
    """`lam * values + (1 - lam) * values[partner_index]` and the mixed mask."""
    lam = ops.cast(lam, "float32")
    weight = ops.reshape(lam, (-1,) + (1,) * (len(values.shape) - 1))
    weight = ops.cast(weight, values.dtype)
    partner_values = ops.take(values, partner_index, axis=0)
    mixed = weight * values + (1 - weight) * partner_values
    padding_mask = ops.cast(padding_mask, "bool")
    own = ops.logical_and(padding_mask, (lam > 0)[:, None])
    partner = ops.logical_and(ops.take(padding_mask, partner_index, axis=0), (lam < 1)[:, None])
    return mixed, ops.logical_or(own, partner)
