"""StagingDDM over ``rucio.client.Client`` (rucio-clients 41.x signatures).

The client is injected so tests can hand in a recording fake; production code passes ``Client()``.
Rucio exceptions become the adapter's own (DuplicateRuleError, RuleNotFoundError, ...), so the carousel
never imports Rucio.
"""

from __future__ import annotations

import calendar
import datetime
import uuid
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from rucio.common import exception as rucio_exc

from .adapter import (
    DatasetNotFoundError,
    DDMError,
    DDMUnavailableError,
    DuplicateRuleError,
    Replica,
    RuleNotFoundError,
    RuleProgress,
    StagedFile,
    StagingDDM,
    split_did,
)

# the name of a dataset that cannot exist, for validate_activity (the server checks the rule's schema first)
ACTIVITY_PROBE_NAME = "pandajedi_wf.activity_probe.{}"


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%a, %d %b %Y %H:%M:%S UTC"):
            try:
                value = datetime.datetime.strptime(value.split(".")[0], fmt)
                break
            except ValueError:
                continue
        else:
            raise DDMError(f"unreadable rule expiry time {value!r}")
    if value.tzinfo is not None:
        return value.timestamp()
    return float(calendar.timegm(value.utctimetuple()))


@contextmanager
def _translated(call: str) -> Iterator[None]:
    """Rucio's exceptions as the adapter's own, each carrying the Rucio class name as its ``kind``."""
    try:
        yield
    except rucio_exc.DuplicateRule as exc:
        raise DuplicateRuleError(f"{call}: rule already exists ({exc})", type(exc).__name__) from exc
    except rucio_exc.RuleNotFound as exc:
        raise RuleNotFoundError(f"{call}: rule not found ({exc})", type(exc).__name__) from exc
    except rucio_exc.DataIdentifierNotFound as exc:
        raise DatasetNotFoundError(f"{call}: dataset not found ({exc})", type(exc).__name__) from exc
    except (rucio_exc.ServiceUnavailable, rucio_exc.CannotAuthenticate, ConnectionError, TimeoutError, OSError) as exc:
        raise DDMUnavailableError(f"{call}: Rucio unavailable ({type(exc).__name__}: {exc})", type(exc).__name__) from exc
    except rucio_exc.RucioException as exc:
        raise DDMError(f"{call}: {type(exc).__name__}: {exc}", type(exc).__name__) from exc


class RucioStagingDDM(StagingDDM):
    def __init__(self, client: Any, *, account: str | None = None):
        self.client = client
        self.account = account if account is not None else getattr(client, "account", None)
        self._tape_rses: frozenset[str] | None = None
        self._dataset_of_rule: dict[str, tuple[str, str]] = {}  # rule id -> (scope, name): a rule never changes its DID
        self._file_bytes: dict[tuple[str, str], dict[tuple[str, str], int]] = {}  # a closed dataset's files never change

    def create_staging_rule(self, dataset, source_expression, destination, activity, lifetime, copies=1, grouping="DATASET") -> str:
        scope, name = split_did(dataset)
        with _translated(f"add_replication_rule {dataset} -> {destination}"):
            rule_ids = self.client.add_replication_rule(
                dids=[{"scope": scope, "name": name}],
                copies=copies,
                rse_expression=destination,
                grouping=grouping,
                activity=activity,
                source_replica_expression=source_expression,
                lifetime=lifetime,
                notify="P",
            )
        if not rule_ids:  # Rucio returns the ids of the rules it made: none means none was made
            raise DDMError(f"add_replication_rule {dataset} -> {destination}: Rucio answered without a rule id ({rule_ids!r})", "NoRuleCreated")
        return rule_ids[0]

    def make_slice_dataset(self, slice_dataset: str, dataset: str, files: list[str]) -> None:
        """``add_dataset``, ``attach_dids`` of the files not attached yet (``list_files``), ``close``: the files stay in
        their own dataset too (a file may belong to many). Repeated after a crash it does what is left: an existing
        slice dataset (DataIdentifierAlreadyExists) and a closed one (``close`` answers UnsupportedOperation) are what
        was wanted; a closed slice missing files cannot be mended (attaching to it is refused) and raises."""
        scope, name = split_did(slice_dataset)
        with _translated(f"add_dataset {slice_dataset}"):
            try:
                self.client.add_dataset(scope, name)
            except rucio_exc.DataIdentifierAlreadyExists:
                pass
        with _translated(f"attach_dids {slice_dataset} ({len(files)} files of {dataset})"):
            attached = {(f["scope"], f["name"]) for f in self.client.list_files(scope, name)}
            missing = [{"scope": s, "name": n} for s, n in map(split_did, files) if (s, n) not in attached]
            if missing:
                self.client.attach_dids(scope, name, missing)
        with _translated(f"close {slice_dataset}"):
            try:
                self.client.close(scope, name)
            except rucio_exc.UnsupportedOperation:
                pass  # closed already

    def find_staging_rule(self, dataset: str, destination: str) -> str | None:
        scope, name = split_did(dataset)
        with _translated(f"list_did_rules {dataset}"):
            for rule in self.client.list_did_rules(scope, name):
                if rule.get("rse_expression") == destination and (self.account is None or rule.get("account") == self.account):
                    return rule["id"]
        return None

    def get_rules(self, rule_ids: Iterable[str]) -> dict[str, RuleProgress]:
        progress = {}
        for rule_id in rule_ids:
            try:
                with _translated(f"get_replication_rule {rule_id}"):
                    rule = self.client.get_replication_rule(rule_id)
            except RuleNotFoundError:
                continue
            progress[rule_id] = RuleProgress(
                rule_id=rule_id,
                state=str(rule["state"]),
                locks_ok=int(rule["locks_ok_cnt"]),
                locks_replicating=int(rule["locks_replicating_cnt"]),
                locks_stuck=int(rule["locks_stuck_cnt"]),
                source_expression=rule.get("source_replica_expression"),
                expires_at=_epoch(rule.get("expires_at")),
                error=rule.get("error") or None,
                priority=int(rule["priority"]) if rule.get("priority") is not None else None,
            )
            self._dataset_of_rule.setdefault(rule_id, (rule["scope"], rule["name"]))
        return progress

    def _sizes(self, rule_id: str) -> dict[tuple[str, str], int]:
        """Bytes of each file of the rule's dataset (``list_files``, once per dataset)."""
        if rule_id not in self._dataset_of_rule:
            with _translated(f"get_replication_rule {rule_id}"):
                rule = self.client.get_replication_rule(rule_id)
            self._dataset_of_rule[rule_id] = (rule["scope"], rule["name"])
        did = self._dataset_of_rule[rule_id]
        if did not in self._file_bytes:
            with _translated(f"list_files {did[0]}:{did[1]}"):
                self._file_bytes[did] = {(f["scope"], f["name"]): int(f["bytes"] or 0) for f in self.client.list_files(*did)}
        return self._file_bytes[did]

    def list_staged_files(self, rule_id: str) -> list[StagedFile]:
        """The rule's OK locks (``list_replica_locks``), each with its file's size (locks carry none: ``list_files``)."""
        with _translated(f"list_replica_locks {rule_id}"):
            ok = [lock for lock in self.client.list_replica_locks(rule_id) if lock["state"] == "OK"]
        if not ok:
            return []
        sizes = self._sizes(rule_id)
        return [StagedFile(lock["scope"], lock["name"], lock["rse"], sizes.get((lock["scope"], lock["name"]), 0)) for lock in ok]

    def extend_rule_lifetime(self, rule_id: str, lifetime: int) -> None:
        with _translated(f"update_replication_rule {rule_id} lifetime"):
            self.client.update_replication_rule(rule_id, {"lifetime": lifetime})

    def switch_rule_source(self, rule_id: str, source_expression: str | None) -> None:
        """The rule reads every missing file from ``source_expression``. Rucio keeps a queued or submitted transfer
        on the source it was queued with, so the source is set, then the rule is made STUCK with ``cancel_requests``
        (its replicating transfers cancelled, their locks STUCK) and boosted: Rucio's judge-repairer requeues every
        missing file from the new source at its next pass. Repeating the three calls is harmless."""
        with _translated(f"update_replication_rule {rule_id} source"):
            self.client.update_replication_rule(rule_id, {"source_replica_expression": source_expression})
        with _translated(f"update_replication_rule {rule_id} state=STUCK cancel_requests"):
            self.client.update_replication_rule(rule_id, {"state": "STUCK", "cancel_requests": True})
        self.boost_rule(rule_id)

    def set_rule_priority(self, rule_id: str, priority: int) -> None:
        with _translated(f"update_replication_rule {rule_id} priority={priority}"):
            self.client.update_replication_rule(rule_id, {"priority": int(priority)})

    def boost_rule(self, rule_id: str) -> None:
        with _translated(f"update_replication_rule {rule_id} boost_rule"):
            self.client.update_replication_rule(rule_id, {"boost_rule": True})

    def delete_rule(self, rule_id: str) -> None:
        """Expire the rule now (lifetime 0): Rucio's judge-cleaner removes it at its next pass and the staged replicas
        become deletable. ``delete_replication_rule`` would only set the expiry one hour ahead (a soft delete),
        holding the disk buffer that long."""
        with _translated(f"update_replication_rule {rule_id} lifetime=0"):
            self.client.update_replication_rule(rule_id, {"lifetime": 0})

    def validate_activity(self, activity: str, destination: str) -> None:
        """Ask the server with a rule for a dataset that cannot exist: Rucio checks the rule against its schema
        (the activity among the rest) before it looks the dataset up, so a known activity is answered
        DataIdentifierNotFound and an unknown one InvalidObject; nothing is created either way."""
        scope = "pandajedi_wf"
        try:
            with _translated(f"add_replication_rule (activity probe {activity!r})"):
                self.client.add_replication_rule(
                    dids=[{"scope": scope, "name": ACTIVITY_PROBE_NAME.format(uuid.uuid4().hex)}],
                    copies=1,
                    rse_expression=destination,
                    grouping="DATASET",
                    activity=activity,
                    lifetime=60,
                )
        except DatasetNotFoundError:
            return
        except DDMError as exc:
            if exc.kind in ("ScopeNotFound", "RSEExpressionNotFound", "InvalidRSEExpression"):
                return  # the schema passed; only the probe's own names were refused
            raise
        raise DDMError(f"activity probe for {activity!r} created a rule: the probe dataset exists", "UnexpectedRule")

    def _tapes(self) -> frozenset[str]:
        if self._tape_rses is None:
            with _translated("list_rses rse_type=TAPE"):
                self._tape_rses = frozenset(r["rse"] for r in self.client.list_rses("rse_type=TAPE"))
        return self._tape_rses

    def expand_containers(self, names: Iterable[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for name in names:
            scope, bare = split_did(name)
            try:
                with _translated(f"get_did {scope}:{bare}"):
                    kind = str(self.client.get_did(scope, bare).get("type", "")).upper()
            except DatasetNotFoundError:
                kind = ""
            found[name] = self._datasets_in(scope, bare) if kind == "CONTAINER" else [name]
        return found

    def _datasets_in(self, scope: str, container: str) -> list[str]:
        datasets: list[str] = []
        pending, seen = [(scope, container)], set()
        while pending:
            did = pending.pop(0)
            if did in seen:
                continue
            seen.add(did)
            with _translated(f"list_content {did[0]}:{did[1]}"):
                children = list(self.client.list_content(*did))
            for child in sorted(children, key=lambda c: (c["scope"], c["name"])):
                if str(child.get("type", "")).upper() == "CONTAINER":
                    pending.append((child["scope"], child["name"]))
                elif str(child.get("type", "")).upper() == "DATASET":
                    datasets.append(f"{child['scope']}:{child['name']}")
        return list(dict.fromkeys(datasets))

    def list_tape_replicas(self, datasets: Iterable[str]) -> dict[str, list[Replica]]:
        datasets = list(datasets)
        did_of = {split_did(d): d for d in datasets}
        replicas: dict[str, list[Replica]] = {d: [] for d in datasets}
        if not datasets:
            return replicas
        tapes = self._tapes()
        with _translated(f"list_dataset_replicas_bulk ({len(datasets)} datasets)"):
            rows = list(self.client.list_dataset_replicas_bulk([{"scope": s, "name": n} for s, n in did_of]))
        for row in rows:
            dataset = did_of.get((row["scope"], row["name"]))
            if dataset is None:
                continue
            replicas[dataset].append(
                Replica(
                    rse=row["rse"],
                    is_tape=row["rse"] in tapes,
                    n_files=int(row.get("available_length") or 0),
                    n_bytes=int(row.get("available_bytes") or 0),
                    total_files=int(row.get("length") or 0),
                )
            )
        return replicas
