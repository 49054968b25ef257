"""The search stage: NNI experiments over a ConvNet space, trained on a proxy, ranked against full data.

Only :mod:`dmnas.search.trial`, :mod:`dmnas.search.experiment`, :mod:`dmnas.search.tuners` (run by
NNI's tuner process) and :mod:`dmnas.search.pipeline` (``view``)
import NNI; spaces, ground truth, correlation and reports are plain Python.
"""
