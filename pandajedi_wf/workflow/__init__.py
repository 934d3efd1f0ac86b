"""Pure workflow core: parse pchain descriptions, check them, decide the next steps.

Public entry points: ``parse_workflow``, ``validate_workflow``, ``next_actions``,
``build_task_params``, the lifecycles ``WORKFLOW_LIFECYCLE`` / ``STEP_LIFECYCLE``
and ``jedi_status_to_step_status``.  No DB and no JEDI imports here.
"""

from .build import Limits
from .engine import (
    CancelStep,
    CreateStep,
    DatasetRef,
    MakeReady,
    RunContext,
    SetStepStatus,
    SetWorkflowStatus,
    Skip,
    StepRecord,
    StepSpec,
    SubmitStep,
    next_actions,
)
from .definition_checks import check_definition
from .errors import Problem, StepDefinitionError, WorkflowError, WorkflowTooLarge
from .lifecycles import STEP_LIFECYCLE, WORKFLOW_LIFECYCLE, jedi_status_to_step_status
from .model import Condition, Node, StepInput, Workflow
from .parse import parse_workflow
from .taskparams import build_task_params
from .parsers.source import read_values_file
from .validation import ValidationResult, validate_definition, validate_workflow
