"""Audio helpers: PCM conversion, resampling and loudness (encoding comes with synthesis)."""
