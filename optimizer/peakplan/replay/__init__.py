"""The replay model: load traces replayed, causally, through `decide()` and an HPA baseline.

Four modules, each one job; import from here, not from them:

- `trace`: a load trace (requests per interval), parsed from CSV text or rows;
- `hpa`: the baseline controller, the Kubernetes HPA v2 algorithm on `behavior`'s step limits;
- `scoring`: the scorer of DESIGN 5 (cost, unserved load, scale changes) and the frontier ratio;
- `simulation`: the causal replay of PeakPilot and the HPA on the same observations.

Pure, like the rest of `peakplan`: no file I/O, no clock. The decision modules never import it.
"""

from peakplan.replay.hpa import HpaConfig, replay_hpa
from peakplan.replay.scoring import (
    FRONTIER_TARGETS,
    PodModel,
    Score,
    frontier_ratio,
    interpolated_frontier_ratio,
    oracle_replicas,
    score,
    total,
)
from peakplan.replay.simulation import (
    ControllerRun,
    Replay,
    ReplaySettings,
    Series,
    baseline,
    baselines,
    replay,
)
from peakplan.replay.trace import Trace, parse_trace, trace_from_rows

__all__ = [
    "FRONTIER_TARGETS",
    "ControllerRun",
    "HpaConfig",
    "PodModel",
    "Replay",
    "ReplaySettings",
    "Score",
    "Series",
    "Trace",
    "baseline",
    "baselines",
    "frontier_ratio",
    "interpolated_frontier_ratio",
    "oracle_replicas",
    "parse_trace",
    "replay",
    "replay_hpa",
    "score",
    "total",
    "trace_from_rows",
]
