"""The streaming image pipeline: every row once per epoch, shards disjoint, reshuffled per epoch."""

import pyarrow as pa
import torch

from tailsweep.datasets import Manifest, write_table
from tailsweep.trainables._stream import ParquetImageStream, stream_loader
from tests.conftest import LABELS, png_bytes


def _table(tmp_path, n=40):
    rows = pa.table(
        {
            "id": [f"r{i}" for i in range(n)],
            "labels": [["a/x"] if i % 3 else ["b"] for i in range(n)],
            "image": pa.array([png_bytes((i * 6 % 255, 0, 0), size=12) for i in range(n)], pa.binary()),
        }
    )
    small = pa.table({"id": ["v"], "labels": [["b"]], "image": pa.array([png_bytes()], pa.binary())})
    return write_table(
        tmp_path / "t",
        Manifest(name="s", input="image"),
        LABELS,
        {"train": rows, "val": small, "test": small},
        row_group_size=4,
    )


def _reds(batches):
    # the red channel before normalisation identifies the row: undo Normalize for channel 0
    return sorted(round(float(x[0].mean() * 0.229 + 0.485) * 255) for b in batches for x in b[0])


def test_two_ranks_with_two_loader_processes_cover_every_row_once(tmp_path):
    table = _table(tmp_path)
    seen = []
    for rank in (0, 1):
        ds = ParquetImageStream(table.path("train"), table.encode, 8, augment=False, rank=rank, world=2, seed=3)
        seen += _reds(list(stream_loader(ds, 5, num_workers=2)))
    assert sorted(seen) == sorted(round(i * 6 % 255) for i in range(40))


def test_targets_match_and_epochs_reshuffle(tmp_path):
    table = _table(tmp_path)
    ds = ParquetImageStream(table.path("train"), table.encode, 8, augment=True, seed=0)
    x, y = next(iter(stream_loader(ds, 40, num_workers=0)))
    assert x.shape == (40, 3, 8, 8) and y.shape == (40, len(LABELS))
    assert torch.equal(y.sum(0), torch.from_numpy(table.targets("train").sum(0)).float())
    first = ds.my_groups()
    ds.set_epoch(1)
    assert sorted(ds.my_groups()) == sorted(first) and ds.my_groups() != first


def _pids(loader):
    return sorted(w.pid for w in loader._iterator._workers)


def test_loader_processes_persist_across_epochs_and_follow_the_epoch(tmp_path):
    from tailsweep.trainables._stream import StreamInput

    table = _table(tmp_path)
    cpu = torch.device("cpu")
    kept = StreamInput(ParquetImageStream(table.path("train"), table.encode, 8, False, seed=5), 5, 1, cpu)
    fresh = ParquetImageStream(table.path("train"), table.encode, 8, False, seed=5)  # in this process, for reference
    pids, orders = [], []
    for epoch in (0, 1):
        got = [_reds([b]) for b in kept.epoch(epoch, steps=8)]
        pids.append(_pids(kept.loader))
        fresh.set_epoch(epoch)
        # the loader process read the epoch set after it started: the same rows in the same order as here
        assert got == [_reds([b]) for b in stream_loader(fresh, 5, num_workers=0)]
        orders.append(got)
    assert pids[0] == pids[1] and len(pids[0]) == 1  # one process, started once, kept for the next epoch
    assert orders[0] != orders[1] and sorted(sum(orders[0], [])) == sorted(sum(orders[1], []))


def test_gpu_decode_path_ships_encoded_jpegs_and_matches_the_cpu_path(tmp_path, monkeypatch):
    """decode = gpu, driven on the CPU: the loader ships JPEGs still encoded (other formats decoded), the batch is
    decoded by ``decode_jpegs`` (on a GPU nvJPEG; here a Pillow stand-in, as torchvision.io does not load on this
    CPU torch), then resized and normalised as on the CPU path."""
    import io

    from PIL import Image

    from tailsweep.trainables import _decode
    from tailsweep.trainables._stream import StreamInput

    def jpeg(i):
        buf = io.BytesIO()
        Image.new("RGB", (10, 12), (i * 9 % 255, 40, 200)).save(buf, format="JPEG", quality=95)
        return buf.getvalue()

    n = 12
    rows = pa.table(
        {
            "id": [f"r{i}" for i in range(n)],
            "labels": [["a/x"] if i % 3 else ["b"] for i in range(n)],
            "image": pa.array([jpeg(i) if i % 2 else png_bytes((i, 0, 0), 12) for i in range(n)], pa.binary()),
        }
    )
    small = pa.table({"id": ["v"], "labels": [["b"]], "image": pa.array([png_bytes()], pa.binary())})
    table = write_table(
        tmp_path / "t",
        Manifest(name="j", input="image"),
        LABELS,
        {"train": rows, "val": small, "test": small},
        row_group_size=4,
    )

    def pillow_jpegs(encoded, device):
        assert all(t.dim() == 1 for t in encoded)  # only encoded JPEGs reach the GPU decoder
        return [torch.from_numpy(_decode.pillow_decode(bytes(t.numpy())).copy()).permute(2, 0, 1) for t in encoded]

    monkeypatch.setattr(_decode, "decode_jpegs", pillow_jpegs)
    cpu = torch.device("cpu")
    ds = ParquetImageStream(table.path("train"), table.encode, 8, False, seed=1, decode="gpu")
    items = list(ds)
    assert sorted({x.dim() for x, _ in items}) == [1, 3] and not ds.normalize
    gpu_path = list(StreamInput(ds, 4, 0, cpu).epoch(0, 3))
    cpu_path = list(stream_loader(ParquetImageStream(table.path("train"), table.encode, 8, False, seed=1), 4, 0))
    for (xg, yg), (xc, yc) in zip(gpu_path, cpu_path, strict=True):
        assert xg.shape == (4, 3, 8, 8) and torch.equal(yg, yc)
        assert torch.allclose(xg, xc, atol=1e-5)
