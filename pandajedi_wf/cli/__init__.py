"""The ``pandajedi-wf`` command line: argparse verbs over a ``WorkflowClient`` (see client.py), text in render.py."""
