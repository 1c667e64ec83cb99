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


def test_ensemble_mlp_is_m_independent_mlps():
    import torch

    from tailsweep.trainables._models import EnsembleMLP, MLPNet

    torch.manual_seed(0)
    ens = EnsembleMLP(7, 5, hidden=16, layers=2, dropout=0.0, heads=3)
    x = torch.randn(4, 7)
    out = ens(x)
    assert out.shape == (3, 4, 5)
    for m in range(3):
        single = MLPNet(7, 5, hidden=16, layers=2)
        linears = [layer for layer in single.net if isinstance(layer, torch.nn.Linear)]
        with torch.no_grad():
            for lin, w, b in zip(linears, ens.weights, ens.biases, strict=True):
                lin.weight.copy_(w[m].T)
                lin.bias.copy_(b[m, 0])
        assert torch.allclose(single(x), out[m], atol=1e-5)
    assert not torch.allclose(out[0], out[1])  # heads initialised independently


def test_heads_on_a_shared_backbone():
    import torch

    from tailsweep.trainables._models import SharedBackboneHeads, build_model

    model = build_model("resnet18", 6, heads=4)
    assert isinstance(model, SharedBackboneHeads)
    assert model(torch.randn(2, 3, 32, 32)).shape == (4, 2, 6)
