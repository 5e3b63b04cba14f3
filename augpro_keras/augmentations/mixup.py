"""MixUp (baseline), AugPro-Mix and TMix (baseline)."""

from augpro_keras.augmentations import base
from augpro_keras.augmentations.partners import draw_mix
from augpro_keras.augmentations.tokens import keep_special_tokens
from augpro_keras.augmentations.tokens import move_closing_token
from augpro_keras.layers.mixup_embedding import mix_with_partners, validate_lam_alpha
from keras import ops


class _Mixing(base.Augmentation):
    def __init__(self, lam=0.5, alpha=None, name=None, weight=1.0):
        super().__init__(name=name, weight=weight)
        validate_lam_alpha(lam, alpha)
        self.lam = float(lam)
        self.alpha = None if alpha is None else float(alpha)

    def get_config(self):
        return {**super().get_config(), "lam": self.lam, "alpha": self.alpha}

    def diagnostic_names(self):
        # MixUp and TMix run the teacher on the mixed batch: its confidence
        # and label flips there (see `StepContext.teacher_diagnostics`).
        return base.TEACHER_DIAGNOSTICS


@base.register
class MixUp(_Mixing):
    """MixUp of word embeddings, for teacher and student alike (baseline).

    `L_MixUp = CE(g_l(e^g_mix), y_mix) + d(g_l(e^g_mix), f_l(e^f_mix))`; the CE
    term only with labels. Teacher and student embeddings get the same
    partners and `lam`; segment ids follow the primary sentence.

    Args:
        lam: fixed MixUp weight (paper: 0.5).
        alpha: `None`, or draw `lam` per example from Beta(alpha, alpha).
        name: name in logs (default "mixup").
        weight: multiplier of the loss.

    Example:
    ```python
    Distiller(teacher, student, augmentations=[MixUp(lam=0.5)])
    ```
    """

    default_name = "mixup"

    def compute(self, context):
        partner_index, lam = draw_mix(context, self.lam, self.alpha)
        mask, segments = context.padding_mask, context.segment_ids

        def teacher_logits(training):
            mixed, mixed_mask = mix_with_partners(
                context.teacher_embeddings(), mask, partner_index, lam
            )
            return context.teacher.call_from_embeddings(mixed, mixed_mask, segments, training)

        teacher = context.teacher_forward(teacher_logits)
        mixed, mixed_mask = mix_with_partners(context.student_embeddings, mask, partner_index, lam)
        student = context.student.call_from_embeddings(mixed, mixed_mask, segments, training=True)
        return base.AugmentationOutput(
            loss=context.mixed_loss(student, teacher, partner_index, lam),
            diagnostics=context.teacher_diagnostics(teacher),
        )


@base.register
class AugProMix(_Mixing):
    """AugPro-Mix: MixUp of the teacher's embeddings projected to real tokens.

    The teacher's word embeddings are mixed with partners from the batch and
    each position is projected to the most similar token of the teacher's
    table (Eq. 5). The new sentences `x'` are labelled by the teacher:
    `L = d(g(x'), f(x'))` (Eq. 6), with no mixed label. Special tokens follow
    `keep_special_tokens`: the primary sentence's special tokens stay, the
    tail of a longer partner keeps its special tokens, padding stays padding.

    With `special_token_placement="end"`, the primary sentence's closing
    special token ([SEP] / eos) moves to the last position of the mixed
    sentence instead (`move_closing_token`), so a shorter primary sentence
    mixed with a longer partner ends with it rather than holding it in the
    middle: `[CLS] a b c [SEP] d e [SEP]` becomes `[CLS] a b c x d e [SEP]`.

    Logs `augpro_mix_token_change_rate`, and the teacher's confidence and
    label flips on the new sentences (`StepContext.teacher_diagnostics`).

    Args:
        lam: fixed MixUp weight (paper: 0.5).
        alpha: `None`, or draw `lam` per example from Beta(alpha, alpha).
        special_token_placement: "keep" (default: the primary sentence's
            special tokens stay where they are) or "end" (its closing
            special token moves to the end of the mixed length).
        name: name in logs (default "augpro_mix").
        weight: multiplier of the loss.

    References:
        - [Wang et al., 2023, "Augmentation with Projection"](
          https://arxiv.org/abs/2210.11768), Section 4.2.
    """

    default_name = "augpro_mix"
    produces_tokens = True
    PLACEMENTS = ("keep", "end")

    def __init__(self, lam=0.5, alpha=None, special_token_placement="keep", name=None, weight=1.0):
        super().__init__(lam=lam, alpha=alpha, name=name, weight=weight)
        if special_token_placement not in self.PLACEMENTS:
            raise ValueError(
                f"`special_token_placement` must be one of {', '.join(self.PLACEMENTS)}. "
                f"Received: special_token_placement={special_token_placement!r}"
            )
        self.special_token_placement = special_token_placement

    def get_config(self):
        return {**super().get_config(), "special_token_placement": self.special_token_placement}

    def compute(self, context):
        partner_index, lam = draw_mix(context, self.lam, self.alpha)
        mask = context.padding_mask
        mixed, mixed_mask = mix_with_partners(context.teacher_embeddings(), mask, partner_index, lam)
        projected = context.settings.project(mixed, context.teacher.embedding_matrix, mixed_mask)
        new_ids = keep_special_tokens(
            projected,
            mixed_mask,
            context.token_ids,
            mask,
            context.settings.special_token_ids,
            context.settings.pad_token_id,
            partner_ids=ops.take(context.token_ids, partner_index, axis=0),
            partner_mask=ops.take(mask, partner_index, axis=0),
        )
        if self.special_token_placement == "end":
            new_ids = move_closing_token(
                new_ids, projected, context.token_ids, mask, mixed_mask,
                context.settings.special_token_ids, context.settings.pad_token_id,
            )
        return context.distill_on_tokens(new_ids, mixed_mask)


@base.register
class TMix(_Mixing):
    """TMix: MixUp of hidden states at an inner layer of each model (baseline).

    Both models run to their mixing layer on the real batch, the hidden
    states are mixed with the same partners and `lam`, and both continue
    from there. The loss is `L_MixUp` on the resulting logits.

    Args:
        teacher_layer: number of teacher layers before mixing; `None` for the
            middle layer (paper: 12 of 24).
        student_layer: same for the student (paper: 4 of 8).
        lam, alpha, name ("tmix"), weight: as for `MixUp`.

    References:
        - [Chen et al., 2020, "MixText"](https://arxiv.org/abs/2004.12239)
    """

    default_name = "tmix"

    def __init__(self, teacher_layer=None, student_layer=None, lam=0.5, alpha=None, name=None, weight=1.0):
        super().__init__(lam=lam, alpha=alpha, name=name, weight=weight)
        self.teacher_layer = teacher_layer
        self.student_layer = student_layer

    def _layers(self, teacher, student):
        return (
            teacher.num_layers // 2 if self.teacher_layer is None else self.teacher_layer,
            student.num_layers // 2 if self.student_layer is None else self.student_layer,
        )

    def validate(self, teacher, student):
        for role, model, layer in zip(("teacher", "student"), (teacher, student), self._layers(teacher, student)):
            if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= model.num_layers:
                raise ValueError(
                    f"TMix {role}_layer must be an integer in [0, {model.num_layers}] "
                    f"(the {role} has {model.num_layers} layers). Received: {layer!r}"
                )

    def compute(self, context):
        teacher_layer, student_layer = self._layers(context.teacher, context.student)
        partner_index, lam = draw_mix(context, self.lam, self.alpha)
        mask, segments = context.padding_mask, context.segment_ids

        def teacher_logits(training):
            hidden = context.teacher.hidden_states_at(
                context.teacher_embeddings(), mask, segments, teacher_layer, training
            )
            mixed, mixed_mask = mix_with_partners(hidden, mask, partner_index, lam)
            return context.teacher.logits_from_hidden(mixed, mixed_mask, teacher_layer, training)

        teacher = context.teacher_forward(teacher_logits)
        hidden = context.student.hidden_states_at(
            context.student_embeddings, mask, segments, student_layer, training=True
        )
        mixed, mixed_mask = mix_with_partners(hidden, mask, partner_index, lam)
        student = context.student.logits_from_hidden(mixed, mixed_mask, student_layer, training=True)
        return base.AugmentationOutput(
            loss=context.mixed_loss(student, teacher, partner_index, lam),
            diagnostics=context.teacher_diagnostics(teacher),
        )

    def get_config(self):
        return {
            **super().get_config(),
            "teacher_layer": self.teacher_layer,
            "student_layer": self.student_layer,
        }
