"""The search stage: NNI experiments over a ConvNet space, trained on a proxy, ranked against full data.

NNI is imported by the NNI plumbing only -- :mod:`~dmnas.nas.nni_run`, :mod:`~dmnas.nas.nni_channel`,
:mod:`~dmnas.nas.nni_tuners` and :mod:`~dmnas.nas.tuner_bohb` (run by NNI's tuner process),
:mod:`~dmnas.nas.gpu_share`, :mod:`~dmnas.nas.machines` and the trial adapter :mod:`~dmnas.nas.trial`;
spaces, ground truth, correlation and reports are plain Python.
"""
