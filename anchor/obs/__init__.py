"""OBS Studio as the broadcast sink, driven over obs-websocket v5.

`ObsController` builds and keeps the engine's scene, sets captions, starts outputs and polls
stats; `ObsError` carries OBS's own status code and comment; `ObsUnavailable` means OBS could
not be asked at all.
"""

from anchor.obs.controller import ObsController
from anchor.obs.session import ObsError, ObsUnavailable

__all__ = ["ObsController", "ObsError", "ObsUnavailable"]
