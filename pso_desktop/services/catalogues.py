"""The form catalogues the PSO published, on the client (issue 11, item 3).

Sync fetches each published catalogue once (``GET /reference/catalogues/{version}``, checked against the
SHA-256 that ``/reference`` gives) and keeps it in the encrypted profile (``AccountStore.save_catalogue``).
Unlocking the profile installs them, so the form, validation, exports and printouts use them offline from then
on; new drafts start on the version the PSO last made current, unless it was withdrawn. A draft started on an
older version keeps it, or is moved to another one with :func:`move_report`, which says in one sentence per
answer what no longer fits.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping
from typing import Any

from pso_desktop.domain.catalogue import (
    CURRENT_FORM_VERSION,
    GENERIC_ANSWER_SETS,
    Answer,
    Catalogue,
    Question,
    install_catalogue,
    load_catalogue,
    parse_catalogue,
)
from pso_desktop.storage.account import AccountStore

_log = logging.getLogger(__name__)


def install_kept(account: AccountStore) -> int:
    """Installs every catalogue kept in the profile; returns how many. One that cannot be read is skipped
    (logged by version name only) and fetched again at the next sync."""
    installed = 0
    for version, body in account.catalogues():
        try:
            install_catalogue(parse_catalogue(json.loads(body)))
        except (KeyError, TypeError, ValueError, AttributeError):
            _log.warning(
                "Kept form catalogue %s could not be read; it is fetched again at the next sync.", version
            )
            continue
        installed += 1
    return installed


def new_draft_version(reference: Mapping[str, Any] | None) -> str:
    """The form version a new report starts on: the PSO's current one when this app has its catalogue and it
    was not withdrawn; otherwise the bundled version (never a withdrawn one while another can be used)."""
    if not reference:
        return CURRENT_FORM_VERSION
    withdrawn = reference.get("withdrawn_versions")
    withdrawn = set(withdrawn) if isinstance(withdrawn, list) else set()
    candidates = [reference.get("form_catalogue_version")]
    accepted = reference.get("form_versions")
    if isinstance(accepted, list):
        candidates += list(reversed(accepted))
    for version in candidates:
        if isinstance(version, str) and version not in withdrawn and _known(version):
            return version
    return CURRENT_FORM_VERSION


def is_withdrawn(reference: Mapping[str, Any] | None, version: str) -> bool:
    withdrawn = (reference or {}).get("withdrawn_versions")
    return isinstance(withdrawn, list) and version in withdrawn


def _known(version: str) -> bool:
    try:
        load_catalogue(version)
    except KeyError:
        return False
    return True


def move_report(report: Mapping[str, Any], target: Catalogue) -> tuple[dict[str, Any], list[str]]:
    """``report`` moved to ``target``'s form version, with the answers that no longer fit left out, and one
    sentence per answer left out (question and answer texts come from the catalogues, never from what was
    typed): categories, the generic form's coded answers (an answer its list no longer offers, a harm level),
    module answers and each entry of a repeating group (an entry over the new limit, its answers one by one).
    Free text and dates are kept; Submit's validation names anything else that no longer fits."""
    moved = copy.deepcopy(dict(report))
    old_version = report.get("form_version")
    try:
        old: Catalogue | None = load_catalogue(old_version) if isinstance(old_version, str) else None
    except KeyError:
        old = None
    said: list[str] = []
    categories = moved.get("categories")
    if isinstance(categories, list):
        kept = []
        for code in categories:
            if isinstance(code, str) and target.category(code) is None:
                was = old.category(code) if old else None
                name = f'"{was.display}"' if was else "A category"
                said.append(f"{name} is no longer an event category; choose the category again.")
                if was is not None and was.specify:
                    moved.pop("categories_other", None)  # its "please specify" text goes with it
            else:
                kept.append(code)
        moved["categories"] = kept
    said += _move_generic(moved, target, old)
    modules = moved.get("modules")
    if isinstance(modules, dict):
        for key in list(modules):
            module = target.modules.get(key)
            answers = modules[key]
            old_module = old.modules.get(key) if old else None
            if module is None:
                title = old_module.title if old_module else "A module"
                said.append(f"The {title} questions are no longer on the form; their answers were left out.")
                del modules[key]
                continue
            if isinstance(answers, dict):
                old_questions = old_module.by_id if old_module else {}
                said += _move_answers(answers, module.by_id, old_questions, module.title)
    moved["form_version"] = target.version
    return moved, said


def _move_generic(moved: dict[str, Any], target: Catalogue, old: Catalogue | None) -> list[str]:
    """The generic form's coded answers that ``target`` no longer offers, left out (one sentence each)."""
    said: list[str] = []
    fields: list[tuple[str, tuple[Answer, ...], tuple[Answer, ...]]] = [
        ("harm.level", target.harm_levels, old.harm_levels if old else ())
    ]
    for path, name in GENERIC_ANSWER_SETS.items():
        was = old.answer_sets.get(name, ()) if old else ()
        fields.append((path, target.answer_sets.get(name, ()), was))
    for path, offered, was in fields:
        section, _, key = path.rpartition(".")
        holder = moved.get(section) if section else moved
        if not isinstance(holder, dict) or key not in holder:
            continue
        value, codes = holder[key], {a.code for a in offered}
        label = target.label(path)
        given = value if isinstance(value, list) else [value]
        gone = [v for v in given if isinstance(v, str) and v not in codes]
        for code in gone:
            said.append(f'"{label}": {_answer_words(was, code)} is no longer offered; it was left out.')
        if not gone:
            continue
        kept = [v for v in given if v not in gone]
        if isinstance(value, list):
            holder[key] = kept
        else:
            del holder[key]
        if "A66" in gone:  # its "please specify" text goes with it
            holder.pop(f"{key}_other", None)
    return said


def _move_answers(
    answers: dict[str, Any], questions: Mapping[str, Question], old: Mapping[str, Question], title: str
) -> list[str]:
    said: list[str] = []
    for qid in [k for k in answers if not k.endswith("_specify")]:
        question = questions.get(qid)
        before = old.get(qid)
        asked = f'"{before.text}"' if before else f"A question of the {title} form"
        value = answers[qid]
        if question is None:
            said.append(f"{asked} ({title}) is no longer asked; its answer was left out.")
            del answers[qid]
        elif before is not None and before.type != question.type:
            said.append(f'"{question.text}" ({title}) is now asked differently; answer it again.')
            del answers[qid]
        elif question.type == "choice" and isinstance(value, str) and value not in question.codes:
            said.append(
                f'"{question.text}" ({title}): {_answer_words(before, value)} is no longer offered; choose again.'
            )
            del answers[qid]
        elif question.type == "multi" and isinstance(value, list):
            gone = [v for v in value if isinstance(v, str) and v not in question.codes]
            for code in gone:
                said.append(
                    f'"{question.text}" ({title}): {_answer_words(before, code)} is no longer offered; it was left out.'
                )
            answers[qid] = [v for v in value if v not in gone]
        elif question.type == "group" and isinstance(value, list):
            if len(value) > question.max_items:
                said.append(
                    f'"{question.text}" ({title}) now takes at most {question.max_items} '
                    f"{question.item_name}(s); the ones after that were left out."
                )
                del value[question.max_items :]
            old_children = before.children.by_id if before is not None else {}
            for n, entry in enumerate(value, start=1):
                if isinstance(entry, dict):
                    where = f"{title}, {question.item_name} {n}"
                    said += _move_answers(entry, question.children.by_id, old_children, where)
    for key in [k for k in answers if k.endswith("_specify")]:
        base = key.removesuffix("_specify")
        question = questions.get(base)
        if base not in answers or question is None or not question.specify_codes:
            del answers[key]
    return said


def _answer_words(question: Question | tuple[Answer, ...] | None, code: str) -> str:
    answers = question.answers if isinstance(question, Question) else question or ()
    answer = next((a for a in answers if a.code == code), None)
    return f'the answer "{answer.display}"' if answer else "the answer given"
