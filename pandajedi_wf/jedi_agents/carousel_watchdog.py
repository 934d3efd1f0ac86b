"""WatchDog plugin that runs the data carousel (subType ``wf_carousel``)."""

from pandajedi_wf.daemons import data_carousel

from .base import WfWatchDogBase


class DataCarouselWatchDog(WfWatchDogBase):
    agent_name = "wf_carousel"

    def cycle(self, db, stats):
        return data_carousel.cycle(db, stats)
