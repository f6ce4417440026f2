"""The residual stream's scale, layer by layer: a probe-time measurement.

For each point of the stream (entering layer 0, 1, …, and at the top, before the final
LayerNorm if there is one) the standard deviation of each real token's vector across its
channels, averaged over the real tokens (padding left out). Without LayerNorm nothing
rescales the stream, so this is where a reader sees it grow.
"""

from __future__ import annotations

import numpy as np

PAD_ID = 0  # <pad>


def stream_scale(stream: list[np.ndarray], tokens: np.ndarray) -> list[float]:
    """`stream`: ForwardResult.stream, (B,T) per point; `tokens`: the (B,T) input ids."""
    real = tokens != PAD_ID
    if not real.any():
        return [float("nan")] * len(stream)
    return [float(point[real].astype(np.float64).mean()) for point in stream]
