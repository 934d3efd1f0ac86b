"""JEDI WatchDog plugins. Thin: they hold a DB handle and call one cycle function of ``pandajedi_wf.daemons``.

Enable them in panda_jedi.cfg (README: "Enabling in PanDA"):
    [watchdog]
    modConfig  = ...,atlas:any:pandajedi_wf.jedi_agents.workflow_watchdog:WorkflowProcessorWatchDog:wf_processor,
                 atlas:any:pandajedi_wf.jedi_agents.carousel_watchdog:DataCarouselWatchDog:wf_carousel
    procConfig = ...;atlas:any:1:wf_processor:60;atlas:any:1:wf_carousel:300
"""
