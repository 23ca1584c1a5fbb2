"""peakpilot: the ScalingPolicy API, the Kopf operator shell and the CLI around peakplan."""

__version__ = "0.1.0"
