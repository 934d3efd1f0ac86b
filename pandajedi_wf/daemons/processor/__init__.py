"""The workflow processor, in parts with one job each (``runner`` says how they follow each other in a batch):

* ``settings``  the operator's knobs;            * ``step_row``  a step as held in a pass, and how the engine sees it;
* ``reading``   claimed batch's rows and JEDI;   * ``repairs``   crash repair, user commands, repeated kills;
* ``decide``    follow JEDI, run the engine;     * ``plan``      the engine's actions as lifecycle-checked changes;
* ``retries``   automatic retry decisions;       * ``junctions`` loops waiting for a junction's results;
* ``writer``    a batch of plans, one transaction; * ``outcomes`` JEDI's answers about steps, written one way;
* ``commands``  queued user commands;            * ``user_intents`` pbook's task commands as workflow commands;
* ``step_cache`` rows kept between passes;       * ``faults``    crash-test kill points;
* ``runner``    the ``Processor`` object: a batch (``cycle``) and a pass of batches (``run_pass``).
"""

from .runner import ACTIVE_WORKFLOW_STATUSES, NOTHING_DUE, Processor, collector_paused
from .settings import ProcessorSettings

__all__ = ["ACTIVE_WORKFLOW_STATUSES", "NOTHING_DUE", "Processor", "ProcessorSettings", "collector_paused"]
