"""The cycles our JEDI plugins run: each is a ``run_once``-style function over a DB handle (I/O + core decisions).

Like Rucio's daemons: the JEDI plugin only schedules, ``daemons.common.run_cycle`` owns heartbeats and error
handling, and each daemon module supplies one cycle function that tests can call directly.
"""
