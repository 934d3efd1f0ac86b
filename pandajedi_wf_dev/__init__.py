"""pandajedi_wf's development package: never installed, never imported by ``pandajedi_wf``.

``devdb`` (embedded PostgreSQL, PANDA_HOME writer, upstream test schema and the iDDS-shaped one, upstream's PanDA
server behind a TLS front end, test grid CA and users, panda-client runner, Rucio server, the demo) and
``simulators`` (grid, tape, JEDI's DDM client) serve the tests, the demo and the benchmarks. They are imported from
the repository root, which every entry point puts on ``sys.path`` (pytest's ``pythonpath = .``, ``bin/demo`` runs
``python -m`` from it, the benchmarks insert it) and the harness adds to ``PYTHONPATH`` for the processes it starts
(``devdb.panda_home.activate``). The wheel of ``pandajedi_wf`` leaves this package out (setup.cfg
``[options.packages.find]``); ``tests/test_packaging_wheel.py`` checks it.
"""
