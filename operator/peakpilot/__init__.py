"""peakpilot: the ScalingPolicy API, the Kopf operator shell and the CLI around peakplan."""

from importlib.metadata import PackageNotFoundError, version

try:  # pyproject.toml is the one place the version is written
    __version__ = version("peakpilot")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
