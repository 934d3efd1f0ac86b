"""Monitoring: one page that shows a person their workflows and the data carousel at a glance.

``collect`` reads the database (read-only, bounded queries in ``taskbuffer/monitoring.py``), ``snapshot`` turns the
rows into one plain structure, ``html`` renders it, ``server`` serves it; ``python -m pandajedi_wf.monitor`` runs it.
"""
