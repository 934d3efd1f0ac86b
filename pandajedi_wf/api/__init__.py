"""The Python API of pandajedi_wf: submit workflows (or only check them), query them, command them."""

from .submission import SubmitResult, submit_client_request, submit_workflow

__all__ = ["SubmitResult", "submit_client_request", "submit_workflow"]
