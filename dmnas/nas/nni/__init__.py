"""NNI plumbing: the experiment and its manager, the metric channel, dmnas's tuners, GPU sharing."""
