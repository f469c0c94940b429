"""State machines for database rows: one table of allowed moves per resource, and the one
compare-and-swap update every state change goes through.

A resource (an instance, a volume, its attachment, a snapshot) declares its table once::

    VOLUME = StateMachine(Volume, {CREATING: {AVAILABLE, ERROR}, AVAILABLE: {DELETING}, ...})

and changes state only with ``VOLUME.transition(volume_id, AVAILABLE, expected={CREATING})``.
The update names the states the caller expects the row to be in, so two racing requests
cannot both win: the loser's update matches no row and it gets False back. A move the
table forbids is refused with ValueError before the database is touched: asking for it is a
bug in the caller, never a race to report as False.

A state may be ``None`` (a volume's attachment is ``None`` while detached). Neutral: this
module knows no role's states, only the database.
"""
from __future__ import annotations

from typing import Callable, Hashable, Iterable, Mapping

from .db import db, write_lock

State = Hashable        # usually a str; None where "no state" is a state (detached)


def compare_and_swap(model, key, column: str, expected: Iterable[State], changes: dict,
                     on_win: Callable[[], None] | None = None) -> bool:
    """Update *model*'s row *key* with *changes* only if its *column* is one of *expected*
    (``None`` matches NULL). True if this call changed the row, False if the row was in
    another state or is gone.

    Takes the write lock first (:func:`eucalite.db.write_lock`, which ends any transaction
    the session had open) and commits either way. *on_win*, if given, runs in the same
    transaction when the row changed, so what it writes (a snapshot's chunk list, an
    instance's capacity given back) is committed together with the new state or not at all.
    """
    expected = set(expected)
    field = getattr(model, column)
    named = sorted(state for state in expected if state is not None)
    condition = field.in_(named)
    if None in expected:
        condition = condition | field.is_(None)
    primary = list(model.__table__.primary_key.columns)[0]
    write_lock()
    result = db.session.execute(db.update(model).where(primary == key, condition)
                                .values(**changes))
    won = result.rowcount == 1
    if won and on_win is not None:
        on_win()
    db.session.commit()
    return won


class StateMachine:
    """The states of *model*'s *column*: ``table`` maps each state to the states it may
    move to. Every state must appear as a key (a final state maps to nothing)."""

    def __init__(self, model, table: Mapping[State, Iterable[State]], *,
                 column: str = "state"):
        self.model = model
        self.column = column
        self.table: dict[State, frozenset[State]] = {
            state: frozenset(targets) for state, targets in table.items()}
        unknown = set().union(*self.table.values()) - set(self.table)
        if unknown:
            raise ValueError(f"{model.__name__}.{column}: moves to states the table does "
                             f"not list: {sorted(map(str, unknown))}")

    @property
    def states(self) -> frozenset[State]:
        return frozenset(self.table)

    def allowed_from(self, target: State) -> frozenset[State]:
        """Every state from which *target* may be reached."""
        return frozenset(state for state, targets in self.table.items() if target in targets)

    def check(self, sources: Iterable[State], target: State) -> None:
        """ValueError unless the table allows every one of *sources* to move to *target*."""
        forbidden = set(sources) - self.allowed_from(target)
        if forbidden:
            raise ValueError(f"the {self.model.__name__}.{self.column} table forbids "
                             f"{', '.join(sorted(map(str, forbidden)))} -> {target}")

    def transition(self, key, target: State, /, *, expected: Iterable[State] | None = None,
                   on_win: Callable[[], None] | None = None, **changes) -> bool:
        """Move row *key* to *target* (recording *changes* with it) if it is in one of
        *expected* (default: every state the table allows to move to *target*). True if
        this call made the move, False if the row was in another state (a race lost) or is
        gone; commits either way. ValueError if *expected* names a forbidden move.
        *key* and *target* are positional only, so a column may be called ``target``."""
        sources = set(expected) if expected is not None else self.allowed_from(target)
        self.check(sources, target)
        return compare_and_swap(self.model, key, self.column, sources,
                                {**changes, self.column: target}, on_win)

    def note(self, key, expected: Iterable[State], /, *,
             on_win: Callable[[], None] | None = None, **changes) -> bool:
        """Record *changes* (never this machine's column) on row *key* if it is still in one
        of *expected*, leaving its state as it is. True if it was; commits either way."""
        if self.column in changes:
            raise ValueError(f"note() does not change {self.column}: use transition()")
        expected = set(expected)
        unknown = expected - self.states
        if unknown:
            raise ValueError(f"{self.model.__name__}.{self.column} has no state "
                             f"{', '.join(sorted(map(str, unknown)))}")
        return compare_and_swap(self.model, key, self.column, expected, changes, on_win)
