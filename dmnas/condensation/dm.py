"""Distribution Matching (Zhao & Bilen, WACV 2023): the loss and the condensation loop.

Each iteration draws a fresh randomly initialised embedding network with frozen weights,
applies one siamese augmentation draw per class to that class's real batch and synthetic
images, and moves the synthetic pixels so that the per-class mean embeddings match:
``loss = sum_c || mean embed(real_c) - mean embed(syn_c) ||^2``.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator

import torch

from dmnas.augment import AugParams, apply_draw, parse_strategy, sample_draw
from dmnas.catalog import DEFAULT_IPC, DEFAULT_STRATEGY
from dmnas.data import Dataset
from dmnas.errors import DmnasError
from dmnas.condensation.embedding import (
    PRECISIONS, REAL_BF16, Embedder, autocast_for, tf32_matmuls, bf16_copy, real_class_means, real_features,
)
from dmnas.condensation.losses import MATCHINGS, RealEmbeddings, segment_mean
from dmnas.condensation.queue import TRAIN_BATCH, EmbedQueue
from dmnas.util.fieldcheck import check_field_types
from dmnas.models import ConvNetSpec, build_convnet

log = logging.getLogger(__name__)

INITS = ("real", "noise")


@dataclass(frozen=True)
class CondenseConfig:
    """Everything that determines the synthetic set (hashed into the cache key)."""

    ipc: int = DEFAULT_IPC
    iterations: int = 20000
    lr_img: float = 1.0
    momentum: float = 0.5
    batch_real: int = 256
    init: str = "real"
    strategy: str = DEFAULT_STRATEGY
    embed: ConvNetSpec = field(default_factory=ConvNetSpec)
    aug: AugParams = field(default_factory=AugParams)
    precision: str = "fp32"
    seed: int = 0
    # A pool of embedding architectures, one drawn per iteration (empty: always ``embed``).
    # Matching in one architecture's feature space may favour architectures like it; IDM (Zhao et
    # al., CVPR 2023) matches under varied networks instead. Whether that ranks better here is
    # measured in benchmarks/results/proxy_ablation.md.
    embed_pool: tuple[ConvNetSpec, ...] = ()
    match: str = "mean"  # a name in losses.MATCHINGS
    # IDM-style trained embedding networks (condensation/queue.py): 0 = a fresh random network per
    # iteration (DM); N = a queue of N networks, each trained one step per use, retired after
    # ``embed_retire`` steps.
    embed_queue: int = 0
    embed_retire: int = 50

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.ipc < 1:
            raise DmnasError(f"--ipc must be a positive integer, got {self.ipc}")
        if self.iterations < 0:
            raise DmnasError(f"--iterations must be >= 0, got {self.iterations}")
        if self.batch_real < 1:
            raise DmnasError(f"--batch-real must be positive, got {self.batch_real}")
        if not self.lr_img > 0:
            raise DmnasError(f"--lr-img must be positive, got {self.lr_img}")
        if not 0 <= self.momentum < 1:
            raise DmnasError(f"DM momentum must be in [0, 1), got {self.momentum}")
        if self.init not in INITS:
            raise DmnasError(f"unknown --init {self.init!r}; valid: {', '.join(INITS)}")
        if self.precision not in PRECISIONS:
            raise DmnasError(f"unknown --precision {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        parse_strategy(self.strategy)
        MATCHINGS.get(self.match)  # an unknown one is refused with the valid names
        if len(self.embed_pool) == 1:
            raise DmnasError("an embedding pool needs >= 2 architectures (one is just --embed-arch)")
        if self.embed_queue < 0:
            raise DmnasError(f"--embed-queue must be >= 0 (0: a fresh network per iteration), got {self.embed_queue}")
        if self.embed_retire < 1:
            raise DmnasError(f"--embed-retire must be a positive number of training steps, got {self.embed_retire}")
        if self.embed_queue and self.embed_pool:
            raise DmnasError("--embed-queue trains networks of --embed-arch; it cannot be combined with an embedding pool")

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        if self.match == "mean":  # added later: omitted at its default so that earlier keys stay valid
            del d["match"]
        if not self.embed_queue:  # likewise
            del d["embed_queue"], d["embed_retire"]
        if not self.embed_pool:
            # Added later: omitted at its default so that every earlier cache key stays valid.
            del d["embed_pool"]
        else:
            d["pool_loss"] = "relative"  # see reference_scale(); sets made before it differ
        return d

    def embed_for(self, gen: torch.Generator) -> ConvNetSpec:
        """This iteration's embedding architecture (draws from ``gen`` only when there is a pool,
        so runs without one keep their random stream)."""
        if not self.embed_pool:
            return self.embed
        return self.embed_pool[int(torch.randint(len(self.embed_pool), (1,), generator=gen))]


@dataclass(frozen=True)
class RunOptions:
    """How a run executes; does not change the result on a given device (not in the cache key)."""

    device: str = "cpu"
    real_chunk: int = 0  # images per real forward; 0 = all classes in one batch
    checkpoint_every: int = 50  # the CLI's --checkpoint-every default
    channels_last: bool = False
    compile: bool = False  # torch.compile the embedding (fuses norm/act/pool); pays off over many iterations

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.checkpoint_every < 1:
            raise DmnasError(f"--checkpoint-every must be a positive number of iterations, got {self.checkpoint_every}")
        if self.real_chunk < 0:
            raise DmnasError(f"--real-chunk must be >= 0 (0: all real images in one forward), got {self.real_chunk}")


@dataclass
class CondenseState:
    """Everything needed to continue a run exactly where it stopped."""

    iteration: int
    images: torch.Tensor  # (C*ipc, ch, h, w) on CPU
    momentum_buffer: torch.Tensor | None
    generator_state: torch.Tensor
    losses: list[float]
    seconds: float = 0.0
    iteration_seconds: list[float] = field(default_factory=list)
    embed_queue: list[dict[str, object]] | None = None  # the trained networks (--embed-queue), if any

    def to_payload(self) -> dict[str, object]:
        return {
            "iteration": self.iteration,
            "images": self.images,
            "momentum_buffer": self.momentum_buffer,
            "generator_state": self.generator_state,
            "losses": self.losses,
            "seconds": self.seconds,
            "iteration_seconds": self.iteration_seconds,
            "embed_queue": self.embed_queue,
        }

    @classmethod
    def from_payload(cls, p: dict[str, object]) -> "CondenseState":
        return cls(
            int(p["iteration"]),
            p["images"],
            p["momentum_buffer"],
            p["generator_state"],  # type: ignore[arg-type]
            list(p["losses"]),
            float(p.get("seconds", 0.0)),
            list(p.get("iteration_seconds", [])),  # type: ignore[arg-type]
            p.get("embed_queue"),  # type: ignore[arg-type]
        )


def initial_images(data: Dataset, cfg: CondenseConfig, gen: torch.Generator) -> torch.Tensor:
    """Random real images of each class (``init='real'``) or standard normal noise."""
    c, h, w = data.image_shape
    if cfg.init == "noise":
        return torch.randn(data.num_classes * cfg.ipc, c, h, w, generator=gen)
    picks = []
    for idx in data.class_indices():
        picks.append(idx[torch.randperm(len(idx), generator=gen)[: cfg.ipc]])
    return data.train_x[torch.cat(picks)].clone()


def check_ipc(data: Dataset, ipc: int) -> None:
    smallest = min(len(i) for i in data.class_indices())
    if ipc > smallest:
        raise DmnasError(f"--ipc {ipc} is larger than the smallest class ({smallest} training images)")


def sample_real_batch(
    class_indices: list[torch.Tensor], batch_real: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of up to ``batch_real`` random images per class and their class (without replacement)."""
    idx, groups = [], []
    for c, members in enumerate(class_indices):
        chosen = members[torch.randperm(len(members), generator=gen)[:batch_real]]
        idx.append(chosen)
        groups.append(torch.full((len(chosen),), c, dtype=torch.long))
    return torch.cat(idx), torch.cat(groups)


def reference_scale(
    data: Dataset, cfg: CondenseConfig, device: torch.device, chunk: int, memory_format: torch.memory_format
) -> float:
    """Squared norm of the real class means under one ``cfg.embed`` network (its own seeded
    generator: the run's random stream is untouched).

    With a pool of embedding networks, feature scales differ by ~100x between architectures
    (Fashion-MNIST: ~5.5e3 for the paper's ConvNet-3, ~5e5 for a groupnorm ConvNet-4 without
    pooling), so a plain loss lets the largest dominate and at --lr-img 1.0 diverged (measured:
    loss 90 -> 3000 in 100 iterations, pixels up to 30 sd). Each iteration's loss is therefore
    made relative to its own real means' squared norm, times this scale, so that --lr-img keeps
    the step size it has with ``cfg.embed`` alone."""
    gen = torch.Generator().manual_seed(cfg.seed)
    net = build_convnet(cfg.embed, data.image_shape, data.num_classes, generator=gen).to(
        device, memory_format=memory_format
    )
    net.train()
    net.requires_grad_(False)
    idx, groups = sample_real_batch(data.class_indices(), cfg.batch_real, gen)
    real = data.train_x[idx].to(device).contiguous(memory_format=memory_format)
    means = real_class_means(net.embed, real, groups.to(device), data.num_classes, chunk)
    return float(means.pow(2).sum())


@contextlib.contextmanager
def _deferred_interrupts() -> Iterator[Callable[[], bool]]:
    """Turn SIGINT/SIGTERM into a flag polled between iterations (main thread only)."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag.is_set
        return
    # A signal the parent chose to ignore (`cmd &` in a script ignores SIGINT) stays ignored.
    previous = {
        sig: h
        for sig in (signal.SIGINT, signal.SIGTERM)
        if (h := signal.getsignal(sig)) is not signal.SIG_IGN
    }

    def handler(signum: int, frame: object) -> None:
        flag.set()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield flag.is_set
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


Checkpointer = Callable[[CondenseState], None]
Progress = Callable[[int, int, float], None]


def condense(
    data: Dataset,
    cfg: CondenseConfig,
    opts: RunOptions = RunOptions(),
    resume: CondenseState | None = None,
    checkpoint: Checkpointer | None = None,
    progress: Progress | None = None,
) -> CondenseState:
    """Run DM from scratch or from ``resume``; returns the final state (images on CPU).

    SIGINT/SIGTERM stop the loop at the next iteration boundary: the state is checkpointed, then
    KeyboardInterrupt propagates (so a rerun resumes to exactly the uninterrupted result).
    """
    check_ipc(data, cfg.ipc)
    device = torch.device(opts.device)
    kinds = parse_strategy(cfg.strategy)
    n_classes = data.num_classes
    in_shape = data.image_shape
    gen = torch.Generator()  # CPU generator: the same stream on every device
    memory_format = torch.channels_last if opts.channels_last else torch.contiguous_format

    def fresh_net(spec: ConvNetSpec, g: torch.Generator) -> torch.nn.Module:
        net = build_convnet(spec, in_shape, n_classes, generator=g).to(device, memory_format=memory_format)
        net.train()  # batchnorm uses batch statistics, as in the reference
        net.requires_grad_(False)
        return net

    def queued_net(g: torch.Generator) -> torch.nn.Module:
        return fresh_net(cfg.embed, g)

    queue: EmbedQueue | None = None
    if resume is None:
        gen.manual_seed(cfg.seed)
        images = initial_images(data, cfg, gen)
        if cfg.embed_queue:
            queue = EmbedQueue.fresh(queued_net, cfg.embed_queue, cfg.embed_retire, gen)
        state = CondenseState(0, images, None, gen.get_state(), [])
    else:
        state = resume
        gen.set_state(state.generator_state)
        if cfg.embed_queue:
            if state.embed_queue is None:
                raise DmnasError("this checkpoint holds no embedding queue; rerun with --force")
            queue = EmbedQueue.from_state(queued_net, cfg.embed_retire, state.embed_queue)

    train_x = data.train_x.to(device).contiguous(memory_format=memory_format)  # on the device once
    class_indices = data.class_indices()
    syn = state.images.to(device).contiguous(memory_format=memory_format).requires_grad_(True)
    syn_groups = torch.arange(n_classes).repeat_interleave(cfg.ipc).to(device)
    opt = torch.optim.SGD([syn], lr=cfg.lr_img, momentum=cfg.momentum)
    if state.momentum_buffer is not None:
        opt.state[syn]["momentum_buffer"] = state.momentum_buffer.to(device).contiguous(
            memory_format=memory_format
        )
    losses = list(state.losses)
    iteration_seconds = list(state.iteration_seconds)
    it = state.iteration
    # One compiled graph serves one architecture: a pool runs eagerly.
    use_compile = (
        opts.compile and not cfg.embed_pool and cfg.embed.norm != "batchnorm" and it < cfg.iterations
    )
    # The template only provides the structure; its throwaway generator leaves every RNG stream alone.
    template = (
        build_convnet(cfg.embed, in_shape, n_classes, torch.Generator()).to(
            device, memory_format=memory_format
        )
        if use_compile
        else None
    )
    embedder = Embedder(template, use_compile)
    ref_scale = (
        reference_scale(
            data, cfg, device, 0 if cfg.embed.norm == "batchnorm" else opts.real_chunk, memory_format
        )
        if cfg.embed_pool
        else 1.0
    )
    t0 = time.perf_counter()

    def snapshot() -> CondenseState:
        buf = opt.state[syn].get("momentum_buffer")
        return CondenseState(
            # copy=True: on CPU .cpu() would alias the tensors the loop keeps updating in place.
            it,
            syn.detach().to("cpu", copy=True).contiguous(),
            None if buf is None else buf.detach().to("cpu", copy=True).contiguous(),
            gen.get_state(),
            list(losses),
            state.seconds + time.perf_counter() - t0,
            list(iteration_seconds),
            None if queue is None else queue.state(),
        )

    matching = MATCHINGS.get(cfg.match)
    with _deferred_interrupts() as interrupted, tf32_matmuls(cfg.precision == "tf32"):
        while it < cfg.iterations:
            t_it = time.perf_counter()
            spec = cfg.embed_for(gen)
            net = queue.draw(gen) if queue is not None else fresh_net(spec, gen)
            # Batchnorm statistics mix the batch, so its real batch must stay whole (as in the reference).
            chunk = 0 if spec.norm == "batchnorm" else opts.real_chunk
            draw = sample_draw(kinds, n_classes, gen, in_shape[1:], cfg.aug, device=device)
            idx, real_groups = sample_real_batch(class_indices, cfg.batch_real, gen)
            real_groups = real_groups.to(device)
            with autocast_for(device, cfg.precision):
                real = apply_draw(train_x[idx.to(device)], real_groups, draw)
                real_net = net
                if cfg.precision == REAL_BF16:  # augmented in fp32, embedded in bf16 (native kernels)
                    real_net, real = bf16_copy(net), real.to(torch.bfloat16)
                embed = lambda v, n=real_net: embedder(n, v)  # noqa: E731
                if matching.needs_features:
                    feats = real_features(embed, real, chunk)
                    real_emb = RealEmbeddings(segment_mean(feats, real_groups, n_classes), feats, real_groups)
                else:
                    real_emb = RealEmbeddings(real_class_means(embed, real, real_groups, n_classes, chunk))
                syn_feats = embedder(net, apply_draw(syn, syn_groups, draw)).float()
            loss = matching.loss(real_emb, syn_feats, syn_groups, n_classes)
            if cfg.embed_pool and not matching.scale_free:
                loss = loss * (ref_scale / real_emb.means.pow(2).sum().clamp_min(1e-12))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if queue is not None:  # after the DM step: the set is matched under the network as drawn
                idx, labels = sample_real_batch(class_indices, max(1, TRAIN_BATCH // n_classes), gen)
                queue.train_drawn(train_x[idx.to(device)], labels.to(device), gen)
            it += 1
            losses.append(float(loss.detach()))  # .item() also waits for the device, so the timing is real
            iteration_seconds.append(time.perf_counter() - t_it)
            if progress is not None:
                progress(it, cfg.iterations, losses[-1])
            if interrupted():
                # Stop only at an iteration boundary so the checkpoint is exactly resumable.
                if checkpoint is not None:
                    checkpoint(snapshot())
                raise KeyboardInterrupt
            if (
                checkpoint is not None
                and opts.checkpoint_every > 0
                and it % opts.checkpoint_every == 0
                and it < cfg.iterations
            ):
                checkpoint(snapshot())
    return snapshot()
