"""The one-worker barrier that stands in for Train's synchronisation actor (orchestrator/_lean/inline.py).
Its use inside real sweeps is covered by tests/integration/test_sweep.py."""

import pickle

import pytest

from tailsweep.orchestrator._lean.inline import SoloBarrier


def test_solo_barrier_hands_rank_zero_its_value_and_refuses_other_ranks():
    barrier = pickle.loads(pickle.dumps(SoloBarrier()))  # it travels to the worker with the train context
    assert barrier._broadcast(world_rank=0, world_size=1, data={"dir": "checkpoint_000001"},
                              caller_method_name="ray.train.report", collective_seq=3, relaxable=True) == {"dir": "checkpoint_000001"}
    with pytest.raises(RuntimeError, match=r"ray.train.report: rank 1 of 2 reached the one-worker barrier"):
        barrier._broadcast(world_rank=1, world_size=2, data=None, caller_method_name="ray.train.report")

