"""peakpilot: the ScalingPolicy API, the Kopf operator shell and the CLI around peakplan."""

from typing import Any


def __getattr__(name: str) -> Any:
    """`__version__`, read from the installed metadata when asked for (`--version`): the look-up
    costs ~0.015 s, which every command paid at import."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:  # pyproject.toml is the one place the version is written
        return version("peakpilot")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        return "0+unknown"
