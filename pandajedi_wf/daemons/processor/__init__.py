"""The workflow processor, in parts with one job each (``runner`` says how they follow each other in a batch):

* ``settings``    the operator's knobs
* ``step_row``    a step as held in a pass, and how the engine sees it
* ``quiet``       workflows whose last decision changed nothing: not decided again while nothing changed
* ``reading``     a claimed batch's step rows and JEDI's view of their tasks
* ``repairs``     crash repair of submission intents, user commands, repeated kills
* ``decide``      follow JEDI, start or drop held retries, run the engine
* ``plan``        the engine's actions as changes checked against the lifecycles
* ``retries``     automatic retry decisions; ``junctions`` loops waiting for a junction's results
* ``priorities``  critical-path priority of the tasks submitted
* ``writer``      a batch of plans in one transaction
* ``submission``  the JEDI calls the written plans ask for; ``outcomes`` JEDI's answers, recorded one way
* ``commands``    queued user commands; ``user_intents`` pbook's task commands as workflow commands
* ``step_cache``  rows kept between passes; ``workers`` how a pass runs; ``faults`` crash-test kill points
* ``runner``      the ``Processor`` object: a batch (``cycle``) and a pass of batches (``run_pass``)
"""

from .runner import ACTIVE_WORKFLOW_STATUSES, NOTHING_DUE, Processor
from .settings import ProcessorSettings
from .workers import collector_paused

__all__ = ["ACTIVE_WORKFLOW_STATUSES", "NOTHING_DUE", "Processor", "ProcessorSettings", "collector_paused"]
