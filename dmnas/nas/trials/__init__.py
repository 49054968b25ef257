"""One trial: its context and parameters, the proxies it trains on, the NNI adapter, warm workers."""
