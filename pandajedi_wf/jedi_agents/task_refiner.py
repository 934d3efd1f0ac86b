"""Refiner plugins that send tasks with tape inputs to our carousel (file-level staging), never to upstream's.

Each class here is a site's refiner with our routing around it (``carousel.task_routing``): before upstream's
``extractCommon`` the task's ``inputPreStaging`` is decided by our policy and ``toStaging``/``panda_data_carousel``
are dropped (so the task is registered at once, never parked in ``staging``); after ``doRefine`` the iDDS stage-in
request of the first ContentsFeeder pass is switched off and the dict upstream's carousel block reads no longer says
``inputPreStaging`` (the task keeps ``IS=1``; its stored parameters keep the flag).  Everything else is the wrapped
refiner's own code.

``panda_jedi.cfg``::

    [taskrefine]
    modConfig = atlas:user:pandajedi_wf.jedi_agents.task_refiner:AtlasAnalTaskRefiner,atlas:managed:pandajedi_wf.jedi_agents.task_refiner:AtlasProdTaskRefiner
    # optional: which class each name wraps (default: upstream's refiner of that name); a site's own refiner too
    wf_refiner_classes = AtlasAnalTaskRefiner=pandajedi.jedirefine.AtlasAnalTaskRefiner:AtlasAnalTaskRefiner
    # optional: whose analysis tasks are pre-staged without asking ("ALL", or userNames separated by '|')
    wf_carousel_prestaging_users = ALL

JEDI's factory asks this module for the class named in ``modConfig`` (``getattr``); the module builds it on first
use from the configured (or upstream's) refiner, so importing it imports no refiner it does not need.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from pandajedi_wf.carousel import task_routing

CLASSES_OPTION = "wf_refiner_classes"
USERS_OPTION = "wf_carousel_prestaging_users"
UPSTREAM_REFINERS = {
    name: f"pandajedi.jedirefine.{name}:{name}" for name in ("GenTaskRefiner", "AtlasAnalTaskRefiner", "AtlasProdTaskRefiner")
}


def _taskrefine_option(name: str) -> str:
    from pandajedi.jediconfig import jedi_config

    return getattr(getattr(jedi_config, "taskrefine", None), name, "") or ""


def refiner_targets(option: str) -> dict[str, str]:
    """``Name=module:Class`` entries (comma-separated) over upstream's defaults."""
    targets = dict(UPSTREAM_REFINERS)
    for entry in (e.strip() for e in option.split(",") if e.strip()):
        name, _, target = entry.partition("=")
        if not name.strip().isidentifier() or target.count(":") != 1:
            raise ValueError(f"panda_jedi.cfg [taskrefine] {CLASSES_OPTION}: {entry!r} is not Name=module:Class")
        targets[name.strip()] = target.strip()
    return targets


class CarouselRouting:
    """Mixed in before a refiner class: our routing around its ``extractCommon`` and ``doRefine``.

    The policy is read when JEDI's factory builds the refiner (at TaskRefiner start, then per task): a policy that does
    not parse stops the TaskRefiner agent at start with the key named in JEDI's log, never a user's task."""

    def __init__(self, taskBufferIF, ddmIF):
        self.routing_policy = task_routing.RoutingPolicy.parse(_taskrefine_option(USERS_OPTION), USERS_OPTION)
        super().__init__(taskBufferIF, ddmIF)

    def extractCommon(self, jediTaskID, taskParamMap, workQueueMapper, splitRule):
        routing = task_routing.route(taskParamMap, self.routing_policy)
        task_routing.apply_routing(taskParamMap, routing)
        if self.tmpLog is not None:
            dropped = f"; dropped {', '.join(routing.dropped)}" if routing.dropped else ""
            self.tmpLog.info(f"pandajedi_wf carousel routing: inputPreStaging={routing.input_prestaging} ({routing.reason}){dropped}")
        return super().extractCommon(jediTaskID, taskParamMap, workQueueMapper, splitRule)

    def doRefine(self, jediTaskID, taskParamMap):
        status = super().doRefine(jediTaskID, taskParamMap)
        if self.taskSpec.inputPreStaging():
            self.taskSpec.set_first_contents_feed(False)  # no iDDS stage-in request: our carousel stages the files
            self.updatedTaskParams = task_routing.hide_from_upstream_carousel(taskParamMap, self.updatedTaskParams)
        return status


@lru_cache(maxsize=None)
def carousel_refiner(target: str) -> type:
    """The class ``module:Class`` with our routing mixed in (one class per target)."""
    module, _, name = target.partition(":")
    wrapped = getattr(importlib.import_module(module), name)
    return type(name, (CarouselRouting, wrapped), {"__module__": __name__, "__qualname__": name, "wrapped_refiner": wrapped})


def __getattr__(name: str) -> type:
    """``getattr(module, Name)`` as JEDI's FactoryBase does it for ``modConfig``."""
    targets = refiner_targets(_taskrefine_option(CLASSES_OPTION)) if not name.startswith("__") else {}
    if name not in targets:
        raise AttributeError(f"module {__name__!r} has no refiner {name!r} (known: {', '.join(sorted(targets))}; add it to [taskrefine] {CLASSES_OPTION})")
    return carousel_refiner(targets[name])
