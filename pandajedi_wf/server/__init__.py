"""The PanDA server endpoints upstream 1.0.4 lacks for native workflows, as a WSGI application of our own.

A deployment routes these paths to ``pandajedi_wf.server.wsgi`` next to upstream's ``panda.py`` (Apache
``WSGIScriptAliasMatch``, see README); identity is what the front end verified, read exactly as upstream reads it.
"""
