"""The search stage: NNI experiments over a ConvNet space, trained on a proxy, ranked against full data.

Only :mod:`dmnas.search.trial`, :mod:`dmnas.search.experiment` and :mod:`dmnas.search.pipeline` (``view``)
import NNI; spaces, ground truth, correlation and reports are plain Python.
"""
