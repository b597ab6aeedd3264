"""rindle-mux: Mux Video as a rindle streaming provider."""

from rindle_mux import _rindle_core  # noqa: F401  (first: is this the rindle media library?)
from rindle_mux.jwt import load_signing_key, sign_playback_token
from rindle_mux.provider import MuxProvider

__all__ = ["MuxProvider", "load_signing_key", "sign_playback_token"]
__version__ = "0.1.0"
