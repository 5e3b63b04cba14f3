import math

import numpy as np
import pytest

from augpro_keras import metrics


def test_accuracy_and_f1_by_hand():
    assert metrics.accuracy([1, 0, 1], [1, 1, 1]) == pytest.approx(2 / 3)
    # tp=1, fp=1, fn=1: precision = recall = 0.5.
    assert metrics.f1([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.5)
    # tp=2, fp=1, fn=0: precision 2/3, recall 1, F1 = 0.8.
    assert metrics.f1([1, 1, 1, 0], [1, 1, 0, 0]) == pytest.approx(0.8)
    assert metrics.f1([0, 0], [1, 0]) == 0.0


def test_matthews_by_hand():
    # tp=1, fp=1, tn=2, fn=0: (1*2 - 1*0) / sqrt(2*1*3*2).
    expected = 2 / math.sqrt(12)
    assert metrics.matthews_corrcoef([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(expected)
    assert metrics.matthews_corrcoef([1, 0, 1], [1, 0, 1]) == pytest.approx(1.0)
    assert metrics.matthews_corrcoef([0, 1, 0], [1, 0, 1]) == pytest.approx(-1.0)
    assert metrics.matthews_corrcoef([1, 1, 1], [1, 0, 1]) == 0.0


def test_correlations_by_hand():
    # Centred x: -1, 0, 1; centred y: -7/3, -1/3, 8/3.
    expected = 5 / math.sqrt(2 * 114 / 9)
    assert metrics.pearson([1.0, 2.0, 3.0], [2.0, 4.0, 7.0]) == pytest.approx(expected)
    # Ranks with ties: x -> 1, 2.5, 2.5, 4; y -> 1, 3, 2, 4.
    expected = 4.5 / math.sqrt(22.5)
    assert metrics.spearman([1.0, 2.0, 2.0, 5.0], [1.0, 3.0, 2.0, 4.0]) == pytest.approx(expected)
    np.testing.assert_array_equal(metrics.rank_average([10, 20, 20, 5]), [2, 3.5, 3.5, 1])
    assert math.isnan(metrics.pearson([1.0, 1.0], [1.0, 2.0]))


def test_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, 200).astype(float)  # Many ties.
    y = x + rng.normal(size=200)
    assert metrics.pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert metrics.spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    np.testing.assert_allclose(metrics.rank_average(x), stats.rankdata(x))


def test_against_sklearn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 2, 100), rng.integers(0, 2, 100)
    assert metrics.f1(p, y) == pytest.approx(sklearn_metrics.f1_score(y, p))
    assert metrics.matthews_corrcoef(p, y) == pytest.approx(sklearn_metrics.matthews_corrcoef(y, p))


def test_glue_metrics_per_task():
    logits = np.array([[2.0, -1.0], [0.1, 0.3], [0.0, 1.0], [1.0, 0.0]])
    labels = [0, 1, 0, 0]
    assert metrics.glue_metrics("SST-2", logits, labels) == {"accuracy": 0.75}
    mrpc = metrics.glue_metrics("mrpc", logits, labels)
    assert mrpc == {"accuracy": 0.75, "f1": pytest.approx(2 / 3)}
    assert set(metrics.glue_metrics("qqp", [0, 1, 1, 0], labels)) == {"accuracy", "f1"}
    cola = metrics.glue_metrics("cola", [1, 1, 0, 0], [1, 0, 0, 0])
    assert cola == {"matthews_corrcoef": pytest.approx(2 / math.sqrt(12))}
    mnli = metrics.glue_metrics("mnli", np.eye(3)[[0, 1, 2, 2]], [0, 1, 2, 0])
    assert mnli == {"accuracy": 0.75}
    for task in ("qnli", "rte"):
        assert set(metrics.glue_metrics(task, [0, 1], [0, 1])) == {"accuracy"}
    stsb = metrics.glue_metrics("STS-B", np.array([[1.0], [2.0], [3.0]]), [2.0, 4.0, 7.0])
    assert stsb["pearson"] == pytest.approx(5 / math.sqrt(2 * 114 / 9))
    assert stsb["spearman"] == pytest.approx(1.0)


def test_input_validation():
    with pytest.raises(ValueError, match="same non-zero length"):
        metrics.accuracy([1, 0], [1])
    with pytest.raises(ValueError, match="1-D"):
        metrics.pearson(np.ones((2, 2)), [1.0, 2.0])
    with pytest.raises(ValueError, match="class ids"):
        metrics.glue_metrics("rte", [0.2, 0.7], [0, 1])
    with pytest.raises(ValueError, match=r"\[N, 1\]"):
        metrics.glue_metrics("stsb", np.ones((2, 2)), [0.0, 1.0])
    with pytest.raises(ValueError, match="Unknown GLUE task"):
        metrics.glue_metrics("squad", [0], [0])
