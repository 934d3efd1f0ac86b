"""All SQL of pandajedi_wf lives in this package, one module per table (or per upstream table we read).

Statements are written in PanDA's Oracle dialect with ``:name`` binds and are executed through upstream's
``WrappedCursor``, which rewrites them for Postgres, so one text serves both backends.
"""
