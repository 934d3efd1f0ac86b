"""StagingDDM over ``rucio.client.Client`` (rucio-clients 41.x signatures).

The client is injected so tests can hand in a recording fake; production code passes ``Client()``.
Rucio exceptions become the adapter's own (DuplicateRuleError, RuleNotFoundError, ...), so the carousel
never imports Rucio.
"""

from __future__ import annotations

import calendar
import datetime
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
)


def split_did(dataset: str) -> tuple[str, str]:
    """'scope:name' -> (scope, name); without a colon the ATLAS convention applies (user.x.* -> 'user.x')."""
    if ":" in dataset:
        scope, name = dataset.split(":", 1)
    else:
        name = dataset
        parts = name.split(".")
        scope = ".".join(parts[:2]) if parts[0] in ("user", "group") else parts[0]
    return scope, name.rstrip("/")


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
            )
        return progress

    def list_staged_files(self, rule_id: str) -> list[StagedFile]:
        with _translated(f"list_replica_locks {rule_id}"):
            locks = list(self.client.list_replica_locks(rule_id))
        return [StagedFile(lock["scope"], lock["name"], lock["rse"]) for lock in locks if lock["state"] == "OK"]

    def extend_rule_lifetime(self, rule_id: str, lifetime: int) -> None:
        with _translated(f"update_replication_rule {rule_id} lifetime"):
            self.client.update_replication_rule(rule_id, {"lifetime": lifetime})

    def switch_rule_source(self, rule_id: str, source_expression: str | None) -> None:
        with _translated(f"update_replication_rule {rule_id} source"):
            self.client.update_replication_rule(rule_id, {"source_replica_expression": source_expression})

    def delete_rule(self, rule_id: str) -> None:
        with _translated(f"delete_replication_rule {rule_id}"):
            self.client.delete_replication_rule(rule_id, purge_replicas=None)

    def _tapes(self) -> frozenset[str]:
        if self._tape_rses is None:
            with _translated("list_rses rse_type=TAPE"):
                self._tape_rses = frozenset(r["rse"] for r in self.client.list_rses("rse_type=TAPE"))
        return self._tape_rses

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
