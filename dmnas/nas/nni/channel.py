"""NNI 3.0's trial protocol, spoken without ``import nni`` (which costs seconds per trial: it pulls in
scipy.stats), for the thin trial client of worker mode.

NNI 3.0 is frozen (its last release), and so is this protocol: its v3 local training service puts
an HTTP URL in ``NNI_TRIAL_COMMAND_CHANNEL``; a trial PUTs ``{"type": "request_parameter"}`` and
GETs ``{"type": "parameter", "parameter": <JSON text>}`` (408: ask again, 410: closed), then PUTs
``{"type": "metric", "metric": <JSON text>}`` commands (read from NNI 3.0's
``nni/runtime/trial_command_channel/v3.py`` and ``command_channel/http.py``). Every other channel
(the remote service's file channel, a custom ``import://`` one, none outside an experiment) goes
through ``nni`` itself: :func:`open_channel` decides.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Protocol

CHANNEL_ENV = "NNI_TRIAL_COMMAND_CHANNEL"
JSON_TRICKS_MARK = '"__'  # json_tricks' typed values ("__ndarray__", ...): only nni can decode them


class TrialChannel(Protocol):
    """What a trial needs from NNI: its parameters, then intermediate and final results."""

    def parameters(self) -> dict[str, Any]: ...

    def intermediate(self, value: float) -> None: ...

    def final(self, value: dict[str, Any]) -> None: ...


def _request(url: str, method: str, body: dict[str, Any] | None = None, timeout: float = 60.0) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@dataclass
class HttpTrialChannel:
    """The v3 HTTP channel. NNI's own client uses the same commands (see the module docstring)."""

    url: str
    trial_id: str
    parameter_id: Any = None
    sequence: int = 0
    received: dict[str, Any] = field(default_factory=dict)

    def _send(self, command: dict[str, Any]) -> None:
        status, text = _request(self.url, "PUT", command)
        if status != 200:
            raise OSError(f"NNI trial channel {self.url}: PUT answered {status} {text[:200]!r}")

    def _receive(self) -> dict[str, Any] | None:
        while True:
            status, text = _request(self.url, "GET")
            if status == 200:
                return json.loads(text)
            if status == 408:  # long poll timed out: ask again
                continue
            if status == 410:  # the channel is closed (the trial is being stopped)
                return None
            raise OSError(f"NNI trial channel {self.url}: GET answered {status} {text[:200]!r}")

    def parameters(self) -> dict[str, Any]:
        self._send({"type": "request_parameter"})
        reply = self._receive()
        if reply is None:
            raise OSError("NNI closed the trial channel before sending parameters")
        if reply.get("type") != "parameter":
            raise OSError(f"NNI trial channel: expected parameters, got {reply.get('type')!r}")
        text = reply["parameter"]
        if JSON_TRICKS_MARK in text:  # typed values only nni can decode; costs its import, once
            import nni

            record = nni.load(text)
        else:
            record = json.loads(text)
        self.received = record
        self.parameter_id = record.get("parameter_id")
        return dict(record.get("parameters") or {})

    def _metric(self, kind: str, sequence: int, value: Any) -> None:
        metric = {
            "parameter_id": self.parameter_id,
            "trial_job_id": self.trial_id,
            "type": kind,
            "sequence": sequence,
            "value": json.dumps(value),
        }
        self._send({"type": "metric", "metric": json.dumps(metric)})

    def intermediate(self, value: float) -> None:
        self._metric("PERIODICAL", self.sequence, value)
        self.sequence += 1

    def final(self, value: dict[str, Any]) -> None:
        self._metric("FINAL", 0, value)


class NniModuleChannel:
    """Any other channel: through ``nni`` itself (its import is paid once per trial)."""

    def __init__(self) -> None:
        import nni

        self._nni = nni

    def parameters(self) -> dict[str, Any]:
        return dict(self._nni.get_next_parameter() or {})

    def intermediate(self, value: float) -> None:
        self._nni.report_intermediate_result(value)

    def final(self, value: dict[str, Any]) -> None:
        self._nni.report_final_result(value)


def open_channel(environ: dict[str, str] | None = None) -> TrialChannel:
    """The HTTP channel where NNI names one, else ``nni``'s own."""
    env = os.environ if environ is None else environ
    url = env.get(CHANNEL_ENV) or ""
    if url.startswith("http://"):
        return HttpTrialChannel(url, env.get("NNI_TRIAL_JOB_ID", "standalone"))
    return NniModuleChannel()
