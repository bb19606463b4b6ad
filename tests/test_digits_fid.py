"""The digits FID's plumbing on an untrained classifier (training it is the experiment's job):
the features and probabilities are the classifier's own, a set scored against its own
statistics is at distance 0, and a shifted set is not."""

import jax
import numpy as np
import pytest

from jdl.digits_fid import DigitJudge, feature_classifier, judge_outputs, score
from jdl.sample_metrics import gaussian_stats


@pytest.fixture(scope="module")
def judge_and_images():
    features, model = feature_classifier(16)
    images = np.random.default_rng(0).uniform(size=(40, 8, 8, 1)).astype(np.float32)
    params, state = model.init(jax.random.key(0), images[:1])
    judge = DigitJudge(model, features, params, state, 0.0, np.zeros(0), np.zeros(0))
    mu, cov = gaussian_stats(judge_outputs(judge, images)[0])
    return judge._replace(mu=mu, cov=cov), images


def test_outputs_are_the_classifiers(judge_and_images):
    judge, images = judge_and_images
    f, probs = judge_outputs(judge, images.reshape(40, 64), batch=16)  # flat input, three batches
    logits, _ = judge.model.apply(judge.params, judge.state, images)
    np.testing.assert_allclose(probs, jax.nn.softmax(logits), rtol=1e-5, atol=1e-7)
    assert f.shape == (40, 16) and (f >= 0).all()  # after the ReLU


def test_score_against_own_statistics_is_zero(judge_and_images):
    judge, images = judge_and_images
    s = score(judge, images)
    assert abs(s["fid"]) < 1e-6 and set(s) == {"fid", "confidence", "label_entropy"}
    assert score(judge, np.clip(images + 0.5, 0, 1))["fid"] > 1e-3


def test_wrong_image_shape(judge_and_images):
    with pytest.raises(ValueError, match=r"judge_outputs: images must have shape \(n, 8, 8, 1\) or \(n, 64\)"):
        judge_outputs(judge_and_images[0], np.zeros((3, 7, 7, 1)))
