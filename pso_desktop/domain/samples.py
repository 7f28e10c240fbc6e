"""Realistic, valid, entirely fictitious reports for tests, benchmarks and the training (demo) mode."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

_FIRST = [
    "Avery",
    "Jordan",
    "Maria",
    "Wei",
    "Olumide",
    "Sofia",
    "Liam",
    "Priya",
    "Mateo",
    "Hannah",
    "Yusuf",
    "Grace",
]
_LAST = [
    "Okafor",
    "Lindqvist",
    "Nguyen",
    "Castillo",
    "Brennan",
    "Haddad",
    "Kowalski",
    "Tanaka",
    "Moreau",
    "Reyes",
]
_UNITS = ["4W-MEDSURG", "5E-ONC", "ICU-2", "ED", "PACU", "L&D", "PEDS-3", "REHAB", "TELE-6", "OR-MAIN"]
_STAFF = ["RN", "charge nurse", "night-shift RN", "LPN", "resident", "pharmacist", "nursing assistant"]
_DRUGS = [
    ("heparin", "5,000 units/mL"),
    ("insulin glargine", "100 units/mL"),
    ("morphine", "2 mg/mL"),
    ("vancomycin", "1 g"),
    ("metoprolol tartrate", "25 mg"),
    ("potassium chloride", "20 mEq"),
    ("enoxaparin", "40 mg/0.4 mL"),
    ("ondansetron", "4 mg"),
]

_FALL_STORIES = [
    "Patient found on the floor beside the bed at {time} during hourly rounding by the {staff}. Bed alarm was "
    "not activated after the last repositioning. Patient states they were trying to reach the bathroom without "
    "calling for help. Vital signs stable; small hematoma noted on the left forearm. Physician notified, "
    "neuro checks started every hour, bed alarm re-enabled and non-slip socks applied.",
    "While ambulating to the chair with the {staff}, the patient's knees buckled and the patient was lowered to "
    "the floor. No head strike observed. Gait belt was in use. Patient assessed by the covering provider; no "
    "injury found. Physical therapy consult requested and mobility plan updated on the whiteboard.",
    "Unwitnessed fall in the bathroom at {time}. Call light was within reach but not used. Patient on "
    "scheduled diuretic and reported dizziness earlier in the shift. Skin tear to the right shin dressed; "
    "family informed by phone. Fall risk reassessed and toileting schedule started.",
]
_MED_STORIES = [
    "{drug} {strength} was scanned at the bedside and the barcode scanner flagged a mismatch with the active "
    "order. Dose had been pulled from the automated cabinet override list. The {staff} held the dose and called "
    "pharmacy; the correct product was dispensed and given 40 minutes late.",
    "Second {drug} dose was given at {time} although the first dose had already been charted by the previous "
    "shift on paper during the EHR downtime. Patient monitored; provider notified; no change in condition so "
    "far. Downtime reconciliation process to be reviewed.",
    "Infusion pump programmed at the wrong rate for {drug}: entered mL/h instead of units/h. Discovered at "
    "handover by the oncoming {staff} during the independent double check. Pump corrected, labs drawn per "
    "protocol.",
]
_UNSAFE_STORIES = [
    "Look-alike vials of {drug} {strength} and a different concentration stored in adjacent bins in the "
    "medication room on {unit}. No patient involved; bins separated and tall-man labels requested.",
    "The only working bed-exit alarm sensor on {unit} was borrowed for another room; three high fall-risk "
    "patients without alarms during the night shift. Reported to biomedical engineering.",
]


def _person(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def _mrn(rng: random.Random) -> str:
    return f"MRN{rng.randrange(10**7, 10**8)}"


def _story(rng: random.Random, stories: list[str], drug: tuple[str, str], unit: str) -> str:
    time = f"{rng.randrange(0, 24):02d}:{rng.choice(['05', '15', '30', '45'])}"
    return rng.choice(stories).format(
        time=time, staff=rng.choice(_STAFF), drug=drug[0], strength=drug[1], unit=unit
    )


def sample_report(rng: random.Random, index: int = 0, *, today: dt.date | None = None) -> dict[str, Any]:
    """A valid wire-form report with a fresh UUID: ~45% falls, ~35% medication events, ~20% unsafe conditions."""
    today = today or dt.date.today()
    discovered = today - dt.timedelta(days=rng.randrange(0, 60))
    unit = rng.choice(_UNITS)
    drug = rng.choice(_DRUGS)
    roll = rng.random()
    report: dict[str, Any] = {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "revision": 1,
        "form_version": "hospital-2.0",
        "report_date": discovered.isoformat(),
        "discovery": {
            "date": discovered.isoformat(),
            "time": f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:00",
        },
        "location": {"unit": unit, "description": f"Room {rng.randrange(1, 40)}{rng.choice('AB')}"},
        "contributing_factors": rng.sample(["communication", "staffing", "environment", "policies", "hit"], 2),
        "handover_involved": rng.choice(["A15", "A18", "UNK"]),
    }
    anonymous = rng.random() < 0.3
    report["reporter"] = (
        {"anonymous": True, "first_reported_by": "A288"}
        if anonymous
        else {
            "name": _person(rng),
            "job": rng.choice(_STAFF),
            "telephone": f"555-01{index % 100:02d}",
            "email": f"staff{index}@example-hospital.org",
            "first_reported_by": "A288",
            "professional_type": "A306",
        }
    )
    patient = {
        "name": _person(rng),
        "mrn": _mrn(rng),
        "gender": rng.choice(["M", "F"]),
        "age_years": rng.randrange(18, 98),
        "ethnicity": rng.choice(["A15", "A18", "UNK"]),
        "race": [rng.choice(["asian", "black", "white", "UNK"])],
    }
    if roll < 0.45:
        assisted = rng.random() < 0.3
        injured = rng.random() < 0.4
        report |= {
            "event_type": "incident",
            "categories": ["A48"],
            "narrative": _story(rng, _FALL_STORIES, drug, unit) + f" Ref {index}.",
            "patient": patient,
            "harm": {"evidence_of_harm": "A15", "level": "LA21150-0"}
            if injured
            else {"evidence_of_harm": "A18", "level": "LA21151-8"},
            "rescue": {"attempted": "A15", "interventions": "Neuro checks; ice pack; provider assessment"},
            "preventability": rng.choice(["likely", "unlikely", "UNK"]),
            "modules": {
                "fall": {
                    "DE192": "A870" if assisted else "A867",
                    "DE204": "A905" if injured else "A910",
                    "DE210": "A15",
                    "DE213": rng.choice(["A15", "A18"]),
                }
            },
        }
    elif roll < 0.80:
        near_miss = rng.random() < 0.5
        product = {
            "generic_name": drug[0],
            "strength": drug[1],
            "dosage_form": "injection",
            "prescribed": "A15",
        }
        if not near_miss:
            product["given"] = "A15"
        report |= {
            "event_type": "near_miss" if near_miss else "incident",
            "categories": ["A54"],
            "narrative": _story(rng, _MED_STORIES, drug, unit) + f" Ref {index}.",
            "patient": patient,
            "modules": {
                "medication": {
                    "substance_type": "medications",
                    "medication_type": "prescription_otc",
                    "characterisation": "incorrect_action",
                    "incorrect_actions": ["dose"],
                    "dose_error": rng.choice(["overdose", "extra", "omitted"]),
                    "stage": "administering",
                    "products": [product],
                }
            },
        }
        if near_miss:
            report["near_miss_reason"] = "intervention"
        else:
            report["harm"] = {"evidence_of_harm": "A18", "level": "LA21151-8"}
    else:
        report |= {
            "event_type": "unsafe_condition",
            "categories": ["A54"] if rng.random() < 0.5 else ["A45"],
            "narrative": _story(rng, _UNSAFE_STORIES, drug, unit) + f" Ref {index}.",
        }
        if report["categories"] == ["A54"]:
            report["modules"] = {
                "medication": {
                    "substance_type": "medications",
                    "medication_type": "prescription_otc",
                    "characterisation": "unsafe_condition",  # no stage: asked only for an incorrect action
                    "products": [{"generic_name": drug[0], "strength": drug[1]}],
                }
            }
    return report
