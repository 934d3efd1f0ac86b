"""The WSGI script a deployment points Apache at (``WSGIScriptAliasMatch``, README "Serving the workflow endpoints").

Like upstream's ``panda.py`` it reads panda_server.cfg through ``PANDA_HOME``/``/etc/panda`` when imported.
"""

from pandajedi_wf.server.app import WorkflowEndpoints

application = WorkflowEndpoints()
