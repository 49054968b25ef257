"""One home for device defaults: the API, the CLI and --help resolve the same configuration."""

from __future__ import annotations

import pytest

from dmnas import defaults


def cli_job(argv: list[str]):  # noqa: ANN201
    from dmnas.cli import build_parser, condense_job_of

    return condense_job_of(build_parser(["condense"]).parse_args(["condense", *argv]))


@pytest.fixture(params=["cpu", "cuda"])
def device(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "cuda":  # a faked CUDA device: resolving defaults must not need a real one
        import torch

        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    return request.param


def test_api_and_cli_resolve_the_same_condense_config(device: str, tmp_path) -> None:  # noqa: ANN001
    from dmnas.api import condense_job

    api = condense_job(device=device, cache_dir=tmp_path)
    cli = cli_job(["--device", device, "--cache-dir", str(tmp_path)])
    assert api == cli
    d = defaults.for_device(device)
    assert api.condense.iterations == d.iterations
    assert api.condense.precision == d.precision
    assert api.run.real_chunk == d.chunk_for(api.condense.precision) and api.run.channels_last == d.channels_last
    assert api.run.compile == (device == "cpu")  # the CPU default clears the compile threshold


def test_explicit_values_win_and_small_runs_stay_eager() -> None:
    job = cli_job(["--device", "cpu", "--iterations", "7"])
    assert job.condense.iterations == 7 and not job.run.compile
    assert defaults.CPU_ITERATIONS >= defaults.COMPILE_MIN_ITERATIONS


def test_eval_and_full_epochs_come_from_the_defaults(device: str, tmp_path) -> None:  # noqa: ANN001
    from dmnas.api import condense_job, search_config
    from dmnas.condensation.job import eval_config

    job = condense_job(device=device, cache_dir=tmp_path)
    assert eval_config(job, runs=1).recipe.epochs == defaults.EVAL_EPOCHS[device]
    cfg = search_config("convnet_tiny", "dm", "grid", job)
    assert cfg.full_recipe.epochs == defaults.FULL_EPOCHS[device]
    assert cfg.trials_per_gpu == defaults.TRIALS_PER_GPU


def test_help_shows_each_default_once() -> None:
    from dmnas.cli import build_parser

    parser = build_parser(["condense"])
    text = parser._subparsers._group_actions[0].choices["condense"].format_help()  # noqa: SLF001
    assert "(default: None)" not in text
    assert f"{defaults.CUDA_ITERATIONS} on CUDA, {defaults.CPU_ITERATIONS} on CPU" in text


def test_trial_threads_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert defaults.for_device("cpu").trial_threads(2) == 4
    assert defaults.for_device("cpu").trial_threads(16) == 1
    assert defaults.for_device("cuda").trial_threads(2) == 0


def test_cpu_precision_follows_native_bfloat16(monkeypatch) -> None:  # noqa: ANN001
    """bf16 for the real branch only where the CPU runs it natively; fp32 elsewhere (the fallback)."""
    from dmnas import defaults

    monkeypatch.setattr(defaults, "native_bf16", lambda device, flags=None: True)
    assert defaults.for_device("cpu").precision == "bf16-real"
    monkeypatch.setattr(defaults, "native_bf16", lambda device, flags=None: False)
    assert defaults.for_device("cpu").precision == "fp32"
    assert defaults.for_device("cuda").precision == "tf32"


def test_search_defaults_live_in_one_place() -> None:
    """dmnas.search()'s keywords are SearchOptions' fields with its defaults, and --help shows them."""
    import dataclasses
    import inspect

    from dmnas.api import search
    from dmnas.cli import build_parser
    from dmnas.nas.config import SEARCH, SearchConfig, SearchOptions

    params = {n: p.default for n, p in inspect.signature(search).parameters.items() if p.kind is p.KEYWORD_ONLY}
    params.pop("progress")
    assert params == {f.name: getattr(SEARCH, f.name) for f in dataclasses.fields(SearchOptions)}
    args = build_parser(["search"]).parse_args(["search"])
    for f in dataclasses.fields(SearchOptions):
        assert getattr(args, f.name) == getattr(SEARCH, f.name), f.name
    shared = set(SearchConfig.__dataclass_fields__) & set(SearchOptions.__dataclass_fields__)
    for name in shared:  # the resolved config's own defaults agree too
        default = SearchConfig.__dataclass_fields__[name].default
        if default is not dataclasses.MISSING:
            assert default == getattr(SEARCH, name), name


def test_api_and_cli_resolve_the_same_search_config(device: str, tmp_path) -> None:  # noqa: ANN001
    from dmnas.api import condense_job, search_config
    from dmnas.cli import _search_options, build_parser, condense_job_of
    from dmnas.nas.config import SearchOptions

    argv = ["search", "--device", device, "--cache-dir", str(tmp_path), "--workdir", str(tmp_path / "w"),
            "--concurrency", "2", "--proxy-draws", "3", "--table", "shipped", "heldout"]  # fmt: skip
    args = build_parser(["search"]).parse_args(argv)
    cli = search_config(args.space, args.proxy, args.tuner, condense_job_of(args), SearchOptions(**_search_options(args)))
    job = condense_job(device=device, cache_dir=tmp_path)
    options = SearchOptions(workdir=tmp_path / "w", concurrency=2, proxy_draws=3, table=["shipped", "heldout"])
    api = search_config("convnet_small", "dm", "grid", job, options)
    assert api == cli
    assert api.proxy_draws == 3 and api.full_recipe.epochs == defaults.FULL_EPOCHS[device]


def test_an_unknown_keyword_is_one_clear_line(tmp_path) -> None:  # noqa: ANN001
    import dmnas
    from dmnas.errors import DmnasError

    with pytest.raises(DmnasError, match="unknown option 'ipcc'"):
        dmnas.search("convnet_tiny", proxy="random", ipcc=2, workdir=tmp_path)
    with pytest.raises(DmnasError, match="--concurrency must be an integer"):
        dmnas.search("convnet_tiny", proxy="random", concurrency="2", workdir=tmp_path)


def test_embed_space_is_the_pool_of_the_space(tmp_path) -> None:  # noqa: ANN001
    from dmnas.api import condense_job
    from dmnas.errors import DmnasError
    from dmnas.nas.space import load_space

    job = condense_job(device="cpu", cache_dir=tmp_path, embed_space="convnet_tiny")
    assert [s.name for s in job.condense.embed_pool] == [s.name for s in load_space("convnet_tiny").specs()]
    assert job == cli_job(["--device", "cpu", "--cache-dir", str(tmp_path), "--embed-space", "convnet_tiny"])
    with pytest.raises(DmnasError, match="--embed-space and --embed-pool both name"):
        condense_job(device="cpu", embed_space="convnet_tiny", embed_pool="d1_w8_relu_none_avgpooling,d2_w8_relu_none_avgpooling")


@pytest.mark.parametrize(
    ("flags", "precision", "chunk"),
    [
        ("avx512f amx_bf16 avx512_bf16", "bf16-real", defaults.AMX_BF16_REAL_CHUNK),  # measured: 32 beats 16 compiled
        ("avx512f amx_bf16 avx512_bf16", "fp32", defaults.CPU_REAL_CHUNK),  # fp32 keeps its own
        ("avx512f avx512_bf16", "bf16-real", defaults.CPU_REAL_CHUNK),  # no AMX: not measured, unchanged
        ("sse2 avx2", "fp32", defaults.CPU_REAL_CHUNK),
    ],
)
def test_the_real_chunk_follows_the_precision_and_amx(flags: str, precision: str, chunk: int, tmp_path) -> None:  # noqa: ANN001
    d = defaults.for_device("cpu", cpu_flags=flags)
    assert d.chunk_for(precision) == chunk
    assert d.precision == ("bf16-real" if "bf16" in flags else "fp32")
    assert defaults.for_device("cuda", cpu_flags=flags).chunk_for(precision) == 0  # CUDA: one batch


def test_the_resolved_chunk_reaches_the_job_and_an_explicit_one_wins(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    from dmnas.api import condense_job

    amx = defaults.for_device("cpu", cpu_flags="amx_bf16 avx512_bf16")
    monkeypatch.setattr("dmnas.condensation.job.for_device", lambda dev: amx)
    assert condense_job(device="cpu", cache_dir=tmp_path).run.real_chunk == defaults.AMX_BF16_REAL_CHUNK
    assert condense_job(device="cpu", cache_dir=tmp_path, precision="fp32").run.real_chunk == defaults.CPU_REAL_CHUNK
    assert condense_job(device="cpu", cache_dir=tmp_path, real_chunk=8).run.real_chunk == 8
