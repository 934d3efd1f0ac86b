"""Taking in what users submit through the PanDA server (``pchain_native``): request checks and the sandbox.

Pure checks and local-file work only; the database and HTTP side is ``daemons.upstream_intake``.
"""

from .request import RequestProblem, check_request, sandbox_url
from .sandbox import SandboxError, SandboxLimits, extract_sandbox

__all__ = ["RequestProblem", "SandboxError", "SandboxLimits", "check_request", "extract_sandbox", "sandbox_url"]
