"""Which proxy set a user asks for: the options of ``dmnas condense`` (and of the proxy set of a
search) resolved into a :class:`ProxyJob` with the device defaults of :mod:`dmnas.defaults`, the
one place the API and the CLI share; and how a set is evaluated (:class:`EvalConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dmnas.augment import default_strategy
from dmnas.catalog import default_cache_dir
from dmnas.condensation.cache import Cache
from dmnas.condensation.dm import DEFAULT_IPC, CondenseConfig, RunOptions
from dmnas.data import DataConfig
from dmnas.defaults import for_device, resolve_device
from dmnas.errors import DmnasError
from dmnas.models import ConvNetSpec, parse_arch
from dmnas.train import TrainRecipe


@dataclass(frozen=True)
class ProxyJob:
    """Which proxy set to get (data + DM config), and how to run and where to cache it."""

    data: DataConfig
    data_root: Path | None
    condense: CondenseConfig
    run: RunOptions
    cache_dir: Path
    force: bool = False  # recompute even if cached (or corrupt)
    quiet: bool = False  # no progress line

    def __post_init__(self) -> None:
        if self.condense.iterations < 1:
            raise DmnasError(f"--iterations must be a positive integer, got {self.condense.iterations}")

    @property
    def device(self) -> str:
        return self.run.device

    def cache(self) -> Cache:
        return Cache(self.cache_dir)


def parse_pool(text: str | None) -> tuple[ConvNetSpec, ...]:
    """``--embed-pool a,b,c`` -> specs (each name checked, repeats refused)."""
    if not text:
        return ()
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise DmnasError(f"--embed-pool lists an architecture twice: {text}")
    return tuple(parse_arch(n) for n in names)


def proxy_job(
    dataset: str = "fashion_mnist",
    *,
    data_root: Path | str | None = None,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    image_size: int | None = None,
    ipc: int = DEFAULT_IPC,
    iterations: int | None = None,
    init: str = "real",
    strategy: str | None = None,
    batch_real: int = 256,
    lr_img: float = 1.0,
    embed_arch: str | None = None,
    embed_pool: str | None = None,
    match: str = "mean",
    embed_queue: int = 0,
    embed_retire: int = 50,
    precision: str | None = None,
    seed: int = 0,
    device: str = "auto",
    cache_dir: Path | str | None = None,
    checkpoint_every: int = 50,
    real_chunk: int | None = None,
    compile: str = "auto",
    force: bool = False,
    quiet: bool = False,
) -> ProxyJob:
    """The proxy set these options ask for, every value checked and every ``None`` resolved with
    the device's defaults. Keyword names are the CLI's option names."""
    data = DataConfig(
        name=dataset, val_fraction=val_fraction, split_seed=split_seed, image_size=image_size
    )  # checked first: an unknown dataset is the likeliest mistake
    dev = resolve_device(device)
    d = for_device(dev)
    cfg = CondenseConfig(
        ipc=ipc,
        iterations=iterations if iterations is not None else d.iterations,
        lr_img=lr_img,
        batch_real=batch_real,
        init=init,
        strategy=strategy if strategy is not None else default_strategy(dataset),
        embed=parse_arch(embed_arch) if embed_arch else ConvNetSpec(),
        embed_pool=parse_pool(embed_pool),
        match=match,
        embed_queue=embed_queue,
        embed_retire=embed_retire,
        precision=precision or d.precision,
        seed=seed,
    )
    run = RunOptions(
        device=dev,
        real_chunk=real_chunk if real_chunk is not None else d.chunk_for(cfg.precision),
        checkpoint_every=checkpoint_every,
        channels_last=d.channels_last,
        compile=d.compile(cfg.iterations, compile),
    )
    return ProxyJob(
        data=data,
        data_root=Path(data_root) if data_root else None,
        condense=cfg,
        run=run,
        cache_dir=Path(cache_dir).resolve() if cache_dir else default_cache_dir(),
        force=force,
        quiet=quiet,
    )


@dataclass(frozen=True)
class EvalConfig:
    """How a proxy set is evaluated: ``runs`` networks of ``arch`` trained with ``recipe``."""

    runs: int
    recipe: TrainRecipe
    arch: ConvNetSpec | None = None  # None: the embedding network
    seed: int = 0

    def __post_init__(self) -> None:
        if self.runs < 0:
            raise DmnasError(f"--eval-runs must be >= 0, got {self.runs}")


def eval_config(
    job: ProxyJob, runs: int, epochs: int | None = None, arch: str | None = None, seed: int = 0
) -> EvalConfig:
    """Evaluation epochs default to the device's (the paper's 1000 on CUDA)."""
    epochs = epochs if epochs is not None else for_device(job.device).eval_epochs
    return EvalConfig(runs, TrainRecipe(epochs=epochs, strategy=job.condense.strategy), parse_arch(arch) if arch else None, seed)
