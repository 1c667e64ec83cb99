"""In-memory splits: loading, concatenating, batches, evaluation shards."""

import numpy as np
import torch

from tailsweep.trainables._data import concat_splits, load_split, prepare_batch, shard_indices


def test_splits_load_as_tensors_with_the_tables_label_order(features_table, image_table):
    f = load_split(features_table, "train")
    assert f.inputs.shape == (120, 8) and f.targets.shape == (120, 4) and not f.is_image
    assert set(torch.unique(f.targets).tolist()) <= {0.0, 1.0}
    i = load_split(image_table, "val", image_size=16)
    assert i.is_image and i.inputs.shape[0] == 8 and i.inputs.shape[-2:] == (16, 16)
    both = concat_splits([load_split(features_table, "train"), load_split(features_table, "val")])
    assert len(both) == 160
    assert len(load_split(features_table, "train", rows=np.arange(3))) == 3


def test_evaluation_shards_cover_every_row_once():
    shards = [shard_indices(10, r, 3) for r in range(3)]
    assert sorted(np.concatenate(shards).tolist()) == list(range(10))


def test_image_batches_are_normalised_floats_on_the_device(image_table):
    data = load_split(image_table, "train", image_size=16)
    x = prepare_batch(
        data.inputs[:4], True, torch.device("cpu"), augment=True, generator=torch.Generator().manual_seed(0)
    )
    assert x.dtype == torch.float32 and x.shape == (4, 3, 16, 16)
    y = prepare_batch(data.inputs[:4], True, torch.device("cpu"))
    assert torch.allclose(x.abs().sum(), y.abs().sum())  # flips move pixels, never change them
