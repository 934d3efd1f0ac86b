"""The demo's tape system: the tape simulator on the wall clock, its catalogue read from a JSON file.

The demo's ``panda_jedi.cfg`` names ``demo_tape_simulator`` as ``[watchdog] wf_carousel_ddm``, so the carousel plugin
inside upstream's JediMaster (another process) recalls from it: the demo writes the catalogue (tapes, datasets and
their file sizes) before JediMaster starts and names the file in ``$PANDAJEDI_WF_DEMO_TAPE``.  The simulator's own
clock is moved to the wall clock before every call, so files land while the demo watches.  Simulated: drives, mounts,
bandwidth (``simulators.tape``); nothing here is Rucio.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

from pandajedi_wf.ddm.adapter import StagingDDM
from pandajedi_wf_dev.simulators.tape import SimDataset, TapeEndpoint, TapeSimulator

CATALOGUE_ENV = "PANDAJEDI_WF_DEMO_TAPE"
DDM_OPTION = {"watchdog": {"wf_carousel_ddm": f"{__name__}:demo_tape_simulator"}}  # for write_panda_home(jedi_options=...)


def write_catalogue(path: str | os.PathLike, tapes: list[TapeEndpoint], datasets: list[SimDataset]) -> Path:
    """The catalogue file, and ``$PANDAJEDI_WF_DEMO_TAPE`` naming it (JediMaster, started later, inherits it)."""
    path = Path(path)
    path.write_text(json.dumps({"tapes": [asdict(t) for t in tapes], "datasets": [asdict(d) for d in datasets]}, indent=1))
    os.environ[CATALOGUE_ENV] = str(path)
    return path


class WallClockTapeSimulator(TapeSimulator):
    """The tape simulator whose clock follows the wall clock: each DDM call first lets the time since the last one pass."""

    def _catch_up(self) -> None:
        self.advance(max(0.0, time.time() - self.now))


def _catching_up(name: str):
    def call(self, *args, **kwargs):
        self._catch_up()
        return getattr(TapeSimulator, name)(self, *args, **kwargs)

    call.__name__ = name
    return call


for _name in StagingDDM.__abstractmethods__:
    setattr(WallClockTapeSimulator, _name, _catching_up(_name))


def demo_tape_simulator() -> StagingDDM:
    """``wf_carousel_ddm`` of the demo: the catalogue of ``$PANDAJEDI_WF_DEMO_TAPE`` on the wall clock."""
    path = os.environ.get(CATALOGUE_ENV)
    if not path:
        raise RuntimeError(f"${CATALOGUE_ENV} names no demo tape catalogue")
    doc = json.loads(Path(path).read_text())
    tapes = [TapeEndpoint(**t) for t in doc["tapes"]]
    datasets = [SimDataset(d["name"], tuple(d["file_bytes"]), tuple(d["tapes"]), tuple(d.get("disks", ()))) for d in doc["datasets"]]
    return WallClockTapeSimulator(tapes, datasets, start_time=time.time())
