from dataclasses import replace

import pytest
import torch

from dmnas.augment import apply_draw, parse_strategy, sample_draw
from dmnas.condensation.dm import CondenseConfig, CondenseState, RunOptions, condense
from dmnas.condensation.losses import dm_loss, segment_mean
from dmnas.errors import DmnasError
from dmnas.models import ConvNetSpec, build_convnet

TINY = CondenseConfig(ipc=2, iterations=4, batch_real=5, embed=ConvNetSpec(depth=1, width=8), seed=0)


def test_loss_is_zero_for_identical_features() -> None:
    feats = torch.randn(6, 7)
    groups = torch.tensor([0, 0, 1, 1, 2, 2])
    assert dm_loss(segment_mean(feats, groups, 3), feats, groups).item() == 0.0


def test_loss_matches_the_formula() -> None:
    real = torch.randn(2, 4)
    syn = torch.randn(4, 4)
    groups = torch.tensor([0, 0, 1, 1])
    expected = ((real[0] - syn[:2].mean(0)) ** 2).sum() + ((real[1] - syn[2:].mean(0)) ** 2).sum()
    torch.testing.assert_close(dm_loss(real, syn, groups), expected)


def test_finite_difference_gradient_of_the_whole_objective() -> None:
    """float64 gradcheck of loss(syn) through augmentation, a random ConvNet and the mean matching."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    net = build_convnet(
        ConvNetSpec(depth=1, width=4, norm="instancenorm", pool="avgpooling"), (1, 6, 6), 2, gen
    ).double()
    net.requires_grad_(False)
    real = torch.randn(8, 1, 6, 6, dtype=torch.float64)
    real_groups = torch.tensor([0] * 4 + [1] * 4)
    syn_groups = torch.tensor([0, 0, 1, 1])
    # Smooth transforms only: crop/cutout/flip are piecewise constant in the pixels' positions,
    # but still linear in pixel values, so include them too.
    draw = sample_draw(parse_strategy("color_crop_cutout_flip"), 2, gen, (6, 6))
    real_means = segment_mean(net.embed(apply_draw(real, real_groups, draw)), real_groups, 2)
    syn = torch.randn(4, 1, 6, 6, dtype=torch.float64, requires_grad=True)

    def objective(s: torch.Tensor) -> torch.Tensor:
        return dm_loss(real_means, net.embed(apply_draw(s, syn_groups, draw)), syn_groups)

    assert torch.autograd.gradcheck(objective, (syn,), eps=1e-6, atol=1e-5)


def test_condense_is_deterministic_and_seed_sensitive(tiny_data) -> None:  # noqa: ANN001
    a = condense(tiny_data, TINY)
    b = condense(tiny_data, TINY)
    c = condense(tiny_data, replace(TINY, seed=1))
    assert torch.equal(a.images, b.images) and a.losses == b.losses
    assert not torch.equal(a.images, c.images)


def test_condense_changes_images_and_reduces_loss(tiny_data) -> None:  # noqa: ANN001
    cfg = replace(TINY, iterations=30, strategy="none")
    state = condense(tiny_data, cfg)
    init = condense(tiny_data, replace(cfg, iterations=0))
    assert not torch.equal(state.images, init.images)
    assert sum(state.losses[-5:]) < sum(state.losses[:5])


def test_resume_from_checkpoint_is_identical(tiny_data) -> None:  # noqa: ANN001
    full = condense(tiny_data, TINY)
    saved: list[CondenseState] = []
    condense(tiny_data, replace(TINY), RunOptions(checkpoint_every=1), checkpoint=saved.append)
    middle = next(s for s in saved if s.iteration == 2)
    resumed = condense(tiny_data, TINY, resume=middle)
    assert torch.equal(resumed.images, full.images)
    assert resumed.losses == full.losses


def test_chunked_real_forward_matches_one_batch(tiny_data) -> None:  # noqa: ANN001
    a = condense(tiny_data, TINY, RunOptions(real_chunk=0))
    b = condense(tiny_data, TINY, RunOptions(real_chunk=4))
    torch.testing.assert_close(a.images, b.images, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("norm", ["batchnorm", "layernorm", "groupnorm", "none"])
def test_condense_runs_with_every_norm(tiny_data, norm: str) -> None:  # noqa: ANN001
    state = condense(tiny_data, replace(TINY, iterations=2, embed=ConvNetSpec(depth=1, width=8, norm=norm)))
    assert torch.isfinite(state.images).all()


def test_noise_init_any_ipc_and_bad_ipc(tiny_data) -> None:  # noqa: ANN001
    state = condense(tiny_data, replace(TINY, ipc=7, init="noise", iterations=1))
    assert state.images.shape[0] == 7 * tiny_data.num_classes
    with pytest.raises(DmnasError, match="smallest class"):
        condense(tiny_data, replace(TINY, ipc=13))
    with pytest.raises(DmnasError, match="--init"):
        CondenseConfig(init="zeros")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_condense_on_cuda_is_deterministic(tiny_data) -> None:  # noqa: ANN001
    opts = RunOptions(device="cuda")
    a, b = condense(tiny_data, TINY, opts), condense(tiny_data, TINY, opts)
    torch.testing.assert_close(a.images, b.images)


@pytest.mark.slow
def test_compiled_embedding_matches_eager(tiny_data, caplog) -> None:  # noqa: ANN001
    cfg = replace(TINY, iterations=3, embed=ConvNetSpec(depth=2, width=8))
    eager = condense(tiny_data, cfg, RunOptions(compile=False))
    compiled = condense(tiny_data, cfg, RunOptions(compile=True))
    assert "torch.compile failed" not in caplog.text  # it really ran compiled
    torch.testing.assert_close(compiled.images, eager.images, rtol=1e-4, atol=1e-4)


def test_interrupts_become_a_flag_and_ignored_signals_stay_ignored() -> None:
    import os
    import signal

    from dmnas.condensation.dm import _deferred_interrupts

    old_int, old_term = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as for `dmnas ... &` started from a script
    try:
        with _deferred_interrupts() as interrupted:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            assert not interrupted()
            os.kill(os.getpid(), signal.SIGTERM)
            assert interrupted()
        assert (
            signal.getsignal(signal.SIGINT) is signal.SIG_IGN and signal.getsignal(signal.SIGTERM) is old_term
        )
    finally:
        signal.signal(signal.SIGINT, old_int)


def test_embedding_pool_draws_varied_architectures_and_keeps_old_keys(tiny_data) -> None:  # noqa: ANN001
    pool = (ConvNetSpec(depth=1, width=8), ConvNetSpec(depth=2, width=4, norm="batchnorm", pool="maxpooling"))
    cfg = replace(TINY, embed_pool=pool)
    gen = torch.Generator().manual_seed(0)
    drawn = {cfg.embed_for(gen) for _ in range(20)}
    assert drawn == set(pool)
    # Without a pool nothing is drawn, so every earlier run (and cache key) is unchanged.
    gen2 = torch.Generator().manual_seed(0)
    state = gen2.get_state()
    assert TINY.embed_for(gen2) == TINY.embed and torch.equal(gen2.get_state(), state)
    assert "embed_pool" not in TINY.to_dict() and cfg.to_dict()["pool_loss"] == "relative"
    a, b = condense(tiny_data, cfg), condense(tiny_data, cfg)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, condense(tiny_data, TINY).images)
    with pytest.raises(DmnasError, match=">= 2 architectures"):
        replace(TINY, embed_pool=pool[:1])


def test_embed_pool_option_is_parsed_and_checked() -> None:
    from dmnas.condensation.job import parse_pool

    assert parse_pool(None) == ()
    assert [s.name for s in parse_pool("d1_w8_relu_instancenorm_avgpooling, d2_w8_relu_batchnorm_none")] == [
        "d1_w8_relu_instancenorm_avgpooling",
        "d2_w8_relu_batchnorm_none",
    ]
    with pytest.raises(DmnasError, match="twice"):
        parse_pool("d1_w8_relu_instancenorm_avgpooling,d1_w8_relu_instancenorm_avgpooling")
    with pytest.raises(DmnasError, match="not of the form"):
        parse_pool("d1_w8_relu_instancenorm_avgpooling,bogus")


def test_pool_loss_is_relative_to_each_networks_feature_scale(tiny_data) -> None:  # noqa: ANN001
    """Two pools whose second network differs only by a huge output scale (no norm, sigmoid vs
    wide relu) must not let that network's scale blow the images up."""
    pool = (ConvNetSpec(depth=1, width=8), ConvNetSpec(depth=1, width=64, norm="none", pool="none"))
    state = condense(tiny_data, replace(TINY, iterations=20, embed_pool=pool, strategy="none"))
    assert all(torch.isfinite(torch.tensor(state.losses)))
    assert float(state.images.abs().max()) < 50 * float(tiny_data.train_x.abs().max())


def test_bf16_real_branch_matches_fp32_within_tolerance(tiny_data) -> None:  # noqa: ANN001
    """The real images' embedding in bfloat16 (means summed in fp32), the synthetic branch in fp32:
    the loss of every iteration within 5 % of fp32's, and after 6 iterations the two sets differ by
    less than 15 % of how far the fp32 set moved from its start (0.11 measured)."""
    cfg = replace(TINY, iterations=6, embed=ConvNetSpec(depth=2, width=16))
    fp32 = condense(tiny_data, cfg)
    mixed = condense(tiny_data, replace(cfg, precision="bf16-real"))
    start = condense(tiny_data, replace(cfg, iterations=0)).images
    for a, b in zip(fp32.losses, mixed.losses, strict=True):
        assert abs(a - b) <= 0.05 * abs(a)
    moved = (fp32.images - start).abs().mean()
    assert moved > 0 and (mixed.images - fp32.images).abs().mean() < 0.15 * moved  # measured: 0.11
    assert mixed.images.dtype == torch.float32


def test_native_bf16_is_detected_from_the_cpu_flags() -> None:
    from dmnas.defaults import native_bf16

    assert native_bf16("cpu", "flags : fpu sse2 avx512f avx512_bf16 avx512_vnni")
    assert native_bf16("cpu", "flags : fpu amx_bf16 amx_tile")
    assert not native_bf16("cpu", "flags : fpu sse2 avx2 fma")


def _float64_problem() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    real = torch.randn(12, 5, generator=g, dtype=torch.float64)
    real_groups = torch.arange(3).repeat_interleave(4)
    syn = torch.randn(6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    return real, real_groups, syn, torch.arange(3).repeat_interleave(2)


def test_finite_difference_gradient_of_mean_var_and_mmd_losses() -> None:
    from dmnas.condensation.losses import median_bandwidth, mean_var_loss, mmd_loss

    real, rg, syn, sg = _float64_problem()
    means, sq = segment_mean(real, rg, 3), segment_mean(real * real, rg, 3)
    assert torch.autograd.gradcheck(lambda s: mean_var_loss(means, sq, s, sg), (syn,))
    h = median_bandwidth(real)
    assert torch.autograd.gradcheck(lambda s: mmd_loss(real, rg, s, sg, 3, h), (syn,))


def test_matching_losses_vanish_only_when_distributions_agree() -> None:
    from dmnas.condensation.losses import median_bandwidth, mean_var_loss, mmd_loss

    real, rg, _, _ = _float64_problem()
    means, sq = segment_mean(real, rg, 3), segment_mean(real * real, rg, 3)
    assert mean_var_loss(means, sq, real, rg) == pytest.approx(0.0, abs=1e-12)
    assert mmd_loss(real, rg, real, rg, 3, median_bandwidth(real)) == pytest.approx(0.0, abs=1e-12)
    # same means, other spread: DM's loss is blind to it, the second moment is not
    centred = real - segment_mean(real, rg, 3)[rg]
    wider = segment_mean(real, rg, 3)[rg] + 2 * centred
    assert dm_loss(means, wider, rg) == pytest.approx(0.0, abs=1e-12)
    assert mean_var_loss(means, sq, wider, rg) > 0.1
    assert mmd_loss(real, rg, wider, rg, 3, median_bandwidth(real)) > 0.01


@pytest.mark.parametrize("match", ["mean_var", "mmd"])
def test_condense_with_other_matches_moves_images_and_keeps_default_keys(tiny_data, match: str) -> None:  # noqa: ANN001
    state = condense(tiny_data, replace(TINY, match=match, iterations=3))
    assert torch.isfinite(state.images).all() and len(state.losses) == 3
    assert "match" not in TINY.to_dict() and replace(TINY, match=match).to_dict()["match"] == match
