"""The autoscaler's arithmetic: Kubernetes' HPA rule, clamped to the pool, with a scale-down window."""

from sandbox.control.autoscaler import _History, wanted_replicas


def test_wanted_replicas_follows_usage_within_the_pool() -> None:
    assert wanted_replicas(1, 150.0, 50, 1, 3) == 3
    assert wanted_replicas(1, 500.0, 50, 1, 3) == 3  # capped at maxReplica
    assert wanted_replicas(3, 1.0, 50, 1, 3) == 1
    assert wanted_replicas(2, 52.0, 50, 1, 5) == 2  # within the 10% tolerance
    assert wanted_replicas(2, None, 50, 1, 5) == 2  # not measured yet
    assert wanted_replicas(1, 0.0, 50, 2, 5) == 2  # minReplica raised


def test_scale_down_follows_the_highest_recommendation_of_the_window() -> None:
    history = _History()
    assert history.stabilised(0.0, 3, window=10) == 3
    assert history.stabilised(5.0, 1, window=10) == 3
    assert history.stabilised(11.0, 1, window=10) == 1
