"""Naive-UTC time, the convention of PanDA's DB columns; passed in explicitly so simulations can drive it."""

import datetime


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
