"""The headless OBS Studio harness lives in the package (the soak uses it too)."""

from anchor.harness.obs_studio import (
    MISSING,
    ObsHarnessError,
    ObsProbe,
    ObsRequestFailed,
    ObsStudio,
)

__all__ = ["MISSING", "ObsHarnessError", "ObsProbe", "ObsRequestFailed", "ObsStudio"]
