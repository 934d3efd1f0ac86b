"""What our two WatchDog plugins share: a lazily opened DB handle and the JEDI return codes."""

from __future__ import annotations

from pandacommon.pandalogger.PandaLogger import PandaLogger
from pandajedi.jedidog.WatchDogBase import WatchDogBase

from pandajedi_wf.daemons.common import run_cycle
from pandajedi_wf.taskbuffer.connection import WfDatabase


class WfWatchDogBase(WatchDogBase):
    """Subclasses set ``agent_name`` and implement ``cycle(db, stats) -> message``.

    ``__init__`` stays cheap and opens no connection: JEDI kills all its agents if a plugin fails at start-up.
    """

    agent_name = "wf_agent"

    def __init__(self, taskBufferIF, ddmIF):
        WatchDogBase.__init__(self, taskBufferIF, ddmIF)
        self.db: WfDatabase | None = None
        # JEDI's own logger: lines land in <logdir>/panda-pandajedi_wf.<agent>.log beside the other agents' logs
        self.log = PandaLogger().getLogger(f"pandajedi_wf.{self.agent_name}")

    def pre_action(self, tmpLog, vo, prodSourceLabel, pid, *args, **kwargs):
        self.vo = vo
        self.prodSourceLabel = prodSourceLabel

    def doAction(self):
        if self.db is None:
            self.db = WfDatabase()
        ok = run_cycle(self.agent_name, self.db, self.cycle, self.log)
        return self.SC_SUCCEEDED if ok else self.SC_FAILED

    def cycle(self, db, stats):  # pragma: no cover - abstract
        raise NotImplementedError
