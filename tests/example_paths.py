"""Where the tests find example workflows.

``EXAMPLES`` is ours (``tests/examples/``, see its README): the parser, engine and processor tests use it, so they
need nothing outside this repository. ``DOCS_EXAMPLES`` is the PanDA documentation's set, in a checkout of the
shared workspace beside this one (or where ``PANDAJEDI_WF_DOCS_EXAMPLES`` points); the tests that check those files
themselves are marked ``needs_docs_examples`` and skip, naming the path, when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent / "examples"
DOCS_EXAMPLES = Path(os.environ.get("PANDAJEDI_WF_DOCS_EXAMPLES") or Path(__file__).resolve().parents[1].parent / "shared" / "examples" / "pchain")
needs_docs_examples = pytest.mark.skipif(not DOCS_EXAMPLES.is_dir(), reason=f"the pchain documentation examples are not here: {DOCS_EXAMPLES}")
