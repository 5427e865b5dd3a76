"""The autoscaler's arithmetic: Kubernetes' HPA rule, clamped to the pool, with a scale-down window."""

from pathlib import Path

from sandbox.control.autoscaler import _History, wanted_replicas
from sandbox.control.pods import PodTable
from sandbox.process import ProcessRecord
from sandbox.runtimes.base import PodInfo


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


def _pod(name: str) -> PodInfo:
    record = ProcessRecord(name=name, pid=2**22 + 1, create_time=0.0, argv=[], log_path="")
    return PodInfo(name, "tf", "tf2-cpu.2-18", "http://127.0.0.1:1", "/", "/", record, {})


def test_the_pod_table_adds_replicas_only_to_the_generation_they_were_started_for(tmp_path: Path) -> None:
    table = PodTable(tmp_path)
    key = ("DeployedModel", "default", "m")
    table.set(key, [_pod("a")], generation=2)
    assert not table.add(key, [_pod("old")], generation=1)  # a rollout replaced generation 1 meanwhile
    assert table.add(key, [_pod("b"), _pod("c")], generation=2)
    assert [p.name for p in table.get(key)] == ["a", "b", "c"]
    taken = table.remove(key, ["b", "c"])
    assert [p.name for p in taken] == ["b", "c"] and [p.name for p in table.get(key)] == ["a"]
    assert (tmp_path / "spawning" / "b.json").exists()  # held loose until stopped
    table.retire(taken)
    assert not (tmp_path / "spawning" / "b.json").exists()


def test_a_pod_that_died_keeps_its_slot_until_its_restart_fills_it(tmp_path: Path) -> None:
    table = PodTable(tmp_path)
    key = ("DeployedModel", "default", "m")
    first, other = _pod("a"), _pod("b")
    table.set(key, [first, other], generation=1)
    assert table.died(key, first)
    assert not table.died(key, first)  # noticed once
    assert table.replicas(key) == ([other], {"a"})  # one restarting, not one missing
    assert (tmp_path / "spawning" / "a.json").exists()  # held loose until stopped

    stranger = _pod("c")
    assert not table.refill(key, stranger, generation=1)  # no slot of that name
    restarted = _pod("a")
    restarted.process.pid += 1
    assert not table.refill(key, restarted, generation=2)  # the slot belongs to generation 1
    assert table.refill(key, restarted, generation=1)
    assert not table.refill(key, restarted, generation=1)  # a second restart finds the slot filled
    assert table.replicas(key) == ([other, restarted], set())
    assert not table.died(key, first)  # the old process of a restarted pod is not the replica any more


def test_a_rollout_or_a_deletion_abandons_the_restarting_slots(tmp_path: Path) -> None:
    table = PodTable(tmp_path)
    key = ("DeployedModel", "default", "m")
    table.set(key, [_pod("a")], generation=1)
    table.died(key, table.get(key)[0])
    table.set(key, [_pod("new")], generation=1)
    assert table.replicas(key) == (table.get(key), set()) and not table.refill(key, _pod("a"), generation=1)
    table.died(key, table.get(key)[0])
    table.pop(key)
    assert table.replicas(key) == ([], set())
