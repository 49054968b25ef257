"""Command line: ``dmnas condense | evaluate | cache | search | report | view``.

It parses, calls the Python API (:mod:`dmnas.api`, same names and defaults) and prints; it holds
no policy. It alone configures logging and prints; library code raises :class:`DmnasError`,
reported here as one line with a non-zero exit. Heavy modules (torch, NNI) are imported only
inside the command that runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from dmnas.cli_args import (
    HelpFormatter,
    add_cache_args,
    add_common,
    add_condense_args,
    add_data_args,
    add_eval_args,
    add_report_args,
    add_search_args,
    add_view_args,
)
from dmnas.errors import DmnasError

log = logging.getLogger("dmnas")

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def condense_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``args`` that pick the proxy set (:func:`dmnas.api.condense_job`'s keywords)."""
    from dmnas.cli_args import PROXY_SET_KEYS

    return {k: getattr(args, k) for k in getattr(args, PROXY_SET_KEYS)} | {"quiet": args.quiet}


def condense_job_of(args: argparse.Namespace) -> Any:
    from dmnas.api import condense_job

    return condense_job(**condense_options(args))


def _proxy(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    from dmnas.condensation.proxyset import obtain_proxy

    job = condense_job_of(args)  # quiet=True: no progress line
    data, proxy = obtain_proxy(job)
    return job, data, proxy


def _evaluate(args: argparse.Namespace, job: Any, data: Any, proxy: Any, baseline: bool) -> list[str]:
    from dmnas.condensation.job import eval_config
    from dmnas.condensation.proxyset import evaluate_entry

    ev = eval_config(job, args.eval_runs, args.eval_epochs, args.eval_arch, args.eval_seed)
    return evaluate_entry(job, data, proxy, ev, baseline)


# ---------------------------------------------------------------- commands


def cmd_condense(args: argparse.Namespace) -> int:
    from dmnas.condensation.proxyset import movement_note

    job, data, proxy = _proxy(args)
    cfg, m = job.condense, proxy.manifest
    status = (
        "cache hit"
        if proxy.cache_hit
        else (f"condensed (resumed at iteration {proxy.resumed_from})" if proxy.resumed_from else "condensed")
    )
    loss = m["loss_history"][-1] if m["loss_history"] else float("nan")
    print(
        f"{status}: {proxy.key}  ({cfg.ipc} images/class x {data.num_classes} classes, "
        f"{cfg.iterations} iterations on {m['device']}, {m['wall_seconds']:.1f} s, final loss {loss:.4f})"
    )
    print(movement_note(proxy.movement))
    print(f"entry: {proxy.path}")
    print(f"images: {proxy.grid_path}")
    if args.eval_runs > 0:
        for line in _evaluate(args, job, data, proxy, baseline=True):
            print(f"accuracy {line}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    job, data, proxy = _proxy(args)
    print(f"proxy set: {proxy.key} ({'cached' if proxy.cache_hit else 'condensed now'}) at {proxy.path}")
    for line in _evaluate(args, job, data, proxy, baseline=not args.no_baseline):
        print(line)
    return 0


def _cache_line(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{r['key']}  CORRUPT: {r['error']}"
    c, moved = r["config"]["condense"], r.get("movement")
    return (
        f"{r['key']}  {r['dataset']['name']}  ipc={c['ipc']}  it={c['iterations']}  init={c['init']}  "
        f"seed={c['seed']}  {r['device']}  {r['wall_seconds']:.0f}s  "
        f"moved={'%.3f sd' % moved['moved_sd'] if moved else 'n/a'}  evals={len(r.get('evaluations', {}))}"
    )


def cmd_cache(args: argparse.Namespace) -> int:
    from dmnas.catalog import default_cache_dir
    from dmnas.condensation.cache import Cache

    cache = Cache(Path(args.cache_dir).resolve() if args.cache_dir else default_cache_dir())
    if args.cache_cmd in ("list", "verify"):
        rows = cache.list(verify=True)
        if not rows:
            print(f"no entries in {cache.root}")
        for r in rows:
            state = f"CORRUPT: {r['error']}" if "error" in r else "ok"
            print(_cache_line(r) if args.cache_cmd == "list" else f"{r['key']}  {state}")
        bad = [r for r in rows if "error" in r]
        return EXIT_ERROR if bad and args.cache_cmd == "verify" else 0
    key = cache.resolve(args.key)
    if args.cache_cmd == "show":
        entry = cache.load(key)  # verifies the checksum and the configuration
        m = dict(entry.manifest)
        hist = m.pop("loss_history", [])
        m["loss_history"] = {"n": len(hist), "first": hist[:1], "last": hist[-1:]}
        print(json.dumps(m, indent=2, sort_keys=True))
        print(f"path: {entry.path}")
        return 0
    cache.remove(key)
    print(f"removed {key}")
    return 0


def _search_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``args`` that :class:`dmnas.nas.config.SearchOptions` holds."""
    from dmnas.nas.config import SearchOptions

    out = {k: getattr(args, k) for k in SearchOptions.__dataclass_fields__}
    out["table"] = _table_arg(args.table)
    return out


def _table_arg(table: list[str] | None) -> str | list[str] | None:
    return None if table is None else (table[0] if len(table) == 1 else table)


def print_report(report: Any) -> None:
    print(report.to_markdown(), flush=True)
    for name, path in report.paths.items():
        print(f"report {name}: {path}")


def cmd_search(args: argparse.Namespace) -> int:
    from dmnas.api import search

    opts = _search_options(args)
    if not args.resume:
        opts.update({k: v for k, v in condense_options(args).items() if k != "quiet"}, progress=not args.quiet)
    result = search(args.space, args.proxy, args.tuner, on_report=print_report, **opts)
    print(f"search {result.id}: {len(result.results)} architectures scored; folder {result.folder}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from dmnas.api import report

    print_report(
        report(*args.ids, table=_table_arg(args.table), workdir=args.workdir, full_epochs=args.full_epochs, confirm=args.confirm)
    )
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    from dmnas.nas.nni.experiment import view

    def ready(url: str) -> None:
        print(f"web UI of experiment {args.id}: {url} (Ctrl-C closes it)", flush=True)

    view(args.id, args.port, args.ui_host, on_ready=ready)
    return 0


# ---------------------------------------------------------------- parser and entry point


def _add_condense(p: argparse.ArgumentParser) -> None:
    from dmnas.catalog import dataset_names, default_cache_dir

    p.epilog = f"datasets: {', '.join(dataset_names())}. Cache: {default_cache_dir()}"
    add_common(p), add_data_args(p), add_condense_args(p), add_eval_args(p, runs_default=0)


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    add_common(p), add_data_args(p), add_condense_args(p), add_eval_args(p, runs_default=3)
    p.add_argument("--no-baseline", action="store_true", help="skip the random-real-subset baseline")


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "condense": ("build (or fetch from the cache) a DM proxy set", _add_condense, cmd_condense),
    "evaluate": ("accuracy of ConvNets trained on the proxy set vs a random real subset", _add_evaluate, cmd_evaluate),
    "cache": ("list, show, verify or remove cached proxy sets", add_cache_args, cmd_cache),
    "search": ("NNI search of a ConvNet space on a proxy, with a correlation report", add_search_args, cmd_search),
    "report": ("rank agreement of finished searches with full-data training", add_report_args, cmd_report),
    "view": ("reopen a finished experiment's NNI web UI", add_view_args, cmd_view),
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the invoked command's options are built. Building them imports what their
    help needs (dataset names, proxies, tuners: torch), so ``dmnas --help`` and a mistyped command
    stay instant while ``dmnas search --help`` still lists every choice."""
    args = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args if not a.startswith("-")), None)
    parser = argparse.ArgumentParser(
        prog="dmnas",
        description="Condense a dataset with Distribution Matching, then search ConvNets on the proxy with NNI.",
        epilog="`dmnas COMMAND --help` lists a command's options (datasets, spaces, proxies, tuners).",
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, formatter_class=HelpFormatter)
        p.set_defaults(func=run)
        if name == chosen:
            add(p)
    return parser


class CliFormatter(logging.Formatter):
    """dmnas's own INFO lines read as plain messages; warnings and others say what they are."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno == logging.INFO and record.name.startswith("dmnas"):
            return record.getMessage()
        return f"{record.levelname.lower()}: {record.name}: {record.getMessage()}"


class CliHandler(logging.StreamHandler):
    """Plain lines, except a search's status line (``status_line`` records): redrawn in place on a
    terminal; on a pipe or log file written only when something finished (``status_changed``)."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.drawn = False  # a status line is on screen without its newline

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "status_line", False):
            if self.tty:
                self.stream.write("\r" + self.format(record) + "\x1b[K")
                self.stream.flush()
                self.drawn = True
                return
            if not getattr(record, "status_changed", True):
                return
        elif self.drawn:
            self.stream.write("\n")
            self.drawn = False
        super().emit(record)


def configure_logging(args: argparse.Namespace) -> None:
    level = (
        logging.WARNING
        if getattr(args, "quiet", False)
        else logging.DEBUG
        if getattr(args, "verbose", False)
        else logging.INFO
    )
    handler = CliHandler(sys.stderr)
    handler.setFormatter(CliFormatter())
    # dmnas speaks at the chosen level; other libraries (matplotlib, NNI) only on warnings unless --verbose.
    logging.basicConfig(level=logging.DEBUG if level == logging.DEBUG else logging.WARNING, handlers=[handler])
    logging.getLogger("dmnas").setLevel(level)
    # Third-party chatter (NNI) stays at warnings unless --verbose.
    if level != logging.DEBUG:
        logging.getLogger("nni").setLevel(logging.WARNING)
        # torch.compile's C++ toolchain probe warns about CUDA_HOME on CPU-only machines; harmless.
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)


# What the last line of an interrupted command says (a search prints its `--resume ID` line above).
RESUME_HINT = {
    "condense": "progress was checkpointed, rerun the same command to resume",
    "evaluate": "its proxy set was checkpointed, rerun the same command to resume",
    "search": "continue with the `dmnas search --resume ID` printed above (a condensation still running "
    "resumes when the same command is rerun)",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    configure_logging(args)
    # `kill` gets the same clean stop as Ctrl-C: checkpoint, stop NNI and its trials; and a stop
    # request is remembered, so one swallowed by a finalizer is raised again (dmnas.util.interrupts).
    from dmnas.util import interrupts

    interrupts.install()
    try:
        return int(args.func(args) or 0)
    except DmnasError as err:
        # Several independent problems (e.g. one per machine) are one line each.
        for line in str(err).splitlines() or [""]:
            print(f"dmnas: error: {line}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"dmnas: interrupted; {RESUME_HINT.get(args.command, 'nothing was lost')}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
