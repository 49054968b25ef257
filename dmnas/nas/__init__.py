"""The search stage: NNI experiments over a ConvNet space, trained on a proxy, ranked against full data.

Only :mod:`dmnas.nas.trial`, :mod:`dmnas.nas.nni_run`, :mod:`dmnas.nas.nni_tuners` (run by
NNI's tuner process) and :mod:`dmnas.nas.pipeline` (``view``)
import NNI; spaces, ground truth, correlation and reports are plain Python.
"""
