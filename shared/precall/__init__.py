"""Pre-call voice cloning: caller mappings, the clone cache, call logs and clone events."""
