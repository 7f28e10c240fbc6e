"""Sentences the command line and the window both show, kept in one place so they cannot drift apart.

Pure Python with no imports: the window's first screen reads it before any service is loaded.
"""

from __future__ import annotations

# The commonest lock-out is a forgotten password: said once, at profile creation, before it can happen.
LOCKOUT_NOTE = (
    "If this password is forgotten, nobody can reset it: reports not yet sent to the PSO stay locked in this "
    "profile for good, while reports already sent are kept at the PSO."
)

# A report's state in this profile and its status at the PSO, as the list, the editor and the readable CSV say them.
STATE_LABELS = {
    "draft": "Draft",
    "queued": "Queued",
    "sending": "Sending",
    "submitted": "Submitted",
    "needs_attention": "Needs attention",
}
# The list's chips: the profile's own reports by state, then a risk manager's copies of the facility's reports.
CHIP_LABELS = {**STATE_LABELS, "facility": "Facility"}
# A facility's own review of a report (issue 12), beside the PSO's status.
REVIEW_STATE_LABELS = {
    "new": "New",
    "in_review": "In review",
    "waiting_for_information": "Waiting for information",
    "closed": "Closed",
}
REVIEW_FIELD_LABELS = {"state": "Review state", "assignee": "Assignee", "harm": "Harm after review"}

PSO_STATUS_LABELS = {
    "received": "Received",
    "under_review": "Under review",
    "more_info_requested": "More information requested",
    "closed": "Closed",
}
