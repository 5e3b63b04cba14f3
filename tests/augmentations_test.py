import types

import numpy as np
import pytest
import tensorflow as tf

from augpro_keras import Distiller
from augpro_keras import augmentations as aug
from augpro_keras.augmentations.partners import draw_mix
from augpro_keras.augmentations.tokens import keep_special_tokens
from augpro_keras.layers import similarity
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
    distiller = types.SimpleNamespace(mix_group_size=group_size)
    groups = batch_size // (group_size or batch_size)
    return aug.StepContext(
        distiller=distiller, token_ids=tf.zeros((batch_size, 3), "int32"), padding_mask=None,
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
