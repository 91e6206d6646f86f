"""Phone normalisation to E.164 with Google's libphonenumber (`phonenumbers`).

SQL cannot validate phone numbers, so the loader does it here, once per *distinct* phone string not
seen before: results are cached in `raw.phone_lookup`, so a daily reload parses only new numbers.
Large batches are split over worker processes (libphonenumber costs ~30 µs a number).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

import phonenumbers

PARALLEL_THRESHOLD = 50_000


def normalise(phone: str | None, region: str = "RU") -> tuple[str | None, str]:
    """Return (E.164 or None, status) where status is 'valid', 'invalid' or 'empty'."""
    if phone is None or not phone.strip():
        return None, "empty"
    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None, "invalid"
    if not phonenumbers.is_valid_number(number):
        return None, "invalid"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), "valid"


def _normalise_chunk(args: tuple[list[str], str]) -> list[tuple[str, str | None, str]]:
    phones, region = args
    return [(p, *normalise(p, region)) for p in phones]


def normalise_many(phones: list[str], region: str = "RU") -> list[tuple[str, str | None, str]]:
    """Normalise distinct phone strings; returns (phone_raw, phone_e164, phone_status) tuples."""
    workers = min(os.cpu_count() or 1, 4)
    if len(phones) < PARALLEL_THRESHOLD or workers < 2:
        return _normalise_chunk((phones, region))
    size = -(-len(phones) // (workers * 4))
    chunks = [(phones[i : i + size], region) for i in range(0, len(phones), size)]
    out: list[tuple[str, str | None, str]] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for part in pool.map(_normalise_chunk, chunks):
            out.extend(part)
    return out
