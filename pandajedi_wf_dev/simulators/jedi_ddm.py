"""A simulated DDM (Rucio) behind JEDI's own DDM client interface, for running upstream agents without Rucio.

JEDI agents reach DDM through ``ddmIF.getInterface(vo)``, whose calls go over IPC to a ``DDMClientBase`` subclass
(``GenDDMClient`` for generic VOs, ``AtlasDDMClient`` for ATLAS). ``GenDDMClient`` lacks ``expandContainer``, so
upstream TaskRefiner breaks every task with an input dataset on it. Here:

* ``SimulatedDDMClient`` is a ``DDMClientBase`` answering like ``AtlasDDMClient`` does (``(StatusCode, value)``),
  from a simulated catalogue: input datasets the test registers (``register_dataset``) and the outputs that tasks
  produced in JEDI's own tables: a container ``<task>_<type>/`` holds the concrete ``output`` datasets of
  JEDI_Datasets whose containerName it is, and their files are the ``finished`` rows of JEDI_Dataset_Contents
  (written by the grid simulator when it plays the pilots). A container exists as soon as a task defined it
  (Setupper registers outputs up front), so a failed parent leaves an empty, closed container behind.
* ``InProcessDDMInterface`` is what ``DDMInterface`` gives agents, without forking: each call is unwrapped the way
  ``Interaction.MethodClass`` unwraps IPC answers (value on success, ``JEDITemporaryError`` on SC_FAILED,
  ``JEDIFatalError`` on SC_FATAL), so upstream code sees exactly what it sees in production.

Simulated, not real: the catalogue (no Rucio), replicas (every file is on one disk endpoint), checksums.
Import only where upstream ``pandajedi`` may be imported (tests, the demo, benchmarks).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pandajedi.jedicore import Interaction
from pandajedi.jediddm.DDMClientBase import DDMClientBase

from pandajedi_wf.core import jedi_statuses
from pandajedi_wf_dev.simulators import grid_sql


@dataclass(frozen=True)
class SimulatedFile:
    lfn: str
    scope: str
    fsize: int = 1_000_000
    n_events: int = 100

    @property
    def guid(self) -> str:
        h = hashlib.md5(f"{self.scope}:{self.lfn}".encode()).hexdigest()
        return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def bare_name(name: str) -> str:
    """Name without its ``scope:`` prefix (the catalogue is keyed on bare names)."""
    return name.split(":", 1)[1] if ":" in name else name


def scope_of(name: str) -> str:
    """Rucio's convention: explicit ``scope:``; else ``user.<nick>`` / ``group.<name>``; else the first token."""
    if ":" in name:
        return name.split(":", 1)[0]
    parts = name.split(".")
    if parts[0] in ("user", "group") and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


class SimulatedDDMClient(DDMClientBase):
    """Answers JEDI's DDM calls from registered input datasets and from what tasks wrote in JEDI's tables."""

    def __init__(self, db, endpoint: str = "DEV_SITE_DATADISK"):
        DDMClientBase.__init__(self, None)
        self.db = db
        self.endpoint = endpoint
        self.datasets: dict[str, list[SimulatedFile]] = {}
        self.calls: list[tuple[str, str]] = []  # (method, name): what upstream asked, for tests

    # catalogue -------------------------------------------------------------------------------------------
    def register_dataset(self, name: str, n_files: int = 3, lfns: list[str] | None = None) -> None:
        """A user input dataset, as if uploaded to Rucio before the workflow was submitted."""
        base = bare_name(name).rstrip("/")
        lfns = lfns or [f"{base}.{i:06d}.root" for i in range(1, n_files + 1)]
        self.datasets[bare_name(name)] = [SimulatedFile(lfn, scope_of(name)) for lfn in lfns]

    def _contents(self, name: str) -> tuple[str, list[str]] | None:
        """('dataset', [name]) / ('container', [dataset names]) / None when the catalogue does not know ``name``."""
        bare = bare_name(name)
        if bare in self.datasets:
            return "dataset", [name]
        if bare.endswith("/"):
            produced = grid_sql.datasets_in_container(self.db, bare)
            if produced is None:
                return None
            return "container", [row["datasetname"] for row in produced]
        if grid_sql.produced_dataset(self.db, bare) is not None:
            return "dataset", [name]
        return None

    def files(self, name: str) -> list[SimulatedFile] | None:
        """Files of a dataset or of every dataset in a container; None when the catalogue does not know ``name``."""
        bare = bare_name(name)
        if bare in self.datasets:
            return self.datasets[bare]
        kind = self._contents(name)
        if kind is None:
            return None
        names = kind[1] if kind[0] == "container" else [bare]
        files: list[SimulatedFile] = []
        for dataset in names:
            for row in grid_sql.produced_files(self.db, bare_name(dataset)):
                files.append(SimulatedFile(row["lfn"], row["scope"] or scope_of(dataset), int(row["fsize"] or 0), int(row["nevents"] or 0)))
        return files

    def _closed(self, name: str) -> bool:
        bare = bare_name(name)
        if bare in self.datasets:
            return True
        statuses = grid_sql.producer_statuses(self.db, bare)
        return all(s in jedi_statuses.ENDED for s in statuses)

    # DDMClientBase / AtlasDDMClient methods upstream agents call -------------------------------------------
    def listDatasets(self, datasetName, ignorePandaDS=True):
        self.calls.append(("listDatasets", datasetName))
        return self.SC_SUCCEEDED, ([datasetName] if self._contents(datasetName) is not None else [])

    def expandContainer(self, containerName):
        self.calls.append(("expandContainer", containerName))
        found = self._contents(containerName)
        return self.SC_SUCCEEDED, (sorted(found[1]) if found else [])

    def listDatasetsInContainer(self, containerName):
        self.calls.append(("listDatasetsInContainer", containerName))
        found = self._contents(containerName)
        return self.SC_SUCCEEDED, (sorted(found[1]) if found and found[0] == "container" else [])

    def listDatasetReplicas(self, datasetName, use_vp=False, detailed=False, skip_incomplete_element=False, use_deep=False, element_list=None):
        self.calls.append(("listDatasetReplicas", datasetName))
        files = self.files(datasetName)
        if files is None:
            return self.SC_FAILED, f"listDatasetReplicas : {datasetName} not found"
        replicas = {self.endpoint: [{"total": len(files), "found": len(files), "immutable": self._closed(datasetName)}]}
        return (self.SC_SUCCEEDED, replicas, {datasetName: replicas}) if detailed else (self.SC_SUCCEEDED, replicas)

    def getDatasetMetaData(self, datasetName, ignore_missing=False):
        self.calls.append(("getDatasetMetaData", datasetName))
        files = self.files(datasetName)
        if files is None:
            if ignore_missing:
                return self.SC_SUCCEEDED, None
            return self.SC_FATAL, f"getDatasetMetaData : {datasetName} not found"
        closed = self._closed(datasetName)
        return self.SC_SUCCEEDED, {"state": "closed" if closed else "open", "length": len(files), "is_open": not closed, "lifetime": None}

    def getFilesInDataset(self, datasetName, getNumEvents=False, skipDuplicate=True, ignoreUnknown=False, longFormat=False, lfn_only=False):
        self.calls.append(("getFilesInDataset", datasetName))
        files = self.files(datasetName)
        if files is None:
            return (self.SC_SUCCEEDED, set() if lfn_only else {}) if ignoreUnknown else (self.SC_FATAL, f"getFilesInDataset : {datasetName} not found")
        if lfn_only:
            return self.SC_SUCCEEDED, {f.lfn for f in files}
        found = {}
        for f in files:
            checksum = "ad:" + hashlib.md5(f.lfn.encode()).hexdigest()[:8]
            found[f.guid] = {
                "lfn": f.lfn, "guid": f.guid, "scope": f.scope, "fsize": f.fsize, "filesize": f.fsize,
                "chksum": checksum, "md5sum": checksum, "checksum": checksum, "events": str(f.n_events),
            }
        return self.SC_SUCCEEDED, found

    def get_rules_state(self, dataset_name):
        """``AtlasDDMClient.get_rules_state``: (all rules OK, {rule id: state}); the catalogue holds no rules, so, as
        Rucio answers for a dataset without rules, all (none) are OK."""
        self.calls.append(("get_rules_state", dataset_name))
        if self.files(dataset_name) is None:
            return self.SC_FAILED, f"get_rules_state : {dataset_name} not found"
        return self.SC_SUCCEEDED, (True, {})

    def registerNewDataset(self, datasetName, backEnd="rucio", location=None, lifetime=None, metaData=None, resurrect=False):
        self.calls.append(("registerNewDataset", datasetName))
        self.datasets.setdefault(bare_name(datasetName), [])
        return self.SC_SUCCEEDED, True

    def addDatasetsToContainer(self, containerName, datasetNames, backEnd="rucio"):
        self.calls.append(("addDatasetsToContainer", containerName))
        return self.SC_SUCCEEDED, True


class _UnwrappedCalls:
    """One client seen through IPC: what ``Interaction.MethodClass.__call__`` returns or raises, in-process."""

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        method = getattr(self._client, name)

        def call(*args, **kwargs):
            answer = method(*args, **kwargs)
            if isinstance(answer, Interaction.StatusCode):
                code, values = answer, ()
            elif isinstance(answer, (tuple, list)) and answer and isinstance(answer[0], Interaction.StatusCode):
                code, values = answer[0], tuple(answer[1:])
            else:
                return answer
            if code in (Interaction.SC_FAILED, Interaction.SC_WAITING):
                raise Interaction.JEDITemporaryError(f"{name}: {values[0] if values else ''}")
            if code == Interaction.SC_FATAL:
                raise Interaction.JEDIFatalError(f"{name}: {values[0] if values else ''}")
            if not values:
                return None
            return values[0] if len(values) == 1 else values

        return call


class InProcessDDMInterface:
    """``DDMInterface`` for agents run in-process: ``getInterface(vo)`` gives the VO's client behind IPC semantics."""

    def __init__(self, clients: dict[str, object]):
        self.clients = {vo: _UnwrappedCalls(client) for vo, client in clients.items()}

    def getInterface(self, vo, group=None):
        return self.clients.get(vo, self.clients.get("any"))
