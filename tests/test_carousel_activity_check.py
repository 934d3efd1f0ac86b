"""The rule activity is checked once per DDM client before the first cycle (daemons.data_carousel.check_rule_activity).
Refusals by the real Rucio server are in test_carousel_rucio_real.py; here what the real server cannot be made to do:
be unreachable during the check (the tape simulator behind the DDM interface, its probe made to time out)."""

import pytest

from pandajedi_wf.carousel.config import CarouselConfigError, load_config
from pandajedi_wf.daemons.data_carousel import _Notes, check_rule_activity
from pandajedi_wf.ddm.adapter import DDMError, DDMUnavailableError
from pandajedi_wf_dev.simulators.tape import TapeSimulator


def test_an_unreachable_ddm_defers_the_check_and_an_accepted_activity_is_not_asked_again():
    ddm, asked = TapeSimulator([], []), []
    answers = [DDMUnavailableError("add_replication_rule (activity probe): Rucio unavailable (TimeoutError: slow)", "TimeoutError"), None]

    def validate_activity(activity, destination):
        asked.append((activity, destination))
        if answers[len(asked) - 1] is not None:
            raise answers[len(asked) - 1]

    ddm.validate_activity = validate_activity
    config, notes = load_config({"default_destination": "X_DATADISK"}), _Notes()
    check_rule_activity(ddm, config, notes)  # unreachable: the cycle goes on, the check waits for the next one
    assert notes.errors == ["rule_activity not checked yet: add_replication_rule (activity probe): Rucio unavailable (TimeoutError: slow)"]
    check_rule_activity(ddm, config, notes)
    check_rule_activity(ddm, config, notes)
    assert asked == [("Staging", "X_DATADISK")] * 2  # accepted once: never asked again by this process


def test_a_refused_activity_stops_the_cycle_as_a_configuration_error():
    ddm = TapeSimulator([], [])
    ddm.validate_activity = lambda activity, destination: (_ for _ in ()).throw(DDMError("Provided object does not match schema.", "InvalidObject"))
    with pytest.raises(CarouselConfigError, match=r"'rule_activity' 'Staging' is refused by DDM \(InvalidObject\)"):
        check_rule_activity(ddm, load_config({}), _Notes())
