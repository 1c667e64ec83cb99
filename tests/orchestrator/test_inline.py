"""The one-worker barrier that stands in for Train's synchronisation actor (orchestrator/_lean/inline.py).
Its use inside real sweeps is covered by tests/integration/test_sweep.py."""

import pickle

import pytest

from tailsweep.orchestrator._lean.inline import SoloBarrier


def test_solo_barrier_hands_rank_zero_its_value_and_refuses_other_ranks():
    barrier = pickle.loads(pickle.dumps(SoloBarrier()))  # it travels to the worker with the train context
    assert barrier._broadcast(
        world_rank=0,
        world_size=1,
        data={"dir": "checkpoint_000001"},
        caller_method_name="ray.train.report",
        collective_seq=3,
        relaxable=True,
    ) == {"dir": "checkpoint_000001"}
    with pytest.raises(RuntimeError, match=r"ray.train.report: rank 1 of 2 reached the one-worker barrier"):
        barrier._broadcast(world_rank=1, world_size=2, data=None, caller_method_name="ray.train.report")


# --- a lost node is not charged to train.max_failures (NodeLossPolicy) -------------------------------
def _unreachable_worker_error():
    from ray.exceptions import ActorUnavailableError
    from ray.train.v2._internal.exceptions import WorkerHealthCheckFailedError
    from ray.train.v2.api.exceptions import WorkerGroupError

    unreachable = ActorUnavailableError("RpcError: Connection reset by peer", b"\x01" * 16)
    return WorkerGroupError("rank 0 died", {0: WorkerHealthCheckFailedError("a health check failed", unreachable)})


def _policy(max_failures=0, max_preemption_failures=-1):
    from ray.train import FailureConfig

    from tailsweep.orchestrator._lean.inline import NodeLossPolicy, NodeWatch

    watch = NodeWatch()
    watch.nodes = {"n1": "10.0.0.7"}
    return NodeLossPolicy(
        FailureConfig(max_failures=max_failures, max_preemption_failures=max_preemption_failures), watch
    )


def test_a_worker_group_that_lost_a_node_is_retried_without_touching_max_failures(monkeypatch):
    from ray.train.v2._internal.execution.failure_handling import FailureDecision

    from tailsweep.orchestrator._lean import inline

    asked = []
    monkeypatch.setattr(inline, "lost_node_of", lambda actors, nodes: asked.append((actors, nodes)) or ["n1"])
    policy = _policy(max_failures=0)
    error = _unreachable_worker_error()
    assert [policy.make_decision(error) for _ in range(3)] == [FailureDecision.RETRY] * 3  # unlimited by default
    assert asked[0] == (["01" * 16], {"n1": "10.0.0.7"})  # the unreachable actor, the group's nodes
    capped = _policy(max_failures=5, max_preemption_failures=1)
    assert [capped.make_decision(error) for _ in range(2)] == [FailureDecision.RETRY, FailureDecision.RAISE]


def test_a_worker_lost_on_a_live_node_and_a_user_error_keep_ray_trains_policy(monkeypatch):
    from ray.train.v2._internal.execution.failure_handling import FailureDecision
    from ray.train.v2.api.exceptions import WorkerGroupError

    from tailsweep.orchestrator._lean import inline

    asked = []
    monkeypatch.setattr(inline, "lost_node_of", lambda actors, nodes: asked.append(actors) or [])
    assert _policy(max_failures=0).make_decision(_unreachable_worker_error()) == FailureDecision.RAISE
    with_one = _policy(max_failures=1)
    assert with_one.make_decision(_unreachable_worker_error()) == FailureDecision.RETRY
    assert with_one.make_decision(_unreachable_worker_error()) == FailureDecision.RAISE
    user_error = WorkerGroupError("boom", {0: ValueError("a bug in the training loop")})
    assert _policy(max_failures=0).make_decision(user_error) == FailureDecision.RAISE
    assert asked == [["01" * 16]] * 3  # a user error: no actor to ask the GCS about


def test_lost_node_of_waits_until_the_gcs_settles_the_failed_workers(monkeypatch):
    import ray._private.state as gcs

    from tailsweep.orchestrator._lean.inline import lost_node_of
    from tailsweep.trainables import _tracking

    nodes = {"n1": "10.0.0.7", "n2": "10.0.0.8"}
    checks = []
    # the node is declared dead on the third look (health checks gave up): a node loss
    monkeypatch.setattr(_tracking, "lost_nodes", lambda ns: checks.append(1) or (["n2"] if len(checks) >= 3 else []))
    monkeypatch.setattr(gcs, "actors", lambda actor_id: {"State": "ALIVE"})
    assert lost_node_of(["a1"], nodes, wait_s=30) == ["n2"] and len(checks) == 3
    # the actor is declared DEAD while its node lives (a worker process died): at once, no node lost
    checks.clear()
    monkeypatch.setattr(_tracking, "lost_nodes", lambda ns: checks.append(1) or [])
    monkeypatch.setattr(gcs, "actors", lambda actor_id: {"State": "DEAD"})
    assert lost_node_of(["a1"], nodes, wait_s=30) == [] and len(checks) == 2
    # nothing settles: gives up after wait_s
    monkeypatch.setattr(gcs, "actors", lambda actor_id: {"State": "ALIVE"})
    assert lost_node_of(["a1"], nodes, wait_s=0) == []
