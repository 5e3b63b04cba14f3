"""The protocol through which the `Distiller` reaches a teacher or a student.

AugPro splits every classifier `f` into `f = f_l o f_e`: an embedding lookup
`f_e` (token ids to word embeddings) and the rest `f_l`. Augmentations work on
word embeddings, so a model must be runnable from token ids *and* from word
embeddings. TMix also needs the hidden states at an inner layer and a way to
continue from them.

A model takes the input dict that keras-hub's text classifiers take:
`{"token_ids": int [B, L], "padding_mask": bool/int [B, L]}` plus an optional
`"segment_ids": int [B, L]` for sentence pairs.
"""

import keras
from keras import ops

from augpro_keras.api_export import export
from augpro_keras.replicas import first_replica_build_arguments


class EmbeddingTableSizes:
    """`vocabulary_size` and `embedding_dim`, read from a model's `embedding_matrix`."""

    @property
    def vocabulary_size(self):
        return int(self.embedding_matrix.shape[0])

    @property
    def embedding_dim(self):
        return int(self.embedding_matrix.shape[1])


@export
class DistillableClassifier(EmbeddingTableSizes, keras.Model):
    """Base class of every model the `Distiller` can train or distill from.

    A subclass implements five things:

    - `embed_tokens(token_ids)`: the word-embedding lookup `f_e`, returning
      `[B, L, H]` (no position or segment embeddings added).
    - `hidden_states_at(embeddings, padding_mask, segment_ids, layer, training)`:
      runs from word embeddings through the first `layer` transformer layers
      and returns the hidden states `[B, L, H']`. `layer=0` gives the input of
      the first transformer layer (embeddings after position/segment
      embeddings, normalisation and dropout).
    - `logits_from_hidden(hidden, padding_mask, layer, training)`: continues
      from the hidden states after `layer` transformer layers to the logits
      `[B, num_classes]`.
    - `embedding_matrix`: the word-embedding table `[V, H]` used by `f_e`.
    - `special_token_ids` (tuple of ints, includes `pad_token_id`),
      `pad_token_id` and `num_layers`.

    From these the base class derives `call_from_embeddings` (that is `f_l`)
    and `call` (that is `f`). Running from `embed_tokens(token_ids)` must give
    exactly what `call(inputs)` gives.

    Example:
    ```python
    model = augpro_keras.models.TinyTransformerClassifier(
        vocabulary_size=100, num_classes=2)
    inputs = {"token_ids": token_ids, "padding_mask": token_ids != 0}
    logits = model(inputs)
    same = model.call_from_embeddings(
        model.embed_tokens(inputs["token_ids"]), inputs["padding_mask"])
    ```
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # `model.fit` under a multi-replica strategy with boolean padding
        # masks: build from the first replica's batch (see `replicas`).
        iterator, data_batch = first_replica_build_arguments(self, iterator, data_batch)
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    # --- to implement -----------------------------------------------------
    def embed_tokens(self, token_ids):
        raise NotImplementedError(f"{type(self).__name__} must implement embed_tokens().")

    def hidden_states_at(
        self, embeddings, padding_mask, segment_ids=None, layer=0, training=False
    ):
        raise NotImplementedError(f"{type(self).__name__} must implement hidden_states_at().")

    def logits_from_hidden(self, hidden, padding_mask, layer=0, training=False):
        raise NotImplementedError(
            f"{type(self).__name__} must implement logits_from_hidden()."
        )

    @property
    def embedding_matrix(self):
        raise NotImplementedError(f"{type(self).__name__} must define embedding_matrix.")

    # Models that keep their constructor arguments in `self.config_values`
    # (every model in this package) get these three from there.
    @property
    def special_token_ids(self):
        return tuple(self._config_value("special_token_ids"))

    @property
    def pad_token_id(self):
        return self._config_value("pad_token_id")

    @property
    def num_classes(self):
        return self._config_value("num_classes")

    def _config_value(self, key):
        values = getattr(self, "config_values", None)
        if not values or key not in values:
            raise NotImplementedError(
                f"{type(self).__name__} must define `{key}` (or keep it in `self.config_values`)."
            )
        return values[key]

    @property
    def num_layers(self):
        raise NotImplementedError(f"{type(self).__name__} must define num_layers.")

    # --- derived ----------------------------------------------------------
    def _check_layer(self, layer):
        """Raises a `ValueError` unless `0 <= layer <= num_layers`."""
        if not 0 <= layer <= self.num_layers:
            raise ValueError(
                f"`layer` must be in [0, {self.num_layers}] for this model. Received: {layer}"
            )

    def call_from_embeddings(
        self, embeddings, padding_mask, segment_ids=None, training=False
    ):
        """`f_l`: logits from word embeddings `[B, L, H]`."""
        hidden = self.hidden_states_at(
            embeddings, padding_mask, segment_ids, layer=0, training=training
        )
        return self.logits_from_hidden(hidden, padding_mask, layer=0, training=training)

    def call(self, inputs, training=False):
        token_ids, padding_mask, segment_ids = unpack_inputs(inputs)
        return self.call_from_embeddings(
            self.embed_tokens(token_ids), padding_mask, segment_ids, training=training
        )


def unpack_inputs(inputs, pad_token_id=None):
    """Returns `(token_ids, padding_mask, segment_ids or None)` from an input dict.

    Without a `"padding_mask"` (F-Net and RoFormerV2 preprocessors give
    none) the mask is `token_ids != pad_token_id`, or all ones when no
    padding id is given.
    """
    if not isinstance(inputs, dict) or "token_ids" not in inputs:
        raise ValueError(
            "Expected inputs as a dict with keys 'token_ids', 'padding_mask' and "
            f"optionally 'segment_ids'. Received: {type(inputs).__name__}"
            + (f" with keys {sorted(inputs)}" if isinstance(inputs, dict) else "")
        )
    token_ids = inputs["token_ids"]
    padding_mask = inputs.get("padding_mask")
    if padding_mask is None:
        padding_mask = (
            ops.ones_like(token_ids, dtype="bool")
            if pad_token_id is None
            else ops.not_equal(token_ids, pad_token_id)
        )
    return token_ids, padding_mask, inputs.get("segment_ids")


def as_distillable(model, role="model", special_token_ids=None, pad_token_id=None):
    """`model` through the `DistillableClassifier` protocol.

    A `DistillableClassifier` is returned as it is; a keras-hub
    `TextClassifier` is wrapped in a `TextClassifierAdapter`, which runs the
    task's own layers.

    Args:
        model: a `DistillableClassifier` or a `keras_hub.models.TextClassifier`.
        role: "teacher", "student" or "model", for error messages.
        special_token_ids, pad_token_id: for a keras-hub task, the ids its
            projections avoid and its padding id; `None` reads them from the
            task's tokenizer. A `DistillableClassifier` has its own.
    """
    if isinstance(model, DistillableClassifier):
        return model
    import keras_hub  # Deferred: importing keras-hub takes seconds.

    if isinstance(model, keras_hub.models.TextClassifier):
        from augpro_keras.models.text_classifier_adapter import TextClassifierAdapter

        return TextClassifierAdapter(model, special_token_ids, pad_token_id)
    raise ValueError(
        f"The {role} ({type(model).__name__}) is no `keras_hub.models.TextClassifier` "
        "(BertTextClassifier, DistilBertTextClassifier, RobertaTextClassifier, ...) and "
        "does not implement the DistillableClassifier protocol (`embed_tokens`, "
        "`hidden_states_at`, `logits_from_hidden`, `embedding_matrix`, ...). Use a keras-hub "
        "text classifier, or subclass `augpro_keras.models.DistillableClassifier`."
    )


def _has_vocabulary(tokenizer):
    # A tokenizer being loaded from a `.keras` file gets its vocabulary
    # (an asset) after the models that hold it are built.
    try:
        tokenizer.get_vocabulary()
    except ValueError:
        return False
    return True


def tokenizer_of(model):
    """The tokenizer of a model's preprocessor, or `None`."""
    return getattr(getattr(model, "preprocessor", None), "tokenizer", None)


def check_shared_vocabulary(teacher, student, teacher_view, student_view):
    """Raises a `ValueError` unless teacher and student share one vocabulary.

    With a tokenizer on both sides (keras-hub tasks with preprocessors) the
    vocabularies are compared token by token and the message names both
    tokenizers and the first differing token; otherwise the embedding
    tables' sizes and the padding ids are compared.
    """
    tokenizers = tokenizer_of(teacher), tokenizer_of(student)
    if all(t is not None and _has_vocabulary(t) for t in tokenizers):
        vocabularies = [list(t.get_vocabulary()) for t in tokenizers]
        names = [f"{type(t).__name__} of the {role}" for t, role in zip(tokenizers, ("teacher", "student"))]
        if vocabularies[0] != vocabularies[1]:
            first = next(
                (i for i, (a, b) in enumerate(zip(*vocabularies)) if a != b),
                min(len(v) for v in vocabularies),
            )
            shown = [repr(v[first]) if first < len(v) else "(none)" for v in vocabularies]
            raise ValueError(
                "Teacher and student must share one vocabulary (projections map the teacher's "
                f"tokens to the student's by id). The {names[0]} ({len(vocabularies[0])} tokens) "
                f"and the {names[1]} ({len(vocabularies[1])} tokens) differ first at id "
                f"{first}: {shown[0]} against {shown[1]}."
            )
    if teacher_view.vocabulary_size != student_view.vocabulary_size:
        raise ValueError(
            "Teacher and student must share one vocabulary (the same tokenizer): the "
            f"teacher's has {teacher_view.vocabulary_size} tokens, the student's has "
            f"{student_view.vocabulary_size}."
        )
    if teacher_view.pad_token_id != student_view.pad_token_id:
        raise ValueError(
            f"Teacher and student use different padding ids ({teacher_view.pad_token_id} "
            f"and {student_view.pad_token_id}); they must share one tokenizer."
        )
