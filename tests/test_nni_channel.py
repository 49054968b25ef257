"""The thin trial's NNI protocol (HTTP v3 channel) against a stand-in server that answers as NNI 3.0's
manager does; the real manager is exercised by the worker-mode searches in test_search_workers.py."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from dmnas.nas.nni.channel import HttpTrialChannel, NniModuleChannel, open_channel


class FakeManager:
    """PUT stores a command; GET answers 408 ``timeouts`` times, then the queued parameter (or 410)."""

    def __init__(self, parameter: dict[str, Any] | None, timeouts: int = 1) -> None:
        self.parameter, self.timeouts, self.puts = parameter, timeouts, []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_PUT(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.puts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802
                if owner.timeouts > 0:
                    owner.timeouts -= 1
                    self.send_response(408)
                    self.end_headers()
                    return
                if owner.parameter is None:
                    self.send_response(410)
                    self.end_headers()
                    return
                body = json.dumps({"type": "parameter", "parameter": json.dumps(owner.parameter)}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/env/trial"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def manager() -> Iterator[FakeManager]:
    parameter = {"parameter_id": 7, "parameter_source": "algorithm", "parameters": {"depth": 2, "width": 8}}
    m = FakeManager({**parameter, "parameter_index": 0})
    yield m
    m.server.shutdown()


def test_parameters_then_metrics_in_nni_3_format(manager: FakeManager) -> None:
    ch = HttpTrialChannel(manager.url, "AbCdE")
    assert ch.parameters() == {"depth": 2, "width": 8}  # after one 408 (long poll timed out)
    ch.intermediate(0.25)
    ch.intermediate(0.5)
    ch.final({"default": 0.75, "arch": "d2_w8"})
    assert manager.puts[0] == {"type": "request_parameter"}
    metrics = [json.loads(p["metric"]) for p in manager.puts[1:]]
    assert all(p["type"] == "metric" for p in manager.puts[1:])
    assert [(m["type"], m["sequence"], m["parameter_id"], m["trial_job_id"]) for m in metrics] == [
        ("PERIODICAL", 0, 7, "AbCdE"),
        ("PERIODICAL", 1, 7, "AbCdE"),
        ("FINAL", 0, 7, "AbCdE"),
    ]
    # The value is JSON text inside the metric, as nni.dump writes it (NNI decodes it twice).
    assert json.loads(metrics[0]["value"]) == 0.25 and json.loads(metrics[2]["value"])["default"] == 0.75


def test_nni_can_read_what_the_thin_channel_wrote(manager: FakeManager) -> None:
    nni = pytest.importorskip("nni")
    ch = HttpTrialChannel(manager.url, "t")
    ch.parameters()
    ch.final({"default": 0.5, "test_acc": None, "seed_scores": [0.5]})
    metric = nni.load(manager.puts[-1]["metric"])
    assert nni.load(metric["value"]) == {"default": 0.5, "test_acc": None, "seed_scores": [0.5]}


def test_a_closed_channel_is_an_error_not_empty_parameters() -> None:
    m = FakeManager(None, timeouts=0)
    try:
        with pytest.raises(OSError, match="closed"):
            HttpTrialChannel(m.url, "t").parameters()
    finally:
        m.server.shutdown()


def test_the_channel_follows_the_environment() -> None:
    env = {"NNI_TRIAL_COMMAND_CHANNEL": "http://127.0.0.1:1/x", "NNI_TRIAL_JOB_ID": "a"}
    assert isinstance(open_channel(env), HttpTrialChannel)
    pytest.importorskip("nni")
    # The remote service's file channel, or none at all: nni's own client.
    assert isinstance(open_channel({"NNI_PLATFORM": "remote"}), NniModuleChannel)
