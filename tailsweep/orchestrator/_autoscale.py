"""Sweeps on an autoscaling cluster: plan against what the cluster can grow to, ask for the nodes, wait for them,
let them go.

A cluster whose GPU node types start at ``min_workers: 0`` holds only its CPU head when a sweep starts. The plan
therefore reads the node types -- the cluster YAML's ``available_node_types`` with their declared ``resources``
and ``max_workers`` -- and counts the nodes the sweep needs (:func:`grow`). ``launch sweep --cluster`` reads them
from the YAML and hands them to the job's driver in :data:`NODE_TYPES_ENV` (JSON); the driver adds what is alive
(``ray.nodes()``). At the start of a real run the driver asks the autoscaler for the workers' bundles
(``ray.autoscaler.sdk.request_resources``), shows the wait ("waiting for GPU nodes: 1 of 2 up"), and stops after
``resources.node_wait_s`` naming the node type when none came; at the end it withdraws the request, so the nodes
are free to scale down after the cluster's ``idle_timeout_minutes``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

NODE_TYPES_ENV = "TAILSWEEP_NODE_TYPES"  # the cluster YAML's node types, for the job's driver (JSON)
EPS = 1e-9


class NodeTypeError(ValueError):
    """A cluster YAML's node types cannot be planned with (one message per problem)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class NodeType:
    """A worker node type the autoscaler may start: its resources (CPU, GPU, ...) and bounds."""

    name: str
    resources: dict
    max_workers: int
    min_workers: int = 0

    @property
    def gpus(self) -> float:
        return float(self.resources.get("GPU", 0))

    def describe(self) -> str:
        return f"{self.name} (CPU {self.resources.get('CPU', 0):g}, GPU {self.gpus:g})"


@dataclass(frozen=True)
class ClusterShape:
    """What the plan may count on: the alive nodes' resources and the node types the autoscaler can add."""

    alive: tuple[dict, ...] = ()  # resources of each alive node that may run Train workers
    types: tuple[NodeType, ...] = ()
    max_workers: int | None = None  # the YAML's cluster-wide cap on worker nodes
    source: str = "the cluster YAML"

    def of_type(self, t: NodeType) -> int:
        """Alive nodes that look like type ``t`` (same CPU and GPU counts)."""
        return sum(_same(n, t.resources) for n in self.alive)

    def addable(self, t: NodeType) -> int:
        return max(0, t.max_workers - self.of_type(t))


def _same(a: Mapping, b: Mapping) -> bool:
    return all(abs(float(a.get(k, 0)) - float(b.get(k, 0))) < EPS for k in ("CPU", "GPU"))


def _count(value, where: str, problems: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.append(f"{where} = {value!r}: a whole number of nodes (0 or more) is needed")
        return 0
    return value


def node_types(config: Mapping, source: str) -> tuple[tuple[NodeType, ...], dict, int | None]:
    """The worker node types of a cluster-launcher config, the head type's resources, and the cap on workers.
    Raises NodeTypeError naming the key when a count is not a whole number or a worker type declares no CPUs."""
    problems: list[str] = []
    types = config.get("available_node_types") or {}
    head = config.get("head_node_type")
    cap = config.get("max_workers")
    cap = None if cap is None else _count(cap, f"{source}: max_workers", problems)
    out, head_res = [], {}
    for name, t in types.items():
        t = t or {}
        res = {k: float(v) for k, v in (t.get("resources") or {}).items() if isinstance(v, (int, float))}
        if name == head:
            head_res = res
            continue
        where = f"{source}: available_node_types.{name}"
        n_max = _count(t.get("max_workers", cap or 0), f"{where}.max_workers", problems)
        n_min = _count(t.get("min_workers", 0), f"{where}.min_workers", problems)
        if "CPU" not in res:
            problems.append(
                f"{where}.resources: declare the node's CPU (and GPU) count, e.g. resources: {{CPU: 8, GPU: 1}} -- "
                "tailsweep plans the sweep from them before any such node exists"
            )
        out.append(NodeType(str(name), res, n_max, n_min))
    if problems:
        raise NodeTypeError(problems)
    return tuple(out), head_res, cap


def types_to_env(types: tuple[NodeType, ...], cap: int | None) -> str:
    return json.dumps({"max_workers": cap, "types": [t.__dict__ for t in types]})


def types_from_env() -> tuple[tuple[NodeType, ...], int | None]:
    raw = os.environ.get(NODE_TYPES_ENV)
    if not raw:
        return (), None
    data = json.loads(raw)
    return tuple(NodeType(**t) for t in data["types"]), data.get("max_workers")


# --- the plan -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Growth:
    """How the sweep's Train workers fit the cluster once the nodes it asks for are up."""

    concurrent: int  # trials at once
    add: dict = field(default_factory=dict)  # node type name -> nodes to start
    lands_on: dict | None = None  # resources of the node a worker lands on (the first with room)
    per_node: int = 0  # workers that fit on that node
    short: str = ""  # why there is no room, when concurrent == 0


def slots(res: Mapping, cpus: float, gpus: float) -> int:
    """Workers of ``cpus`` CPUs and ``gpus`` GPUs that fit on a node with resources ``res``."""
    n = math.floor(float(res.get("CPU", 0)) / cpus + EPS)
    if gpus > 0:
        n = min(n, math.floor(float(res.get("GPU", 0)) / gpus + EPS))
    return n


def grow(shape: ClusterShape, cpus: float, gpus: float, workers: int, wanted: int) -> Growth:
    """The nodes to add (up to each type's ``max_workers`` and the cluster's cap) so that ``wanted`` trials of
    ``workers`` workers run at once; fewer trials at once when the types run out (and then no node that would
    hold only part of a trial)."""
    have, _, _, _ = _fill(shape, cpus, gpus, workers * wanted, workers)
    concurrent = min(wanted, have // workers)
    if concurrent == 0:
        return Growth(0, short=_why_no_room(shape, cpus, gpus, workers))
    _, add, lands_on, per_node = _fill(shape, cpus, gpus, workers * concurrent, workers)
    return Growth(concurrent, add, lands_on, per_node)


def _fill(shape: ClusterShape, cpus: float, gpus: float, need: int, workers: int):
    """Worker slots of the alive nodes, then nodes added until ``need`` slots: (slots, added, where, per node)."""
    have, lands_on, per_node = 0, None, 0
    for n in shape.alive:
        if (s := slots(n, cpus, gpus)) > 0:
            have += s
            lands_on, per_node = lands_on or dict(n), per_node or s
    add: dict[str, int] = {}
    room = math.inf if shape.max_workers is None else max(0, shape.max_workers - len(shape.alive) + 1)
    # types that hold a whole trial first (its DDP traffic stays within a node), else the YAML's order
    for t in sorted(shape.types, key=lambda t: slots(t.resources, cpus, gpus) < workers):
        s = slots(t.resources, cpus, gpus)
        k = 0
        while s > 0 and have < need and k < shape.addable(t) and sum(add.values()) + k < room:
            k, have = k + 1, have + s
        if k:
            add[t.name] = k
            lands_on, per_node = lands_on or dict(t.resources), per_node or s
    return have, add, lands_on, per_node


def _why_no_room(shape: ClusterShape, cpus: float, gpus: float, workers: int) -> str:
    kind = "GPU " if gpus > 0 else ""
    fits = [t for t in shape.types if slots(t.resources, cpus, gpus) > 0]
    if not fits:
        return (
            f"resources: a worker needs {cpus:g} CPU{f' and {gpus:g} GPU' if gpus else ''}, and no node type of "
            f"{shape.source} has that room ({', '.join(t.describe() for t in shape.types) or 'none declared'}); "
            + (
                "add a GPU node type, or set resources.use_gpu: false"
                if gpus
                else "lower resources.cpus_per_worker or add a larger node type"
            )
        )
    zero = [t.name for t in fits if shape.addable(t) == 0]
    if zero and len(zero) == len(fits):
        return (
            f"available_node_types.{zero[0]} of {shape.source}: max_workers = {fits[0].max_workers}, so the "
            f"autoscaler can start no {kind}node of this type (and no other type has room for a worker); raise "
            "its max_workers"
        )
    return (
        f"resources: a trial needs {workers} workers, and {shape.source}'s node types can hold fewer "
        f"(max_workers of {', '.join(t.name for t in fits)} and the cluster's max_workers); raise them or lower "
        "resources.workers_per_trial"
    )


def gpu_node_possible(shape: ClusterShape) -> bool:
    """Whether the cluster has a GPU node or can add one."""
    return any(float(n.get("GPU", 0)) > 0 for n in shape.alive) or any(
        t.gpus > 0 and shape.addable(t) > 0 for t in shape.types
    )


def alive_shape(types: tuple[NodeType, ...], cap: int | None, nodes: list[Mapping], source: str) -> ClusterShape:
    """The shape of a running cluster from Ray's node records (``resources_total`` or ``Resources``)."""
    alive = []
    for n in nodes:
        res = n.get("resources_total") or n.get("Resources") or {}
        alive.append({k: float(v) for k, v in res.items() if k in ("CPU", "GPU")})
    return ClusterShape(tuple(alive), types, cap, source)


def joined_shape() -> ClusterShape | None:
    """In a driver joined to a cluster: the node types handed over in :data:`NODE_TYPES_ENV` and the alive nodes
    (``ray.nodes()``); None when no types were handed over (a static cluster, a local Ray)."""
    types, cap = types_from_env()
    if not types:
        return None
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return alive_shape(types, cap, nodes, "the cluster's node types")


# --- at run time ----------------------------------------------------------------------------------------------
def gpu_slots_up(cpus: float, gpus: float) -> int:
    import ray

    return sum(slots(n.get("Resources") or {}, cpus, gpus) for n in ray.nodes() if n.get("Alive"))


class NodeRequest:
    """Asks the autoscaler for the sweep's worker bundles, waits until they fit, and withdraws the request at the
    end (``with NodeRequest(...) as req: req.wait(...)``)."""

    def __init__(self, plan: Mapping, poll_s: float = 1.0):
        self.plan = plan
        self.poll_s = poll_s
        self.cpus, self.gpus = plan["cpus_per_worker"], plan["gpus_per_worker"] if plan["use_gpu"] else 0.0
        self.needed = plan["workers_per_trial"] * plan["max_concurrent_trials"]
        self.asked = False

    def __enter__(self):
        from ray.autoscaler.sdk import request_resources

        shape = {"CPU": self.cpus, **({"GPU": self.gpus} if self.gpus else {})}
        request_resources(bundles=[dict(shape) for _ in range(self.needed)])
        self.asked = True
        return self

    def __exit__(self, *exc):
        if self.asked:
            from ray.autoscaler.sdk import request_resources

            request_resources(bundles=[])  # withdrawn: idle nodes scale down after idle_timeout_minutes
            self.asked = False
        return False

    def status(self, up: int) -> str:
        kind = "GPU nodes" if self.gpus else "nodes"
        per = max(1, self.plan["node_slots"])
        want = math.ceil(self.needed / per)
        return f"waiting for {kind}: {min(want, math.ceil(up / per))} of {want} up ({self.plan['node_note']})"

    def wait(self, timeout_s: float, show) -> float:
        """Block until the requested workers fit (returns the seconds waited). After ``timeout_s``: go on with
        fewer trials at once if one trial fits, else raise TimeoutError naming the node type and what to check."""
        t0 = time.monotonic()
        while (up := gpu_slots_up(self.cpus, self.gpus)) < self.needed:
            line = self.status(up)
            show(line)
            if time.monotonic() - t0 > timeout_s:
                if up >= self.plan["workers_per_trial"]:
                    show(f"{line}: going on with what is up after {timeout_s:g} s (resources.node_wait_s)")
                    return time.monotonic() - t0
                raise TimeoutError(self.timeout_message(timeout_s))
            time.sleep(self.poll_s)
        return time.monotonic() - t0

    def timeout_message(self, timeout_s: float) -> str:
        return (
            f"no room for a trial's workers after {timeout_s:g} s (resources.node_wait_s): the autoscaler did not "
            f"start {self.plan['node_note']}. Check the autoscaler's log on the head (`ray exec CLUSTER.yaml "
            "'tail -n 100 /tmp/ray/session_latest/logs/monitor.*'`), your cloud quota for that instance type, and "
            "the node type's node_config; raise resources.node_wait_s if nodes are slow to start"
        )
