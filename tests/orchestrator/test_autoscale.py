"""Planning against what an autoscaling cluster can grow to (orchestrator/_autoscale.py), without Ray."""

from __future__ import annotations

import pytest

from tailsweep.orchestrator._autoscale import (
    NODE_TYPES_ENV,
    ClusterShape,
    NodeRequest,
    NodeType,
    NodeTypeError,
    grow,
    node_types,
    types_from_env,
    types_to_env,
)
from tailsweep.orchestrator._sweep import plan_resources
from tailsweep.orchestrator.spec import SpecError, load_spec

GPU2 = NodeType("gpu_node", {"CPU": 2.0, "GPU": 2.0}, max_workers=2)
HEAD = {"CPU": 1.0}


def test_the_nodes_to_start_for_two_trials_of_two_gpu_workers():
    g = grow(ClusterShape((HEAD,), (GPU2,)), cpus=1, gpus=1, workers=2, wanted=2)
    assert g.concurrent == 2 and g.add == {"gpu_node": 2} and g.per_node == 2
    # one node already up: one more
    up = ClusterShape((HEAD, {"CPU": 2.0, "GPU": 2.0}), (GPU2,))
    assert grow(up, 1, 1, 2, 2).add == {"gpu_node": 1}
    # fractions pack: 4 one-worker trials of 0.25 GPU and 0.5 CPU on one node
    g = grow(ClusterShape((HEAD,), (GPU2,)), cpus=0.5, gpus=0.25, workers=1, wanted=4)
    assert g.concurrent == 4 and g.add == {"gpu_node": 1}


def test_fewer_trials_at_once_when_the_types_run_out_and_no_partial_node():
    big = NodeType("big", {"CPU": 48.0, "GPU": 4.0}, max_workers=1)
    one = NodeType("one", {"CPU": 4.0, "GPU": 1.0}, max_workers=2)
    g = grow(ClusterShape((HEAD,), (one, big)), 1, 1, workers=4, wanted=8)
    assert g.concurrent == 1 and g.add == {"big": 1}  # a whole trial on one node first; 2 one-GPU nodes hold none


def test_use_gpu_null_means_a_gpu_node_the_cluster_can_add_and_loaders_come_from_its_cpus():
    spec = load_spec(None, ["train.pipeline=stream", "model.image_size=64"])
    node = NodeType("g5.12xlarge", {"CPU": 48.0, "GPU": 4.0}, max_workers=1)
    r = plan_resources(spec, {"CPU": 8.0}, 8, ClusterShape(({"CPU": 8.0},), (node,)))
    assert r["use_gpu"] and r["max_concurrent_trials"] == 4 and r["add_nodes"] == {"g5.12xlarge": 1}
    assert r["loader_workers"] == 11 and r["threads"] == 1  # 48 CPUs / 4 GPU workers, one for the trainer
    zero = NodeType("g5.12xlarge", {"CPU": 48.0, "GPU": 4.0}, max_workers=0)
    r = plan_resources(spec, {"CPU": 8.0}, 8, ClusterShape(({"CPU": 8.0},), (zero,)))
    assert not r["use_gpu"] and r["add_nodes"] == {}  # CPU workers on the head


def test_refusals_name_the_node_type():
    spec = load_spec(None, ["resources.use_gpu=true"])
    cpu_only = NodeType("cpu_node", {"CPU": 8.0}, max_workers=3)
    with pytest.raises(SpecError, match="no node type of .* has that room.*cpu_node"):
        plan_resources(spec, {}, 4, ClusterShape((HEAD,), (cpu_only,)))
    with pytest.raises(SpecError, match="available_node_types.gpu_node .*max_workers = 0"):
        plan_resources(spec, {}, 4, ClusterShape((HEAD,), (NodeType("gpu_node", GPU2.resources, 0),)))


def test_node_types_from_yaml_and_through_the_jobs_environment(monkeypatch):
    config = {
        "max_workers": 3,
        "head_node_type": "head",
        "available_node_types": {
            "head": {"resources": {"CPU": 1, "tailsweep_trial": 1000}, "max_workers": 0},
            "gpu_node": {"resources": {"CPU": 2, "GPU": 2}, "min_workers": 0, "max_workers": 2},
        },
    }
    types, head, cap = node_types(config, "c.yaml")
    assert types == (NodeType("gpu_node", {"CPU": 2.0, "GPU": 2.0}, 2, 0),) and head["CPU"] == 1 and cap == 3
    monkeypatch.setenv(NODE_TYPES_ENV, types_to_env(types, cap))
    assert types_from_env() == (types, 3)
    config["available_node_types"]["gpu_node"]["max_workers"] = 1.5
    with pytest.raises(NodeTypeError, match=r"available_node_types.gpu_node.max_workers = 1.5: a whole number"):
        node_types(config, "c.yaml")


def test_the_wait_line():
    req = NodeRequest(
        {
            "cpus_per_worker": 1.0,
            "gpus_per_worker": 1.0,
            "use_gpu": True,
            "workers_per_trial": 2,
            "max_concurrent_trials": 2,
            "node_slots": 2,
            "node_note": "gpu_node x 2",
        }
    )
    assert req.status(0) == "waiting for GPU nodes: 0 of 2 up (gpu_node x 2)"
    assert req.status(2) == "waiting for GPU nodes: 1 of 2 up (gpu_node x 2)"
    assert "gpu_node x 2" in req.timeout_message(900) and "resources.node_wait_s" in req.timeout_message(900)
