"""Use cases of a risk manager's review (issue 12, item 2): read a report's review, change its state, assignee or
harm after review, add a note or an action; and open a facility report, which is audited as a view.

Qt-free; the window calls these on its database worker. Each change is stored with its audit entry in one
transaction (the entry names the report and what kind of change, never its text), and waits for the next sync
to reach the facility's other risk managers (see storage/facility.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pso_desktop.services.workstation import Session
from pso_desktop.storage.facility import Review


def author(session: Session) -> str:
    """Who signs review records made here: the PSO account the profile is linked to (else the profile)."""
    account = session.account.get()
    return account.username if account is not None else session.profile


def review(session: Session, report_id: str) -> Review:
    return session.facility.review(report_id)


def open_report(session: Session, report_id: str) -> dict[str, Any] | None:
    """A report's content for reading; opening a copy of the facility's report is audited (a view)."""
    content = session.store.get(report_id)
    if content is not None and session.facility.is_facility_copy(report_id):
        session.audit.append("view", actor=session.profile, report_id=report_id, detail="facility report")
    return content


def change_field(session: Session, report_id: str, field: str, value: str | None) -> Review:
    """Sets the review's ``state``, ``assignee`` or ``harm`` (after review); also how a conflict is resolved
    (the value chosen is made on the version that holds the conflict)."""
    with session.write():
        session.facility.change_field(report_id, field, value, author(session))
        session.audit.append("review", actor=session.profile, report_id=report_id, detail=f"{field} changed")
    return session.facility.review(report_id)


def add_note(session: Session, report_id: str, text: str) -> Review:
    with session.write():
        session.facility.add_note(report_id, text, author(session))
        session.audit.append("review", actor=session.profile, report_id=report_id, detail="note added")
    return session.facility.review(report_id)


def add_action(session: Session, report_id: str, text: str, owner: str | None, due: dt.date | None) -> Review:
    with session.write():
        session.facility.add_action(report_id, text, owner, due, author(session))
        session.audit.append("review", actor=session.profile, report_id=report_id, detail="action added")
    return session.facility.review(report_id)
