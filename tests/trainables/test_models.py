import torch

from tailsweep.trainables import MLPNet, build_model, check_backbone


def test_torchvision_backbone_by_name_has_multilabel_head():
    m = build_model("resnet18", num_labels=7)
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 7)


def test_mlp_for_features():
    m = build_model("mlp", num_labels=5, in_features=11, hidden=16, layers=2, dropout=0.5)
    assert isinstance(m, MLPNet) and m(torch.randn(3, 11)).shape == (3, 5)


def test_check_backbone_suggests_close_names():
    assert check_backbone("resnet18") is None and check_backbone("mlp") is None
    msg = check_backbone("resnet1")
    assert "unknown torchvision backbone 'resnet1'" in msg and "resnet18" in msg
