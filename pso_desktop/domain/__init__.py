"""The Common Formats domain: report models, the form catalogue and validation. Pure Python: no Qt, storage or HTTP."""

from pso_desktop.domain.catalogue import CURRENT_FORM_VERSION, Catalogue, load_catalogue
from pso_desktop.domain.models import Report
from pso_desktop.domain.schema import report_json_schema
from pso_desktop.domain.validation import FieldError, ReportInvalid, validate_report
from pso_desktop.domain.wire import canonical_json, content_hash

__all__ = [
    "CURRENT_FORM_VERSION",
    "Catalogue",
    "FieldError",
    "Report",
    "ReportInvalid",
    "canonical_json",
    "content_hash",
    "load_catalogue",
    "report_json_schema",
    "validate_report",
]
