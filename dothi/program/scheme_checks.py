"""Checks of what is given to a provincial smart-city scheme or plan (``schemes``): each
raises BadRequestData saying what is wrong, before anything is read or written."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from dothi.errors import BadRequestData, only_members
from dothi.program.fields import bilingual, parse_date, text

# A unit has no "-" so that a task's id, {unit}-{key}-{code}, reads back one way only:
# the unit ends at the first "-" and the code (which has none either) starts at the last.
UNIT = re.compile(r"[A-Za-z0-9_]{1,32}")
KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._]{0,39}")
PERIOD = re.compile(r"(\d{4})(?:-(\d{4}))?")
# "1234/QĐ-UBND", "45/KH-UBND" (a plan is issued as a kế hoạch), "15/2025/QĐ-UBND".
DOCUMENT_NUMBER = re.compile(r"\d{1,6}(?:/\d{4})?/[A-ZĐ]{2,}(?:-[A-ZĐ0-9]+)+")
NATIONAL_TASK = "urn:ngsi-ld:ProgrammeTask:"
KINDS = ("scheme", "plan")
POSITIONS = ("agree", "agreeWithComments", "disagree")
CONTENT = ("kind", "title", "document", "summary", "period", "tasks")
TASK_TEXTS = ("expectedProduct", "leadAgency")
TASK_OPTIONAL = ("responsiblePerson", "responsibility", "authority")
TASK_FIELDS = {"code", "name", "deadline", "refNational", *TASK_TEXTS, *TASK_OPTIONAL}
MAX_TASKS = 200


def unit(value: str) -> str:
    if not UNIT.fullmatch(value):
        raise BadRequestData("unit is the province's code (such as 48): 1 to 32 letters, "
                             "digits and _")
    return value


def unit_key(value: str, key: str) -> None:
    unit(value)
    if not KEY.fullmatch(key):
        raise BadRequestData("key is 1 to 64 letters, digits, - and _")


def later(value: Any, name: str, today: date) -> date:
    """A date after ``today``: what a deadline or a next review must be."""
    found = parse_date(value, name)
    if found <= today:
        raise BadRequestData(f"{name} must be after today ({today})")
    return found


def link(value: Any, name: str) -> str:
    if not isinstance(value, str) or len(value) > 2000 or \
            not value.startswith(("https://", "http://")) or len(value.split("//", 1)[1]) < 3:
        raise BadRequestData(f"{name} is an http(s) link")
    return value


def content(body: dict[str, Any]) -> dict[str, Any]:
    """The draft content of a PUT: what the scheme says, as it will be kept."""
    only_members(body, set(CONTENT), f"; a scheme's content is {', '.join(CONTENT)}")
    if body.get("kind") not in KINDS:
        raise BadRequestData("kind is scheme (đề án) or plan (kế hoạch)")
    period = body.get("period")
    match = PERIOD.fullmatch(period) if isinstance(period, str) else None
    if match is None or match.group(2) is not None and match.group(2) < match.group(1):
        raise BadRequestData("period is a year or a span of years, such as 2026-2030")
    out: dict[str, Any] = {"kind": body["kind"], "title": bilingual(body.get("title"), "title"),
                           "document": link(body.get("document"), "document"),
                           "period": period}
    if body.get("summary") is not None:
        out["summary"] = text(body["summary"], "summary", 5000)
    tasks = body.get("tasks", [])
    if not isinstance(tasks, list) or len(tasks) > MAX_TASKS:
        raise BadRequestData(f"tasks is a list of at most {MAX_TASKS} tasks")
    seen: set[str] = set()
    out["tasks"] = [task(item, seen) for item in tasks]
    return out


def task(item: Any, seen: set[str]) -> dict[str, Any]:
    """One task the scheme creates, serving a national task (``refNational``)."""
    if not isinstance(item, dict):
        raise BadRequestData("each task is an object")
    code = item.get("code")
    if not isinstance(code, str) or not CODE.fullmatch(code):
        raise BadRequestData("a task's code is 1 to 40 letters, digits, '.' and '_'")
    if code in seen:
        raise BadRequestData(f"task {code} is listed twice")
    seen.add(code)
    unknown = set(item) - TASK_FIELDS
    if unknown:
        raise BadRequestData(f"task {code}: unknown fields {sorted(unknown)}; a task has "
                             f"{', '.join(sorted(TASK_FIELDS))}")
    national = item.get("refNational")
    if not isinstance(national, str) or not national.startswith(NATIONAL_TASK) or \
            len(national) == len(NATIONAL_TASK) or len(national) > 300:
        raise BadRequestData(f"task {code}: refNational is the id of the national task it "
                             f"serves ({NATIONAL_TASK}…)")
    out: dict[str, Any] = {"code": code, "name": bilingual(item.get("name"), f"task {code} name"),
                           "deadline": parse_date(item.get("deadline"),
                                           f"task {code} deadline").isoformat()}
    for name in TASK_TEXTS:
        out[name] = text(item.get(name), f"task {code} {name}")
    for name in TASK_OPTIONAL:
        if item.get(name) is not None:
            out[name] = text(item[name], f"task {code} {name}")
    out["refNational"] = national
    return out


def members(value: Any) -> list[str]:
    """Who the council expects an opinion from: people or agencies, by name."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 100:
        raise BadRequestData("members is a list of at most 100 names")
    names = [text(m, "each member", 200) for m in value]
    if len(set(names)) != len(names):
        raise BadRequestData("members lists a name twice")
    return names


def opinion(body: dict[str, Any]) -> dict[str, Any]:
    only_members(body, {"member", "agency", "position", "text"})
    position = body.get("position")
    if position not in POSITIONS:
        raise BadRequestData(f"position is one of {', '.join(POSITIONS)}")
    out = {"member": text(body.get("member"), "member", 200),
           "agency": text(body.get("agency"), "agency", 200), "position": position}
    # Agreeing needs no reason; comments and a disagreement are nothing without one.
    if position != "agree" or body.get("text") is not None:
        out["text"] = text(body.get("text"), "text", 5000)
    return out


def document_number(value: Any) -> str:
    if not isinstance(value, str) or not DOCUMENT_NUMBER.fullmatch(value.strip()):
        raise BadRequestData("decisionNumber is the number of the decision or plan, such as "
                             "1234/QĐ-UBND or 45/KH-UBND")
    return value.strip()
