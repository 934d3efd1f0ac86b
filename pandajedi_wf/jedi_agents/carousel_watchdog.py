"""WatchDog plugin that runs the data carousel (subType ``wf_carousel``).

The DDM adapter is built lazily, inside the first cycle, so importing and constructing the plugin stays cheap and a
Rucio failure becomes a recorded cycle error instead of killing JEDI.  Which adapter: ``ddm_factory`` if a test set
it, else ``panda_jedi.cfg`` ``[watchdog] wf_carousel_ddm = module:callable`` (a zero-argument callable returning a
``StagingDDM``), else Rucio (``RucioStagingDDM(rucio.client.Client())``).  The development configuration names a
tape simulator of the dev package there; nothing in this package imports it.
"""

from __future__ import annotations

import importlib
from typing import Callable

from pandajedi_wf.daemons import data_carousel
from pandajedi_wf.ddm.adapter import StagingDDM

from .base import WfWatchDogBase

CONFIG_OPTION = "wf_carousel_ddm"


def rucio_ddm() -> StagingDDM:
    from rucio.client import Client

    from pandajedi_wf.ddm.rucio_adapter import RucioStagingDDM

    return RucioStagingDDM(Client())


def configured_factory() -> Callable[[], StagingDDM]:
    from pandajedi.jediconfig import jedi_config

    spec = getattr(getattr(jedi_config, "watchdog", None), CONFIG_OPTION, "") or ""
    if not spec.strip():
        return rucio_ddm
    module, _, name = spec.strip().partition(":")
    if not name:
        raise ValueError(f"panda_jedi.cfg [watchdog] {CONFIG_OPTION} must be 'module:callable', got {spec!r}")
    return getattr(importlib.import_module(module), name)


ddm_factory: Callable[[], StagingDDM] | None = None  # tests set this; None means panda_jedi.cfg, then Rucio


class DataCarouselWatchDog(WfWatchDogBase):
    agent_name = "wf_carousel"
    ddm: StagingDDM | None = None

    def cycle(self, db, stats):
        if self.ddm is None:
            self.ddm = (ddm_factory or configured_factory())()
        return data_carousel.cycle(db, stats, self.ddm, self.taskBufferIF, vo=getattr(self, "vo", None))
