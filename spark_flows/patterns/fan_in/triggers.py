"""Fan-in trigger rules at the processing layer, named as orchestrators name them.

A parent of a fan-in ends in one of three states: *succeeded* (it contributed rows), *missing* (no data
or empty: its producer has not delivered, the orchestrator's "skipped"), or *failed* (present but unusable:
unreadable, corrupt or drifted rows, a conflicting schema, a loader that raised). A rule decides from those
states whether the merge goes on:

=============================== ==========================================================================
``all_success``                 every parent succeeded (the Aligned Fan-In; ``mode="aligned"``)
``all_done``                    whatever succeeded is merged (the Unaligned Fan-In; ``mode="unaligned"``)
``none_failed_min_one_success`` no parent failed (missing ones are allowed) and at least one succeeded
``min_success=N``               at least N parents succeeded
=============================== ==========================================================================

When no parent at all succeeded, a fan-in's fallback branch runs if it has one (whatever the rule);
otherwise the fan-in fails with ``NO_PARENTS``.

Example
-------
>>> from spark_flows.patterns.fan_in.completeness import Completeness
>>> seen = Completeness(("00", "01", "02"), {"01": "no data", "02": "3 corrupt record(s)"})
>>> [trigger_rule(r).refusal(seen) is None for r in ("all_done", "min_success=2", "none_failed_min_one_success")]
[True, False, False]
>>> trigger_rule("min_success=2").refusal(seen)
'1 of 3 parents succeeded, min_success=2 needs 2'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from spark_flows.errors import invalid_argument
from spark_flows.patterns.fan_in.completeness import Completeness

__all__ = ["ALL_DONE", "ALL_SUCCESS", "NONE_FAILED_MIN_ONE_SUCCESS", "TriggerRule", "is_missing", "min_success",
           "trigger_rule"]

#: failure reasons that mean "not delivered" rather than "delivered but unusable"
_MISSING = ("no data", "empty")


def is_missing(reason: str) -> bool:
    """Whether a parent's failure ``reason`` means it was not delivered (missing), not that it failed."""
    return reason.startswith(_MISSING)


@dataclass(frozen=True)
class TriggerRule:
    """A fan-in's trigger rule; build one with :func:`trigger_rule` or use the module's constants."""

    name: str
    minimum: int = 1

    def __str__(self) -> str:
        return f"min_success={self.minimum}" if self.name == "min_success" else self.name

    @property
    def strict(self) -> bool:
        """True for ``all_success``: any failed or missing parent refuses the merge."""
        return self.name == "all_success"

    def refused_by(self, failures: Mapping[str, str]) -> bool:
        """Whether these parent failures alone already refuse the merge (no need to read more)."""
        if self.name == "all_success":
            return bool(failures)
        if self.name == "none_failed_min_one_success":
            return any(not is_missing(reason) for reason in failures.values())
        return False

    def refusal(self, completeness: Completeness) -> str | None:
        """Why the rule refuses the merge of ``completeness``, or ``None`` when it goes on."""
        present, expected = len(completeness.present), len(completeness.expected)
        if not present:
            return f"0 of {expected} parents succeeded"
        if self.name == "min_success" and present < self.minimum:
            return f"{present} of {expected} parents succeeded, {self} needs {self.minimum}"
        if self.refused_by(completeness.failures):
            failed = [p for p, r in completeness.failures.items() if self.strict or not is_missing(r)]
            return f"{self} refuses: parent(s) {failed} did not succeed"
        return None


ALL_SUCCESS = TriggerRule("all_success")
ALL_DONE = TriggerRule("all_done")
NONE_FAILED_MIN_ONE_SUCCESS = TriggerRule("none_failed_min_one_success")
_NAMED = {r.name: r for r in (ALL_SUCCESS, ALL_DONE, NONE_FAILED_MIN_ONE_SUCCESS)}
_MODES = {"aligned": ALL_SUCCESS, "unaligned": ALL_DONE}


def min_success(n: int) -> TriggerRule:
    """At least ``n`` parents must succeed."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise invalid_argument("min_success", n, "an int >= 1")
    return TriggerRule("min_success", n)


def trigger_rule(value: str | TriggerRule) -> TriggerRule:
    """A rule from its name (``"all_success"``, ``"min_success=3"``; ``"aligned"``/``"unaligned"`` too)."""
    if isinstance(value, TriggerRule):
        return value
    text = str(value).strip()
    if text in _NAMED:
        return _NAMED[text]
    if text in _MODES:
        return _MODES[text]
    name, _, count = text.partition("=")
    if name == "min_success" and count.isdigit():
        return min_success(int(count))
    raise invalid_argument("trigger rule", value, f"one of {sorted(_NAMED)} or min_success=N")
