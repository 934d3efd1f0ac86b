"""placement.links: the network matrix's rows as link rates (FTS throughput, freshest window that measured something)."""

from pandajedi_wf.placement.links import link_rates


def test_the_freshest_window_with_a_measurement_is_the_links_rate_in_bytes_per_second():
    rows = [("A", "B", "dashb_mbps_1w", 100), ("A", "B", "dashb_mbps_1h", 250), ("A", "B", "dashb_mbps_1d", 180),
            ("A", "C", "dashb_mbps_1h", 0), ("A", "C", "dashb_mbps_1d", 40), ("A", "D", "dashb_mbps_1w", 12),
            ("A", "E", "dashb_mbps_1h", None), ("A", "F", "AGIS_closeness", 3), ("A", "F", "Production Input_queued", 80)]
    assert link_rates(rows) == {("A", "B"): 250e6, ("A", "C"): 40e6, ("A", "D"): 12e6}


def test_the_order_of_the_rows_does_not_matter():
    rows = [("A", "B", "dashb_mbps_1h", 250), ("A", "B", "dashb_mbps_1w", 100), ("B", "A", "dashb_mbps_1w", 7)]
    assert link_rates(rows) == link_rates(list(reversed(rows))) == {("A", "B"): 250e6, ("B", "A"): 7e6}
    assert link_rates([]) == {}
