"""STIX timestamps: text <-> aware UTC datetimes, and time windows.

A window is (start, stop): text as a hunter wrote it (START/STOP, kept so the
STIX pattern repeats it) or datetimes (LAST, windows derived from records).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Optional


def parse_timestamp(text: str) -> datetime:
    """ISO-8601 UTC text (`Z`, any sub-second digits) to an aware datetime."""
    body = text.rstrip("Zz")
    seconds, _, fraction = body.partition(".")
    if len(seconds) == 19 and seconds[10] == "T" and seconds.isascii():  # the usual form,
        stamp = datetime.fromisoformat(seconds)  # read 40 times faster than by strptime
    else:
        stamp = datetime.strptime(seconds, "%Y-%m-%dT%H:%M:%S")
    micro = int((fraction + "000000")[:6]) if fraction else 0
    return stamp.replace(microsecond=micro, tzinfo=timezone.utc)


def format_timestamp(moment: datetime) -> str:
    """An aware or naive-UTC datetime to STIX timestamp text, millisecond precision."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    # the year by hand: strftime writes year 1 as "1", which no reader takes back
    return f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%S.") + \
        f"{moment.microsecond // 1000:03d}Z"


def shifted(moment: datetime, seconds: float) -> datetime:
    """`moment` moved by `seconds`, kept within the years STIX allows (0001-9999)."""
    try:
        return moment + timedelta(seconds=seconds)
    except OverflowError:
        return (datetime.max if seconds > 0 else datetime.min).replace(tzinfo=moment.tzinfo)


def window_datetimes(window) -> Optional[tuple]:
    """A window's ends as datetimes (None stays None)."""
    if window is None:
        return None
    return tuple(parse_timestamp(t) if isinstance(t, str) else t for t in window)
