"""jedi_agents.task_refiner: which class JEDI's factory gets for a modConfig name, and a bad policy stopping it at start.

(What the plugin does to a task is run end to end in tests/test_e2e_carousel_refine.py.)"""

from __future__ import annotations

import pytest


def test_names_resolve_to_upstreams_refiners_with_our_routing_mixed_in_once():
    from pandajedi.jedirefine.AtlasAnalTaskRefiner import AtlasAnalTaskRefiner as UpstreamAnal
    from pandajedi.jedirefine.GenTaskRefiner import GenTaskRefiner as UpstreamGen

    from pandajedi_wf.jedi_agents import task_refiner

    gen = task_refiner.GenTaskRefiner  # what FactoryBase's getattr(module, "GenTaskRefiner") gets
    assert gen.__mro__[1:3] == (task_refiner.CarouselRouting, UpstreamGen) and gen.wrapped_refiner is UpstreamGen
    assert (gen.__module__, gen.__name__) == ("pandajedi_wf.jedi_agents.task_refiner", "GenTaskRefiner")
    assert task_refiner.GenTaskRefiner is gen  # one class per target: the factory's class map stays stable
    assert issubclass(task_refiner.AtlasAnalTaskRefiner, UpstreamAnal)


def test_configured_classes_override_and_extend_the_defaults_and_a_bad_entry_names_the_option():
    from pandajedi_wf.jedi_agents.task_refiner import UPSTREAM_REFINERS, refiner_targets

    assert refiner_targets("") == UPSTREAM_REFINERS
    targets = refiner_targets(" SiteRefiner=site.refiners:SiteRefiner , GenTaskRefiner=site.gen:Gen ")
    assert targets["SiteRefiner"] == "site.refiners:SiteRefiner" and targets["GenTaskRefiner"] == "site.gen:Gen"
    assert targets["AtlasProdTaskRefiner"] == UPSTREAM_REFINERS["AtlasProdTaskRefiner"]
    for bad in ("SiteRefiner", "Site Refiner=a:B", "X=module.Class", "X=a:b:c"):
        with pytest.raises(ValueError, match=r"\[taskrefine\] wf_refiner_classes: .* is not Name=module:Class"):
            refiner_targets(bad)


def test_an_unknown_name_is_refused_with_the_known_ones_and_the_option_to_add_it():
    from pandajedi_wf.jedi_agents import task_refiner

    with pytest.raises(AttributeError, match=r"no refiner 'SiteRefiner' \(known: AtlasAnalTaskRefiner, .*; add it to \[taskrefine\] wf_refiner_classes\)"):
        task_refiner.SiteRefiner  # noqa: B018
    assert not hasattr(task_refiner, "__wrapped__")  # dunder lookups (inspect, pickling) are not refiner names


def test_a_policy_that_does_not_parse_stops_the_refiner_when_jedis_factory_builds_it(monkeypatch):
    from pandajedi.jediconfig import jedi_config

    from pandajedi_wf.carousel.task_routing import RoutingPolicyError
    from pandajedi_wf.jedi_agents import task_refiner

    monkeypatch.setattr(jedi_config.taskrefine, "wf_carousel_prestaging_users", "ALL|alice", raising=False)
    with pytest.raises(RoutingPolicyError, match="wf_carousel_prestaging_users: ALL stands alone"):
        task_refiner.GenTaskRefiner(None, None)  # FactoryBase.initializeMods at TaskRefiner start: ImportError, agent down
