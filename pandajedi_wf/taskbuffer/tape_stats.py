"""JEDI_DC_TAPE_STATS: measured recall throughput per tape (EWMA, bytes/s), kept between cycles and processes.

``updated_at`` is the time of the last cycle that saw the tape busy; a tape busy then and now was busy during the
whole interval, which is the only kind of interval the throughput estimate may learn from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from .connection import WfDatabase
from .staging_requests import to_epoch, to_timestamp

TABLE = "JEDI_DC_TAPE_STATS"


@dataclass(frozen=True)
class TapeStat:
    throughput: float | None
    n_samples: int
    updated_at: float | None


def load(db: WfDatabase) -> dict[str, TapeStat]:
    rows = db.query(f"SELECT tape, throughput_bps, n_samples, updated_at FROM {db.table(TABLE)}")
    return {tape: TapeStat(float(bps) if bps is not None else None, int(n or 0), to_epoch(at)) for tape, bps, n, at in rows}


def save(db: WfDatabase, before: Mapping[str, TapeStat], throughput: Mapping[str, float], busy: Iterable[str], now: float) -> None:
    """Store new throughput values and mark ``busy`` tapes as seen busy at ``now`` (one transaction)."""
    busy = set(busy)
    at = to_timestamp(now)
    with db.transaction():
        for tape in sorted(busy | set(throughput)):
            old = before.get(tape)
            value = throughput.get(tape, old.throughput if old else None)
            measured = old is None or value != old.throughput
            samples = (old.n_samples if old else 0) + (1 if measured and value is not None else 0)
            updated = at if tape in busy else to_timestamp(old.updated_at) if old and old.updated_at is not None else None
            binds = {":tape": tape, ":bps": value, ":n": samples, ":at": updated}
            if old is None:
                db.execute(f"INSERT INTO {db.table(TABLE)} (tape, throughput_bps, n_samples, updated_at) VALUES (:tape, :bps, :n, :at) ", binds)
            else:
                db.execute(f"UPDATE {db.table(TABLE)} SET throughput_bps=:bps, n_samples=:n, updated_at=:at WHERE tape=:tape ", binds)


def busy_since_last_cycle(stats: Mapping[str, TapeStat], busy_now: Iterable[str]) -> tuple[set[str], float | None]:
    """Tapes busy at the previous cycle and now, and when that previous cycle ran (None on the first cycle)."""
    seen = [s.updated_at for s in stats.values() if s.updated_at is not None]
    if not seen:
        return set(), None
    last = max(seen)
    return {t for t in busy_now if t in stats and stats[t].updated_at == last}, last

