"""The search stage: NNI experiments over a ConvNet space, trained on a proxy, ranked against full data.

Three rooms:

- here, the orchestration: :mod:`~dmnas.nas.config` (what a search is), :mod:`~dmnas.nas.space`,
  :mod:`~dmnas.nas.tuners` (the registry; no NNI import), :mod:`~dmnas.nas.run` and
  :mod:`~dmnas.nas.resume`, :mod:`~dmnas.nas.folder` (the search's files), :mod:`~dmnas.nas.status`
  and :mod:`~dmnas.nas.remote` (other machines over SSH);
- :mod:`dmnas.nas.nni`, the NNI plumbing: the experiment, its manager process, the metric channel,
  dmnas's own tuners, GPU sharing, the manager's patch and the tuner's guard;
- :mod:`dmnas.nas.trials`, one trial: what it receives (context, parameters), what it trains on
  (the proxies, zero-cost scores), the NNI adapter and the warm workers that run it.

NNI is imported only by :mod:`dmnas.nas.nni`, :mod:`dmnas.nas.remote` and the trial adapter
:mod:`dmnas.nas.trials.adapter`; spaces, ground truth, correlation and reports are plain Python.
"""
