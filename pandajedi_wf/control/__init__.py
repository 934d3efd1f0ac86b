"""Workflow control, pure: commands (kill, retry, rerun, pause, resume, finish) as data and plans,
who may send them, and the automatic retry policy.  No DB, no JEDI imports."""

from .authorization import Authorization, authorize, compact_user_name, is_production_role
from .commands import COMMANDS, CommandRule
from .plan import CommandPlan, CommandPolicy, JediCommand, StepChange, plan_command
from .retry_policy import (
    DEFAULT_POLICY,
    ERROR_CLASSES,
    Backoff,
    Classification,
    RetryDecision,
    RetryPolicy,
    RetryPolicyError,
    classify_definition,
    classify_submission,
    classify_task_failure,
    decide_retry,
    parse_retry_policy,
    task_id_in_message,
)
from .step_graph import StepView, downstream_closure, enclosing, node_path, step_view
