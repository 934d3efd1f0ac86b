"""Which carousel stages a task's tape inputs: what our refiner plugin (``jedi_agents.task_refiner``) does to a task's
parameters around upstream's refiner, and which pending tasks upstream's production WatchDog may still provoke.

Upstream 1.0.4 has two ways into its own carousel, both in ``TaskRefinerThread.runImpl``: a task whose parameters
carry ``toStaging`` is parked in ``staging`` before registration (splitRule NULL, no JEDI_Datasets); a task with
``inputPreStaging`` that is an ``anal``/``user`` task, or carries ``panda_data_carousel``, goes through upstream's
``DataCarouselInterface`` right after ``doRefine``; and upstream's ATLAS refiners ask iDDS for a stage-in request at
the first ContentsFeeder pass (``firstContentsFeed``).  A task routed here keeps only the file-level way: the refiner
registers it at once with ``IS=1`` (``inputPreStaging``), ContentsFeeder inserts its master files as ``staging`` and
our carousel releases them as they land.  So, per task:

- ``route`` decides ``inputPreStaging`` where upstream would (an explicit choice of the task stands; asking for
  upstream's carousel means asking for pre-staging; an ``anal``/``user`` task reading all its input is pre-staged
  for the users of our policy, as upstream's ``early_access_users``) and names the keys to drop;
- ``hide_from_upstream_carousel`` is applied after ``doRefine``: the live dict no longer says ``inputPreStaging``
  (upstream's carousel block reads that dict), while the parameters stored at registration still do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, MutableMapping

# task-parameter keys that send a task to upstream's carousel
UPSTREAM_CAROUSEL_KEYS = ("toStaging", "panda_data_carousel")
PRESTAGING_KEY = "inputPreStaging"
ALL_USERS = "ALL"
# an analysis task reading only part of its input is not pre-staged (upstream's rule, TaskRefinerThread.runImpl)
_PARTIAL_INPUT_KEYS = ("nFiles", "nEvents", "skipFilesUsedBy")


class RoutingPolicyError(ValueError):
    """The routing policy in panda_jedi.cfg does not parse; the message names the key."""


@dataclass(frozen=True)
class RoutingPolicy:
    """Whose analysis tasks get ``inputPreStaging`` when they do not say (upstream's ``early_access_users``)."""

    prestaging_users: frozenset[str] = frozenset()

    @property
    def all_users(self) -> bool:
        return ALL_USERS in self.prestaging_users

    @classmethod
    def parse(cls, users: str | None, key: str = "wf_carousel_prestaging_users") -> "RoutingPolicy":
        """``ALL``, or user names (JEDI's userName) separated by ``|``; empty: only tasks that ask are pre-staged.
        User names hold commas and spaces ("Alice Example"), hence ``|``."""
        names = frozenset(n.strip() for n in (users or "").split("|") if n.strip())
        if ALL_USERS in names and len(names) > 1:
            raise RoutingPolicyError(f"{key}: {ALL_USERS} stands alone, got {users!r}")
        return cls(names)


@dataclass(frozen=True)
class Routing:
    """What our refiner does to one task's parameters, and why (logged by the plugin)."""

    input_prestaging: bool
    reason: str
    dropped: tuple[str, ...] = ()


def _is_analysis(params: Mapping[str, Any]) -> bool:
    return params.get("taskType") == "anal" and params.get("prodSourceLabel") == "user"


def route(params: Mapping[str, Any], policy: RoutingPolicy) -> Routing:
    """The routing of a task from its parameters (before upstream's ``extractCommon`` reads them)."""
    dropped = tuple(k for k in UPSTREAM_CAROUSEL_KEYS if k in params)
    if params.get("noInput"):
        return Routing(False, "the task has no input", dropped)
    if PRESTAGING_KEY in params:
        asked = params[PRESTAGING_KEY] is True  # upstream's TaskRefinerBase sets IS=1 only for a literal true
        return Routing(asked, "the task asks for input pre-staging" if asked else "the task asks for no input pre-staging", dropped)
    wants_upstream = [k for k in UPSTREAM_CAROUSEL_KEYS if params.get(k)]
    if wants_upstream:
        return Routing(True, f"the task asks for upstream's carousel ({', '.join(wants_upstream)}); staged by ours", dropped)
    if not _is_analysis(params):
        return Routing(False, "not an analysis task and no pre-staging asked", dropped)
    partial = [k for k in _PARTIAL_INPUT_KEYS if params.get(k)]
    if partial:
        return Routing(False, f"the analysis task reads part of its input ({', '.join(partial)})", dropped)
    if policy.all_users or params.get("userName") in policy.prestaging_users:
        return Routing(True, "an analysis task of a user pre-staged by our policy", dropped)
    return Routing(False, "the user is not in our pre-staging policy", dropped)


def apply_routing(params: MutableMapping[str, Any], routing: Routing) -> None:
    """Before ``extractCommon``: the keys of upstream's carousel dropped, ``inputPreStaging`` set to the decision."""
    for key in routing.dropped:
        params.pop(key, None)
    if routing.input_prestaging:
        params[PRESTAGING_KEY] = True
    elif PRESTAGING_KEY in params:
        params[PRESTAGING_KEY] = False


def hide_from_upstream_carousel(live: MutableMapping[str, Any], stored: Any) -> Any:
    """After ``doRefine``: ``live`` (the dict TaskRefinerThread reads next) no longer says ``inputPreStaging``, so
    upstream's carousel block skips the task (the split rule keeps ``IS=1``).  Returns what the refiner should store
    as its updated parameters: ``stored`` itself, or a copy still saying ``inputPreStaging`` when it is ``live``."""
    if not live.get(PRESTAGING_KEY):
        return stored
    kept = dict(live) if stored is live else stored
    live.pop(PRESTAGING_KEY)
    return kept


def provokable(pending: Mapping[int, list[str]], ours: Iterable[int]) -> dict[int, list[str]]:
    """The pending data-carousel tasks upstream's ``AtlasProdWatchDog.doActionToProvokeDCTasks`` may release all
    files of once every Rucio rule on their inputs is OK: none our carousel holds (``ours``), whoever made the rules."""
    held = set(ours)
    return {tid: list(names) for tid, names in pending.items() if tid not in held}


def parked_by_its_parameters(params: Mapping[str, Any]) -> bool:
    """A task upstream parked in ``staging`` before registration because its stored parameters say ``toStaging`` (as
    ProdSys submits), which our carousel takes.  A task parked by upstream's carousel block (the flag set only in
    memory, with upstream's requests and rules behind it) is left to upstream's carousel."""
    return bool(params.get("toStaging"))


def input_datasets(params: Mapping[str, Any]) -> list[str]:
    """The input dataset names of the task parameters' ``jobParameters`` (comma-separated lists split), in order."""
    names: list[str] = []
    for item in params.get("jobParameters", []) or []:
        if isinstance(item, dict) and item.get("param_type") == "input" and item.get("dataset"):
            names += [n.strip() for n in str(item["dataset"]).split(",") if n.strip()]
    return list(dict.fromkeys(names))


def datasets_to_recall(masters: list[tuple[str, str | None]], constituents: Mapping[str, list[str]]) -> list[str]:
    """The datasets to recall for a registered task: its master datasets ``(datasetName, containerName)``, a container
    read as one master dataset replaced by its datasets (upstream registers them as ``in_constituent`` rows of the same
    containerName, ``constituents``): a recall rule, and the replicas it is chosen from, are per dataset."""
    names: list[str] = []
    for name, container in masters:
        inside = constituents.get(container) if container and name.endswith("/") else None
        names += list(inside) if inside else [name]
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class FailedStaging:
    """A task's relation to a staging request that failed for good: when the carousel told the task (``told_at``,
    epoch seconds on the database's clock, as JEDI's task attempts; None while it is still to be told), the request
    and its error."""

    jedi_task_id: int
    dataset: str
    request_id: int
    error: str
    told_at: float | None


def staged_again(failed: Iterable[FailedStaging], attempt_started: Mapping[int, float]) -> dict[tuple[int, str], FailedStaging]:
    """The (task, dataset) pairs to stage again although a request for them failed for good: the task was told (its
    errorDialog, then finished by JEDI) and has been retried since (JEDI's retry starts a new task attempt,
    ``attempt_started``: the start of the task's latest attempt), so it waits for the dataset once more.  A pair told
    of several failures counts the last one; a pair not told yet, or told after its task's latest attempt started
    (it was never retried, or the retry was before this failure), is left alone.  The value is the last failure, for
    the new request's history."""
    last: dict[tuple[int, str], FailedStaging] = {}
    untold: set[tuple[int, str]] = set()
    for f in failed:
        key = (f.jedi_task_id, f.dataset)
        if f.told_at is None:
            untold.add(key)
        elif key not in last or f.told_at > last[key].told_at:
            last[key] = f
    return {
        key: f for key, f in last.items()
        if key not in untold and f.jedi_task_id in attempt_started and attempt_started[f.jedi_task_id] > f.told_at
    }


COMMENT_LIMIT = 128  # DEFT PRODSYS_COMM.comm_comment


def ending_comment(dataset: str, error: str, limit: int = COMMENT_LIMIT) -> str:
    """The comment of the command that ends a task whose staging failed for good.  JEDI's command pick-up
    (``getTasksToExecCommand_JEDI``) makes the comment the task's errorDialog, replacing the reason written there
    before, and the PostProcessor appends its verdict to it: so the reason travels in the comment, cut to PRODSYS_COMM's
    128 characters (the dataset name shortened in its middle first, then the error at its end)."""
    head, middle = "pandajedi_wf data carousel: staging of ", " failed: "
    error = " ".join((error or "no usable tape source").split())
    text = f"{head}{dataset}{middle}{error}"
    if len(text) <= limit:
        return text
    room = max(limit - len(head) - len(middle) - min(len(error), 48), 12)
    if len(dataset) > room:
        keep = room - 3
        dataset = f"{dataset[: keep - keep // 2]}...{dataset[len(dataset) - keep // 2:]}"
    text = f"{head}{dataset}{middle}{error}"
    return text if len(text) <= limit else text[: limit - 3] + "..."
