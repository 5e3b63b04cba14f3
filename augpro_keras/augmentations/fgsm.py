"""FGSM (baseline) and AugPro-FGSM with its sign variants."""

import tensorflow as tf
from keras import ops

from augpro_keras.augmentations import base
from augpro_keras.augmentations.tokens import keep_special_tokens
from augpro_keras.layers.fgsm_perturb import fgsm_delta, validate_direction, validate_epsilon

#: `AugProFGSM`'s default `relative_epsilon`, chosen on the SST-2 dev set
#: (docs/results.md, the step's sweep: 2.5, 3.0 and 3.5 over three paired
#: seeds). While MiniLM-L6 students distil, 3.0 changes about 20% of the real
#: tokens and the teacher labels 46% of the new sentences differently from
#: their clean ones; 3.5 changes 34% and flips 59% (most of them), 2.5
#: changes 7%. See docs/method.md, "epsilon".
AUGPRO_FGSM_DEFAULT_RELATIVE_EPSILON = 3.0


class _Gradient(base.Augmentation):
    """Shared by FGSM and AugPro-FGSM: the perturbed student embeddings.

    The step size is either `epsilon`, in the units of the embedding table,
    or `relative_epsilon` times the standard deviation of the entries of the
    student's embedding table (recomputed every step). Give exactly one.
    """

    needs_clean_gradient = True

    def __init__(self, epsilon=None, relative_epsilon=None, direction="ascent", name=None, weight=1.0):
        super().__init__(name=name, weight=weight)
        if (epsilon is None) == (relative_epsilon is None):
            raise ValueError(
                f"{type(self).__name__} needs exactly one of `epsilon` (absolute, in the "
                "units of the embedding table) and `relative_epsilon` (a multiple of the "
                f"table's standard deviation). Received: epsilon={epsilon!r}, "
                f"relative_epsilon={relative_epsilon!r}"
            )
        self.epsilon = None if epsilon is None else validate_epsilon(epsilon)
        self.relative_epsilon = (
            None if relative_epsilon is None else validate_epsilon(relative_epsilon, "relative_epsilon")
        )
        self.direction = validate_direction(direction)

    def step_size(self, embedding_matrix):
        """The step: `epsilon`, or `relative_epsilon * std(table)` (a constant: no gradient)."""
        if self.epsilon is not None:
            return self.epsilon
        table = ops.stop_gradient(ops.cast(embedding_matrix, "float32"))
        return self.relative_epsilon * ops.std(table)

    def perturbation(self, context):
        """The FGSM step `delta` on the student's embeddings, a constant (no gradient).

        Padding positions and entries whose clean gradient is not finite
        get 0 (see `fgsm_delta`).
        """
        embeddings = context.student_embeddings
        gradient = context.clean_gradient
        direction = self.direction
        if direction == "random":
            gradient = tf.random.stateless_uniform(ops.shape(embeddings), seed=context.seed(), minval=-1.0)
            direction = "ascent"
        epsilon = self.step_size(context.student.embedding_matrix)
        delta = fgsm_delta(embeddings, gradient, epsilon, direction, context.padding_mask)
        return ops.stop_gradient(ops.cast(delta, embeddings.dtype))

    def get_config(self):
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "relative_epsilon": self.relative_epsilon,
            "direction": self.direction,
        }


@base.register
class FGSM(_Gradient):
    """FGSM on the student's word embeddings (baseline).

    `e' = e + epsilon * sign(grad_e L_KD)` on the student's embeddings and
    `L_FGSM = d(g_l(e'), f_l(e^f))`: the teacher sees the clean sentence.
    The step is a constant, `e' = e + stop_gradient(delta)`, so `L_FGSM`
    trains the student's embedding table through `e` as well as the rest
    of the student (the paper's notation; adversarial training does the
    same). Entries whose clean gradient is NaN or infinite do not move.

    Args:
        epsilon: absolute step size, or
        relative_epsilon: step size as a multiple of the standard deviation of
            the student's embedding table (default 0.1 when neither is given).
        direction: "ascent" (default), "descent" or "random".
        name: name in logs (default "fgsm").
        weight: multiplier of the loss.
    """

    default_name = "fgsm"

    def __init__(self, epsilon=None, relative_epsilon=None, direction="ascent", name=None, weight=1.0):
        if epsilon is None and relative_epsilon is None:
            relative_epsilon = 0.1
        super().__init__(epsilon, relative_epsilon, direction, name, weight)

    def compute(self, context):
        # e + stop_gradient(delta): L_FGSM reaches the student's embedding
        # table through e, as in the paper's notation and common practice.
        perturbed = context.student_embeddings + self.perturbation(context)
        student = context.student.call_from_embeddings(
            perturbed, context.padding_mask, context.segment_ids, training=True
        )
        return base.AugmentationOutput(loss=context.distance(student, context.teacher_logits))


@base.register
class AugProFGSM(_Gradient):
    """AugPro-FGSM: a large FGSM step on the student's embeddings, projected to tokens.

    The perturbed student embeddings are projected to the most similar
    tokens of the student's table; the new sentences are labelled by the
    teacher: `L = d(g(x'), f(x'))` (Eq. 7). Special tokens and padding keep
    their ids. The paper uses epsilon = 35 for T5 1.1 embeddings; for tables
    with small entries (BERT family) use `relative_epsilon` and watch the
    logged `<name>_token_change_rate` (`callbacks.TokenChangeRateMonitor`
    warns when it stays near 0, i.e. when the augmented batch is the clean
    one). The default `relative_epsilon=3.0` changes about 20% of the real
    positions of SST-2 batches while a student distils from MiniLM-L6 (BERT
    uncased); 1.0 changes none of them and 3.5 about a third, whose teacher
    labels then mostly differ from the clean sentence's.

    Args:
        epsilon: absolute step size, or
        relative_epsilon: step size as a multiple of the standard deviation of
            the student's embedding table (default 3.0 when neither is given).
        direction: "ascent" (default, AugPro-FGSM), "descent"
            (AugPro-FGSM_D) or "random" (AugPro-FGSM_R), paper Table 6.
        name: name in logs (default "augpro_fgsm").
        weight: multiplier of the loss.

    References:
        - [Wang et al., 2023, "Augmentation with Projection"](
          https://arxiv.org/abs/2210.11768), Section 4.2 and Table 4.
    """

    default_name = "augpro_fgsm"
    produces_tokens = True

    def __init__(self, epsilon=None, relative_epsilon=None, direction="ascent", name=None, weight=1.0):
        if epsilon is None and relative_epsilon is None:
            relative_epsilon = AUGPRO_FGSM_DEFAULT_RELATIVE_EPSILON
        super().__init__(epsilon, relative_epsilon, direction, name, weight)

    def compute(self, context):
        # Projected ids carry no gradient, so nothing needs to flow through e.
        perturbed = ops.stop_gradient(context.student_embeddings + self.perturbation(context))
        mask = context.padding_mask
        projected = context.settings.project(perturbed, context.student.embedding_matrix, mask)
        new_ids = keep_special_tokens(
            projected, mask, context.token_ids, mask,
            context.settings.special_token_ids, context.settings.pad_token_id,
        )
        return context.distill_on_tokens(new_ids, mask)
