# rindle-s3's first import: refuse a `rindle` that is not the rindle media library. The check
# and its messages are rindle.core_identity.require_core's. Only a rindle that is missing,
# or is another project's (the name on the public index), cannot hold it; that is said
# here, with what was found: the foreign module (its path), or why rindle did not import.
from __future__ import annotations

import sys

try:
    from rindle.core_identity import require_core
except ImportError as e:
    raise ImportError(f"rindle-s3: the installed 'rindle' is not the rindle media library "
                      f"({sys.modules.get('rindle', e)}); install rindle from a checkout") from e
require_core("rindle-s3", (1,))
