"""Alarm evaluation: each alarm's last periods compared with its threshold, state changes
recorded, and the new state's actions run.

:func:`decide` is the rule, with no database in it: from the values of the last
``EvaluationPeriods`` complete periods (None where no data came) it says which state the
alarm should be in and why, following ``TreatMissingData`` (``missing`` and ``ignore``
look at the datapoints that exist, ``ignore`` keeps the state when there are none;
``breaching``/``notBreaching`` count a gap as one). :func:`evaluate_all` reads every alarm's
values, applies :func:`change_state` (a compare-and-swap on the state, so a SetAlarmState
racing an evaluation is not overwritten by a stale decision) and then runs the actions of
each transition through the :class:`Actions` the service was given.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy import select, update

from ..accounts import utcnow
from ..db import db, writing
from . import alarms, metricdata, statistics, store
from .alarms import COMPARISONS
from .datums import dimension_pairs
from .models import Alarm
from .stats import merged

log = logging.getLogger(__name__)

_WORDS = {"GreaterThanOrEqualToThreshold": "greater than or equal to",
          "GreaterThanThreshold": "greater than",
          "LessThanThreshold": "less than",
          "LessThanOrEqualToThreshold": "less than or equal to"}


@dataclass
class Decision:
    state: str
    reason: str
    data: dict[str, Any] = field(default_factory=dict)


def _stamp(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%d/%m/%y %H:%M:%S")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def decide(definition: dict[str, Any], current: str,
           values: list[tuple[int, float | None]]) -> Decision | None:
    """The state *values* (``(period start, value or None)``, oldest first) put the alarm
    in, or None when it should stay as it is (``ignore`` with no data)."""
    threshold = definition["Threshold"]
    compare = COMPARISONS[definition["ComparisonOperator"]]
    needed = definition.get("DatapointsToAlarm") or definition["EvaluationPeriods"]
    treat = definition.get("TreatMissingData", "missing")
    present = [(start, value) for start, value in values if value is not None]
    missing = len(values) - len(present)
    data = {"version": "1.0", "queryDate": utcnow().isoformat() + "Z",
            "period": definition.get("Period"), "threshold": threshold,
            "recentDatapoints": [value for _, value in present],
            "evaluatedDatapoints": [{"timestamp": _stamp(start), "value": value}
                                    for start, value in present]}
    if not present and treat in ("missing", "ignore"):
        if treat == "ignore":
            return None
        return Decision("INSUFFICIENT_DATA", "Insufficient Data: "
                        f"{_plural(missing, 'datapoint')} "
                        f"{'was' if missing == 1 else 'were'} unknown.", data)
    breaching = [(start, value) for start, value in present if compare(value, threshold)]
    counted_missing = missing if treat == "breaching" else 0
    shown = ", ".join(f"{value} ({_stamp(start)})" for start, value in
                      (breaching if breaching else present)[-5:])
    words = _WORDS[definition["ComparisonOperator"]]
    if len(breaching) + counted_missing >= needed:
        reason = (f"Threshold Crossed: {_plural(len(breaching), 'datapoint')} "
                  f"[{shown}] {'was' if len(breaching) == 1 else 'were'} {words} the "
                  f"threshold ({threshold}).")
        if counted_missing:
            reason += (f" {_plural(counted_missing, 'missing datapoint')} "
                       f"{'was' if counted_missing == 1 else 'were'} treated as [Breaching].")
        return Decision("ALARM", reason, data)
    reason = (f"Threshold Crossed: {_plural(len(present), 'datapoint')} [{shown}] "
              f"{'was' if len(present) == 1 else 'were'} not {words} the threshold "
              f"({threshold}).") if present else (
        f"Threshold Crossed: no datapoints were received for {_plural(missing, 'period')} "
        "and the missing datapoints were treated as [NonBreaching].")
    return Decision("OK", reason, data)


# --- the values an alarm looks at ---------------------------------------------------------

def _window(definition: dict[str, Any], now: int) -> tuple[int, int, int]:
    """(period, start, end) of the alarm's last complete periods."""
    period = alarms.period_of(definition)
    end = now - now % period
    return period, end - definition["EvaluationPeriods"] * period, end


def values_of(account_id: str, definition: dict[str, Any],
              now: int) -> list[tuple[int, float | None]]:
    """The value of each of the alarm's last ``EvaluationPeriods`` complete periods."""
    period, start, end = _window(definition, now)
    found: dict[int, float] = {}
    if "Metrics" in definition:
        series = metricdata.evaluate_queries(account_id, definition["Metrics"], start, end,
                                             now)
        (returning,) = [query["Id"] for query in definition["Metrics"]
                        if query.get("ReturnData", True)]
        found = {stamp - (stamp - start) % period: value
                 for stamp, value in series[returning].points.items()}
    else:
        metric_id = store.find(account_id, definition["Namespace"], definition["MetricName"],
                               dimension_pairs(definition.get("Dimensions"), "Dimensions"))
        stat = definition.get("Statistic") or definition["ExtendedStatistic"]
        grouped = statistics.periods(metric_id, period, start, end, definition.get("Unit"),
                                     now, limit=None, percentiles="Statistic" not in definition)
        by_start: dict[int, list] = {}
        for (stamp, _unit), cell in grouped.items():
            by_start.setdefault(stamp, []).append(cell)
        for stamp, cells in by_start.items():
            value = merged(cells).statistic(stat)
            if value is not None:
                found[stamp] = value
    return [(stamp, found.get(stamp)) for stamp in range(start, end, period)]


# --- changing state and acting ---------------------------------------------------------------

@dataclass
class Transition:
    """A state change that happened: what its actions need."""

    account_id: str
    name: str
    old: str
    new: str
    actions: list[str]
    dimensions: dict[str, str]
    # the newest datapoint evaluated and the threshold (step scaling picks its step by them)
    value: float | None = None
    threshold: float | None = None


def change_state(alarm: Alarm, expected: str, decision: Decision,
                 reason_data: str | None = None) -> Transition | None:
    """Move *alarm* to *decision*'s state if it is still in *expected* (compare-and-swap),
    recording a StateUpdate history item; returns the transition when the state changed
    (its actions are the caller's to run, after the commit). Run inside a write
    transaction."""
    now = utcnow()
    data_text = reason_data if reason_data is not None else json.dumps(decision.data)
    values = {"state": decision.state, "state_reason": decision.reason,
              "state_reason_data": data_text, "state_updated": now}
    if decision.state != expected:
        values["state_transitioned"] = now
    result = db.session.execute(update(Alarm).where(Alarm.id == alarm.id,
                                                    Alarm.state == expected).values(**values))
    if result.rowcount != 1:
        return None
    if decision.state == expected:
        return None
    alarms.history(alarm.account_id, alarm.name, "StateUpdate",
                   f"Alarm updated from {expected} to {decision.state}",
                   {"version": "1.0", "oldState": {"stateValue": expected},
                    "newState": {"stateValue": decision.state,
                                 "stateReason": decision.reason}})
    definition = alarms.definition(alarm)
    member = {"ALARM": "AlarmActions", "OK": "OKActions",
              "INSUFFICIENT_DATA": "InsufficientDataActions"}[decision.state]
    actions = list(definition.get(member) or ()) if alarm.actions_enabled else []
    return _transition(alarm.account_id, alarm.name, expected, decision, definition, actions)


def _transition(account_id: str, name: str, old: str, decision: Decision,
                definition: dict[str, Any], actions: list[str]) -> Transition:
    recent = decision.data.get("recentDatapoints") or []
    return Transition(account_id, name, old, decision.state, actions,
                      dict(dimension_pairs(definition.get("Dimensions"), "Dimensions")),
                      value=recent[-1] if recent else None,
                      threshold=definition.get("Threshold"))


#: Actions run again at every evaluation while the alarm stays in ALARM, not only on the
#: change: AWS invokes Auto Scaling actions once a minute for as long as the alarm lasts.
REPEATED = "arn:aws:autoscaling:"


def repeated(account_id: str, name: str, decision: Decision, definition: dict[str, Any],
             enabled: bool) -> Transition | None:
    """The actions to run again for an alarm that stayed in ALARM (None when none)."""
    actions = [action for action in definition.get("AlarmActions") or ()
               if action.startswith(REPEATED)] if enabled else []
    if decision.state != "ALARM" or not actions:
        return None
    return _transition(account_id, name, "ALARM", decision, definition, actions)


#: An action runner: (account id, action ARN, transition) -> None; raises to report failure.
Runner = Callable[[str, str, Transition], None]


class Actions:
    """What runs an alarm's actions: one runner per kind of action ARN, by prefix. The
    service registers EC2's; Auto Scaling registers its policies' when it exists. An
    action nobody runs is recorded as failed, never dropped silently."""

    def __init__(self):
        self.runners: list[tuple[str, Runner]] = []

    def register(self, prefix: str, runner: Runner) -> None:
        self.runners.append((prefix, runner))

    def run(self, transition: Transition, record: bool = True) -> None:
        """Run *transition*'s actions, each outcome in the alarm's history (unless not
        *record*: the repeats of an alarm that stays in ALARM)."""
        for action in transition.actions:
            runner = next((run for prefix, run in self.runners if action.startswith(prefix)),
                          None)
            try:
                if runner is None:
                    raise RuntimeError("eucalite has no service that carries out this action")
                runner(transition.account_id, action, transition)
                summary = f"Successfully executed action {action}"
            except Exception as error:  # noqa: BLE001 - recorded in the alarm's history
                log.warning("alarm %s: action %s failed: %s", transition.name, action, error)
                summary = f"Failed to execute action {action}. Received error: \"{error}\""
            if not record:
                continue
            with writing():
                alarms.history(transition.account_id, transition.name, "Action", summary,
                               {"actionState": "Succeeded" if summary.startswith("Succ")
                                else "Failed", "stateUpdateTimestamp": utcnow().isoformat(),
                                "notificationResource": action})


def evaluate_all(actions: Actions, now: int) -> int:
    """Evaluate every alarm once; returns how many changed state."""
    changed = 0
    rows = db.session.execute(select(Alarm.id, Alarm.account_id, Alarm.state,
                                     Alarm.definition_json, Alarm.actions_enabled,
                                     Alarm.name)).all()
    for alarm_id, account_id, state, definition_json, enabled, name in rows:
        definition = json.loads(definition_json)
        try:
            decision = decide(definition, state, values_of(account_id, definition, now))
        except Exception:  # noqa: BLE001 - one broken alarm must not stop the others
            log.exception("evaluating alarm %s failed", alarm_id)
            continue
        if decision is None:
            continue
        if decision.state == state:
            again = repeated(account_id, name, decision, definition, enabled)
            if again is not None:
                actions.run(again, record=False)
        with writing():
            alarm = db.session.get(Alarm, alarm_id)
            transition = None if alarm is None else change_state(alarm, state, decision)
        if transition is not None:
            changed += 1
            actions.run(transition)
    return changed
