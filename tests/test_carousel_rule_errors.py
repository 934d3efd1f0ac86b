"""Rule creation refused by DDM: permanent errors fail the request, transient ones back off, adapter bugs stay contained.

Before, a refused rule sent the request back to ``queued`` and the next cycle asked again at once, for ever; a
permanent error (no such dataset, write-blocked destination) never ended the request; and any exception that was
not a DDM error (``rule_ids[0]`` of an empty answer) ended the whole carousel cycle.
"""

from __future__ import annotations

import pytest

from pandajedi_wf.carousel import lifecycle as lc
from pandajedi_wf.carousel.config import CarouselConfigError, load_config
from pandajedi_wf.carousel.cycle import MemoryBook, run_cycle
from pandajedi_wf.carousel.rule_errors import PERMANENT, RULE_ERRORS, TRANSIENT, backoff_seconds, error_class, rule_retry
from pandajedi_wf.carousel.state import StagingRequest
from pandajedi_wf.ddm.adapter import DDMError, DDMUnavailableError
from pandajedi_wf_dev.simulators.tape import SimDataset, TapeEndpoint, TapeSimulator

CONFIG = load_config({"rule_retry_base_seconds": 100, "rule_retry_factor": 3, "rule_retry_cap_seconds": 500, "rule_max_attempts": 5})
TAPES = [TapeEndpoint("TAPE_A", 2, 100.0, 5.0)]


def setup(n=1):
    datasets = [SimDataset(f"ds{i}", (100,) * 4, ("TAPE_A",)) for i in range(n)]
    sim = TapeSimulator(TAPES, datasets)
    book = MemoryBook([StagingRequest(i + 1, d.name, 4, 400, "u", "A", "DISK", ("TAPE_A",)) for i, d in enumerate(datasets)])
    return sim, book


class FailingCreate:
    """create_staging_rule that raises ``error`` for the datasets in ``bad`` (all when None), else creates the rule."""

    def __init__(self, sim, error, bad=None):
        self.sim, self.error, self.bad, self.create, self.calls = sim, error, bad, sim.create_staging_rule, []

    def __call__(self, dataset, *args, **kwargs):
        self.calls.append(dataset)
        if self.error is not None and (self.bad is None or dataset in self.bad):
            raise self.error
        return self.create(dataset, *args, **kwargs)


def test_the_table_classifies_rucio_errors_and_unknown_kinds_are_transient():
    import inspect

    from rucio.common import exception as rucio_exc

    rucio_names = {name for name, cls in inspect.getmembers(rucio_exc, inspect.isclass) if issubclass(cls, rucio_exc.RucioException)}
    ours = {"DatasetNotFoundError", "DDMUnavailableError", "ConnectionError", "TimeoutError", "OSError"}
    assert set(RULE_ERRORS) - rucio_names - ours == set()  # every entry names a real Rucio class (41.x) or ours
    for kind in ("DataIdentifierNotFound", "RSEWriteBlocked", "InvalidRSEExpression", "ScopeNotFound", "AccessDenied"):
        assert error_class(kind) == PERMANENT
    for kind in ("ServiceUnavailable", "RSEOverQuota", "InsufficientAccountLimit", "NeverHeardOf", "IndexError"):
        assert error_class(kind) == TRANSIENT


def test_backoff_is_exponential_capped_and_bounded_in_attempts():
    assert [backoff_seconds(n, CONFIG) for n in (1, 2, 3, 4)] == [100, 300, 500, 500]
    verdicts = []
    attempts = 0
    for _ in range(5):
        verdict = rule_retry("ServiceUnavailable", "down", attempts, 1000.0, CONFIG)
        verdicts.append(verdict.retry_at)
        attempts = verdict.attempts
    assert verdicts == [1100.0, 1300.0, 1500.0, 1500.0, None]
    assert "gave up after 5 attempts (ServiceUnavailable)" in rule_retry("ServiceUnavailable", "down", 4, 0.0, CONFIG).reason
    permanent = rule_retry("RSEWriteBlocked", "RSE DISK is blocked for writes", 0, 0.0, CONFIG)
    assert permanent.gives_up and permanent.attempts == 1 and "refused for good by DDM (RSEWriteBlocked)" in permanent.reason


def test_config_keys_are_validated():
    assert load_config({}).rule_max_attempts == 8 and load_config({}).rule_retry_factor == 2.0
    with pytest.raises(CarouselConfigError, match="'rule_retry_factor' must be at least 1"):
        load_config({"rule_retry_factor": 0.5})
    with pytest.raises(CarouselConfigError, match="'rule_max_attempts' must be at least 1"):
        load_config({"rule_max_attempts": 0})


def test_transient_failure_backs_off_then_succeeds_and_forgets_its_attempts():
    sim, book = setup()
    create = sim.create_staging_rule = FailingCreate(sim, DDMUnavailableError("Rucio unavailable (ConnectionError: refused)"))
    report = run_cycle(CONFIG, book, sim, 1000.0, {})
    rec = book.by_id[1]
    assert (rec.status, rec.rule_attempts, rec.retry_after, rec.source) == (lc.QUEUED, 1, 1100.0, None)
    assert report.rule_retries == 1 and "attempt 1 of 5" in rec.error and "next attempt in 100 s" in rec.error
    run_cycle(CONFIG, book, sim, 1050.0, {})  # still backing off: DDM is not asked
    assert create.calls == ["ds0"]
    run_cycle(CONFIG, book, sim, 1100.0, {})
    assert create.calls == ["ds0", "ds0"] and book.by_id[1].retry_after == 1400.0  # second wait: 100 * 3
    create.error = None
    run_cycle(CONFIG, book, sim, 1400.0, {})
    rec = book.by_id[1]
    assert (rec.status, rec.rule_attempts, rec.retry_after, rec.error) == (lc.STAGING, 0, 0.0, "") and rec.rule_id in sim.rules


def test_transient_failures_end_the_request_after_the_last_attempt():
    sim, book = setup()
    sim.create_staging_rule = FailingCreate(sim, DDMError("add_replication_rule: RSEOverQuota: full", "RSEOverQuota"))
    now = 0.0
    for _ in range(10):
        run_cycle(CONFIG, book, sim, now, {})
        now += 600
    rec = book.by_id[1]
    assert rec.status == lc.FAILED and rec.rule_attempts == 5 and "gave up after 5 attempts (RSEOverQuota)" in rec.error
    assert len(sim.create_staging_rule.calls) == 5


@pytest.mark.parametrize("kind", ["RSEWriteBlocked", "InvalidRSEExpression", "DataIdentifierNotFound"])
def test_permanent_error_fails_the_request_at_once(kind):
    sim, book = setup()
    sim.create_staging_rule = FailingCreate(sim, DDMError(f"add_replication_rule ds0 -> DISK: {kind}: no", kind))
    report = run_cycle(CONFIG, book, sim, 0.0, {})
    rec = book.by_id[1]
    assert rec.status == lc.FAILED and f"refused for good by DDM ({kind})" in rec.error and report.failed == 1
    run_cycle(CONFIG, book, sim, 10_000.0, {})
    assert len(sim.create_staging_rule.calls) == 1  # never asked again


def test_an_unexpected_exception_is_contained_to_its_request():
    sim, book = setup(2)
    sim.create_staging_rule = FailingCreate(sim, IndexError("list index out of range"), bad={"ds0"})
    report = run_cycle(CONFIG, book, sim, 0.0, {})  # does not raise
    bad, good = book.by_id[1], book.by_id[2]
    assert good.status == lc.STAGING
    assert bad.status == lc.QUEUED and bad.rule_attempts == 1 and "unexpected IndexError from the DDM adapter" in bad.error
    assert any("IndexError" in e for e in report.errors)


def test_rucio_adapter_reports_the_rucio_class_and_an_empty_answer():
    from rucio.common import exception as rucio_exc

    from pandajedi_wf.ddm.rucio_adapter import RucioStagingDDM
    from tests.test_carousel_rucio_adapter import FakeClient

    ddm = RucioStagingDDM(FakeClient(add_replication_rule=rucio_exc.RSEWriteBlocked("blocked"), list_did_rules=[]))
    with pytest.raises(DDMError) as info:
        ddm.create_staging_rule("data18:data18.RAW", "BNL_TAPE", "CERN_DATADISK", "Data Carousel", 86400)
    assert info.value.kind == "RSEWriteBlocked" and error_class(info.value.kind) == PERMANENT

    ddm = RucioStagingDDM(FakeClient(add_replication_rule=[], list_did_rules=[]))
    with pytest.raises(DDMError, match="without a rule id") as info:
        ddm.create_staging_rule("data18:data18.RAW", "BNL_TAPE", "CERN_DATADISK", "Data Carousel", 86400)
    assert info.value.kind == "NoRuleCreated" and error_class(info.value.kind) == TRANSIENT


def test_lifecycle_allows_the_new_transitions():
    assert lc.STAGING_REQUEST.can(lc.SUBMITTING, lc.FAILED) and lc.STAGING_REQUEST.can(lc.SUBMITTING, lc.QUEUED)
