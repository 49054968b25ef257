"""Infrastructure every room shares: atomic writes, content keys, the registry, config type
checks, the allocator setting and the progress line. Light: no torch at import."""
