import pytest
import torch

from dmnas.errors import DmnasError
from dmnas.models import ConvNetSpec, build_convnet, count_parameters, grid_specs, parse_arch
from dmnas.defaults import EVAL_BATCH
from dmnas.train import accuracy, eval_batch

GRID = list(grid_specs())


def test_grid_has_720_unique_specs() -> None:
    assert len(GRID) == 720
    assert len({s.name for s in GRID}) == 720


@pytest.mark.parametrize("in_shape", [(1, 28, 28), (3, 32, 32)], ids=["28x28x1", "32x32x3"])
def test_every_grid_point_builds_and_runs(in_shape: tuple[int, int, int]) -> None:
    x = torch.randn(2, *in_shape)
    with torch.no_grad():
        for spec in GRID:
            net = build_convnet(spec, in_shape, 10)
            out = net(x)
            assert out.shape == (2, 10), spec.name
            assert torch.isfinite(out).all(), spec.name
            assert net.embed(x).shape == (2, net.feature_dim), spec.name


def test_default_is_the_papers_embedding_net() -> None:
    spec = ConvNetSpec()
    assert (spec.depth, spec.width, spec.act, spec.norm, spec.pool) == (
        3,
        128,
        "relu",
        "instancenorm",
        "avgpooling",
    )
    net = build_convnet(spec, (1, 28, 28), 10)
    assert net.feature_dim == 128 * 4 * 4  # 28 padded to 32, then three 2x2 pools


def test_generator_makes_init_reproducible_and_leaves_global_rng_alone() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_convnet(ConvNetSpec(width=8), (1, 12, 12), 3, torch.Generator().manual_seed(5))
    assert torch.equal(torch.rand(1), before)
    b = build_convnet(ConvNetSpec(width=8), (1, 12, 12), 3, torch.Generator().manual_seed(5))
    c = build_convnet(ConvNetSpec(width=8), (1, 12, 12), 3, torch.Generator().manual_seed(6))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters(), strict=True))


def test_parse_arch_round_trip_and_errors() -> None:
    spec = ConvNetSpec(depth=2, width=64, act="sigmoid", norm="groupnorm", pool="maxpooling")
    assert parse_arch(spec.name) == spec
    with pytest.raises(DmnasError, match="valid: sigmoid, relu, leakyrelu"):
        parse_arch("d2_w64_tanh_none_none")
    with pytest.raises(DmnasError, match="form"):
        parse_arch("resnet18")
    with pytest.raises(DmnasError, match="depth"):
        ConvNetSpec(depth=7)


def test_parameter_count_grows_with_width() -> None:
    small = count_parameters(build_convnet(ConvNetSpec(width=32), (3, 32, 32), 10))
    large = count_parameters(build_convnet(ConvNetSpec(width=64), (3, 32, 32), 10))
    assert large > small


def test_accuracy_does_not_depend_on_the_evaluation_batch() -> None:
    # The CPU default batch (256) differs from CUDA's (1024) for speed only.
    spec = parse_arch("d2_w8_relu_batchnorm_avgpooling")
    model = build_convnet(spec, (1, 12, 12), 3, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(600, 1, 12, 12, generator=g), torch.randint(0, 3, (600,), generator=g)
    cpu = torch.device("cpu")
    assert eval_batch(cpu) == EVAL_BATCH["cpu"] and eval_batch(torch.device("cuda")) == EVAL_BATCH["cuda"]
    accs = {b: accuracy(model, x, y, cpu, batch=b) for b in (7, 256, 1024)}
    assert len(set(accs.values())) == 1 and accuracy(model, x, y, cpu) == accs[256]
    assert model.training  # the mode is restored
