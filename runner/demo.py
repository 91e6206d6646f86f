"""A deterministic synthetic clinic: the canonical CSV exports of a multi-specialty private clinic.

`patientbase demo` calls :func:`generate`, which writes the seven raw tables of CONTRACT §1
(patients, visits, visit_services, payments, treatment_plans, calls, marketing_spend) as UTF-8 CSV in
the canonical format the loader reads without a mapping.

How it works
------------
Every *person* gets one behavioural archetype (acute one-off, chronic, hygiene recall, VIP, ...; see
``ARCHETYPES`` and docs/demo.md), an acquisition channel that depends on the archetype (referrals
bring loyal patients, context ads bring one-offs) and a first-visit day drawn from a calendar with a
growth trend, seasons and quiet Sundays. An archetype is a few vectorised *visit streams*: a
recurring visit every N±k days, Poisson illness episodes with follow-ups, a treatment-plan flow.
Real-MIS noise is layered on top: no-shows and cancellations, the call centre's calls and the visits
they book, duplicate patient cards, families sharing a phone, phones typed a dozen ways, opt-outs.

Everything is NumPy arrays: there is no Python loop over patients, visits or rows (only over a
handful of archetypes, specialties, services and years). Every table is sorted by its id in NumPy
and written by an in-memory DuckDB that keeps insertion order, with fixed number formats, so the same
seed and arguments give byte-identical files. Each file is written to ``<name>.csv.tmp`` and renamed,
so a killed run never leaves a half file under the final name.

Conventions inside this module: a *day* is an integer counted from the window start
(``day 0 = today - years``), ``D`` is the day number of *today*; times are seconds since the window
start; money is integer kopecks until it is written.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

__all__ = ["DEMO_TODAY", "TABLE_COLUMNS", "generate"]

#: The demo clinic's "today": history ends the day before, scheduled visits start on it.
DEMO_TODAY = _dt.date(2026, 11, 1)

#: CONTRACT §1 columns, in file order.
TABLE_COLUMNS: dict[str, list[str]] = {
    "patients": [
        "patient_id", "last_name", "first_name", "middle_name", "birth_date", "sex", "phone", "email",
        "branch_id", "source_channel", "referred_by_patient_id", "created_at", "do_not_call",
        "do_not_message", "is_deceased", "loyalty_member_since",
    ],
    "visits": ["visit_id", "patient_id", "scheduled_at", "status", "doctor_id", "specialty", "branch_id", "booked_at"],
    "visit_services": ["visit_id", "service_code", "service_name", "service_category", "quantity", "amount"],
    "payments": ["payment_id", "patient_id", "visit_id", "paid_at", "amount", "method"],
    "treatment_plans": [
        "plan_id", "patient_id", "doctor_id", "specialty", "created_at", "total_amount", "status",
        "status_changed_at",
    ],
    "calls": ["call_id", "patient_id", "operator_id", "called_at", "duration_s", "result", "action_code", "comment"],
    "marketing_spend": ["month", "channel", "amount"],
}

# ================================================================================================
# Catalogues
# ================================================================================================

SPECIALTIES = ["dentistry", "gynecology", "cardiology", "therapy", "pediatrics", "ophthalmology",
               "dermatology", "endocrinology"]
DENT, GYN, CARD, THER, PED, OPH, DERM, ENDO = range(8)
N_SPEC = len(SPECIALTIES)

# What an appointment is for; decides its services. "repeat" is set later for consultations that are
# not the person's first in that specialty.
KINDS = ["consultation", "repeat", "diagnostics", "hygiene", "checkup", "vaccination", "chronic", "treatment",
         "minor_treatment"]
K_CONS, K_REP, K_DIAG, K_HYG, K_CHK, K_VAC, K_CHR, K_TRT, K_MINOR = range(9)
N_KIND = len(KINDS)

STATUSES = ["completed", "no_show", "cancelled", "scheduled"]
COMPLETED, NO_SHOW, CANCELLED, SCHEDULED = range(4)
PLAN_STATUSES = ["proposed", "accepted", "in_progress", "completed", "declined", "cancelled"]
PL_PROPOSED, PL_ACCEPTED, PL_IN_PROGRESS, PL_COMPLETED, PL_DECLINED, PL_CANCELLED = range(6)

# Doctors per specialty in each branch (order of SPECIALTIES). B1 is the flagship with every
# specialty; further branches alternate between two smaller line-ups. 3 branches = 34 doctors.
STAFFING = [
    [4, 2, 1, 3, 2, 1, 1, 1],   # B1
    [3, 1, 1, 2, 2, 1, 0, 0],   # B2
    [3, 1, 0, 2, 1, 0, 1, 1],   # B3
]
BRANCH_SHARE = [0.5, 0.3, 0.2]      # home branch of new patients (more branches: 1/rank weights)

# Service catalogue: code, name (as the MIS prints it), category (CONTRACT), specialty, price (RUB
# today; past prices are deflated by PRICE_GROWTH a year), quantity weights (1, 2, 3, ... units).
SERVICES = [
    ("S0101", "Приём стоматолога-терапевта первичный", "consultation", DENT, 1500, (1,)),
    ("S0102", "Приём стоматолога повторный", "consultation", DENT, 900, (1,)),
    ("S0103", "Профессиональная гигиена полости рта", "hygiene", DENT, 6500, (1,)),
    ("S0104", "Ультразвуковая чистка зубов с полировкой", "hygiene", DENT, 4200, (1,)),
    ("S0105", "Прицельный рентгеновский снимок зуба", "diagnostics", DENT, 600, (0.7, 0.3)),
    ("S0106", "Ортопантомограмма (ОПТГ)", "diagnostics", DENT, 1900, (1,)),
    ("S0107", "Конусно-лучевая компьютерная томография челюсти", "diagnostics", DENT, 3800, (1,)),
    ("S0108", "Лечение кариеса с установкой пломбы", "treatment", DENT, 7800, (0.6, 0.3, 0.1)),
    ("S0109", "Лечение пульпита одноканального зуба", "treatment", DENT, 12500, (0.85, 0.15)),
    ("S0110", "Коронка металлокерамическая", "treatment", DENT, 23000, (0.6, 0.3, 0.1)),
    ("S0111", "Установка дентального импланта", "surgery", DENT, 48000, (0.75, 0.25)),
    ("S0112", "Удаление зуба простое", "surgery", DENT, 4500, (0.8, 0.2)),
    ("S0113", "Анестезия инфильтрационная", "treatment", DENT, 850, (0.6, 0.3, 0.1)),
    ("S0114", "Фторирование зубов", "hygiene", DENT, 1800, (1,)),
    ("S0201", "Приём гинеколога первичный", "consultation", GYN, 2600, (1,)),
    ("S0202", "Приём гинеколога повторный", "consultation", GYN, 2000, (1,)),
    ("S0203", "УЗИ органов малого таза", "diagnostics", GYN, 2700, (1,)),
    ("S0204", "Мазок на онкоцитологию (ПАП-тест)", "diagnostics", GYN, 1300, (1,)),
    ("S0205", "Кольпоскопия расширенная", "diagnostics", GYN, 2900, (1,)),
    ("S0206", "Радиоволновое лечение шейки матки", "treatment", GYN, 14000, (1,)),
    ("S0207", "Гистероскопия", "surgery", GYN, 34000, (1,)),
    ("S0208", "Программа «Женское здоровье»", "checkup", GYN, 15900, (1,)),
    ("S0301", "Приём кардиолога первичный", "consultation", CARD, 2900, (1,)),
    ("S0302", "Приём кардиолога повторный", "consultation", CARD, 2300, (1,)),
    ("S0303", "Диспансерный приём кардиолога", "chronic_care", CARD, 2500, (1,)),
    ("S0304", "ЭКГ с расшифровкой", "diagnostics", CARD, 1200, (1,)),
    ("S0305", "Эхокардиография", "diagnostics", CARD, 3900, (1,)),
    ("S0306", "Суточное мониторирование ЭКГ по Холтеру", "diagnostics", CARD, 4300, (1,)),
    ("S0307", "Программа «Здоровое сердце»", "checkup", CARD, 17500, (1,)),
    ("S0401", "Приём терапевта первичный", "consultation", THER, 2200, (1,)),
    ("S0402", "Приём терапевта повторный", "consultation", THER, 1700, (1,)),
    ("S0403", "Диспансерный приём терапевта", "chronic_care", THER, 1900, (1,)),
    ("S0404", "Общий анализ крови", "diagnostics", THER, 650, (1,)),
    ("S0405", "Биохимический анализ крови (базовый)", "diagnostics", THER, 2400, (1,)),
    ("S0406", "Программа «Check-up базовый»", "checkup", THER, 12900, (1,)),
    ("S0407", "Вакцинация против гриппа", "vaccination", THER, 1500, (1,)),
    ("S0408", "УЗИ органов брюшной полости", "diagnostics", THER, 2800, (1,)),
    ("S0501", "Приём педиатра первичный", "consultation", PED, 2100, (1,)),
    ("S0502", "Приём педиатра повторный", "consultation", PED, 1700, (1,)),
    ("S0503", "Профилактический осмотр ребёнка", "checkup", PED, 3900, (1,)),
    ("S0504", "Вакцинация ребёнка (импортная вакцина)", "vaccination", PED, 4800, (1,)),
    ("S0505", "Медицинская справка в школу, детский сад", "checkup", PED, 950, (1,)),
    ("S0601", "Приём офтальмолога первичный", "consultation", OPH, 2300, (1,)),
    ("S0602", "Приём офтальмолога повторный", "consultation", OPH, 1700, (1,)),
    ("S0603", "Проверка остроты зрения и подбор очков", "diagnostics", OPH, 1500, (1,)),
    ("S0604", "Осмотр глазного дна с широким зрачком", "diagnostics", OPH, 1200, (1,)),
    ("S0605", "Оптическая когерентная томография сетчатки", "diagnostics", OPH, 3200, (1,)),
    ("S0606", "Лазерная коагуляция сетчатки", "surgery", OPH, 19000, (0.7, 0.3)),
    ("S0607", "Лазерная коррекция зрения (один глаз)", "surgery", OPH, 46000, (0.3, 0.7)),
    ("S0701", "Приём дерматолога первичный", "consultation", DERM, 2300, (1,)),
    ("S0702", "Приём дерматолога повторный", "consultation", DERM, 1800, (1,)),
    ("S0703", "Дерматоскопия новообразований", "diagnostics", DERM, 1900, (1,)),
    ("S0704", "Удаление новообразования кожи радиоволновым методом", "surgery", DERM, 3600,
     (0.2, 0.2, 0.25, 0.2, 0.15)),
    ("S0705", "Химический пилинг (курс лечения акне)", "treatment", DERM, 6900, (1,)),
    ("S0706", "Гистологическое исследование биоптата", "diagnostics", DERM, 2500, (1,)),
    ("S0707", "Лазерное удаление новообразований кожи (до 5 шт.)", "surgery", DERM, 14500, (1,)),
    ("S0801", "Приём эндокринолога первичный", "consultation", ENDO, 2700, (1,)),
    ("S0802", "Приём эндокринолога повторный", "consultation", ENDO, 2100, (1,)),
    ("S0803", "Диспансерный приём эндокринолога", "chronic_care", ENDO, 2300, (1,)),
    ("S0804", "УЗИ щитовидной железы", "diagnostics", ENDO, 2000, (1,)),
    ("S0805", "Гликированный гемоглобин (HbA1c)", "diagnostics", ENDO, 900, (1,)),
    ("S0806", "Гормоны щитовидной железы (ТТГ, Т4 свободный)", "diagnostics", ENDO, 1400, (1,)),
]
PRICE_GROWTH = 0.08  # clinics reprice every year; a visit 2 years ago cost ~15% less

# What an appointment of (specialty, kind) is billed as: main service candidates with weights,
# add-on services, P(at least one add-on), P(two add-ons). Combinations not listed bill as the
# specialty's consultation. Every completed visit therefore has 1-3 services.
MENU: dict[tuple[int, int], tuple[list[tuple[str, float]], list[str], float, float]] = {
    (DENT, K_CONS): ([("S0101", 1)], ["S0105", "S0106"], 0.45, 0.10),
    (DENT, K_REP): ([("S0102", 1)], ["S0105"], 0.30, 0.0),
    (DENT, K_DIAG): ([("S0106", 0.5), ("S0107", 0.35), ("S0105", 0.15)], ["S0102"], 0.3, 0.0),
    (DENT, K_HYG): ([("S0103", 0.7), ("S0104", 0.3)], ["S0114", "S0102"], 0.35, 0.10),
    (DENT, K_MINOR): ([("S0108", 0.6), ("S0109", 0.25), ("S0112", 0.15)], ["S0113", "S0105"], 0.6, 0.2),
    (DENT, K_TRT): ([("S0108", 0.33), ("S0109", 0.2), ("S0110", 0.22), ("S0111", 0.14), ("S0112", 0.11)],
                    ["S0113", "S0105"], 0.65, 0.25),
    (GYN, K_CONS): ([("S0201", 1)], ["S0203", "S0204"], 0.6, 0.3),
    (GYN, K_REP): ([("S0202", 1)], ["S0203"], 0.25, 0.0),
    (GYN, K_DIAG): ([("S0203", 0.6), ("S0205", 0.4)], ["S0204"], 0.3, 0.0),
    (GYN, K_CHK): ([("S0208", 1)], ["S0203"], 0.2, 0.0),
    (GYN, K_TRT): ([("S0206", 0.45), ("S0207", 0.55)], ["S0203"], 0.3, 0.0),
    (CARD, K_CONS): ([("S0301", 1)], ["S0304", "S0305"], 0.75, 0.25),
    (CARD, K_REP): ([("S0302", 1)], ["S0304"], 0.5, 0.0),
    (CARD, K_DIAG): ([("S0305", 0.5), ("S0306", 0.5)], ["S0304"], 0.4, 0.0),
    (CARD, K_CHK): ([("S0307", 1)], ["S0306"], 0.2, 0.0),
    (CARD, K_CHR): ([("S0303", 1)], ["S0304", "S0305"], 0.6, 0.1),
    (THER, K_CONS): ([("S0401", 1)], ["S0404", "S0405"], 0.45, 0.2),
    (THER, K_REP): ([("S0402", 1)], ["S0404"], 0.2, 0.0),
    (THER, K_DIAG): ([("S0405", 0.4), ("S0408", 0.35), ("S0404", 0.25)], ["S0404"], 0.3, 0.0),
    (THER, K_CHK): ([("S0406", 1)], ["S0408", "S0405"], 0.3, 0.1),
    (THER, K_VAC): ([("S0407", 1)], [], 0.0, 0.0),
    (THER, K_CHR): ([("S0403", 1)], ["S0405", "S0404"], 0.55, 0.2),
    (PED, K_CONS): ([("S0501", 1)], ["S0404"], 0.25, 0.0),
    (PED, K_REP): ([("S0502", 1)], ["S0505"], 0.1, 0.0),
    (PED, K_DIAG): ([("S0404", 0.7), ("S0408", 0.3)], ["S0502"], 0.3, 0.0),
    (PED, K_CHK): ([("S0503", 0.7), ("S0505", 0.3)], ["S0404"], 0.25, 0.0),
    (PED, K_VAC): ([("S0504", 1)], [], 0.0, 0.0),
    (OPH, K_CONS): ([("S0601", 1)], ["S0603", "S0604"], 0.55, 0.25),
    (OPH, K_REP): ([("S0602", 1)], ["S0603"], 0.2, 0.0),
    (OPH, K_DIAG): ([("S0605", 0.5), ("S0604", 0.5)], ["S0603"], 0.3, 0.0),
    (OPH, K_TRT): ([("S0606", 0.4), ("S0607", 0.6)], ["S0605"], 0.3, 0.0),
    (DERM, K_CONS): ([("S0701", 1)], ["S0703"], 0.45, 0.0),
    (DERM, K_REP): ([("S0702", 1)], ["S0703"], 0.15, 0.0),
    (DERM, K_DIAG): ([("S0703", 0.7), ("S0706", 0.3)], ["S0702"], 0.2, 0.0),
    (DERM, K_TRT): ([("S0704", 0.35), ("S0705", 0.35), ("S0707", 0.3)], ["S0706"], 0.25, 0.0),
    (ENDO, K_CONS): ([("S0801", 1)], ["S0804", "S0806"], 0.6, 0.3),
    (ENDO, K_REP): ([("S0802", 1)], ["S0805"], 0.3, 0.0),
    (ENDO, K_DIAG): ([("S0804", 0.4), ("S0805", 0.3), ("S0806", 0.3)], ["S0805"], 0.2, 0.0),
    (ENDO, K_CHR): ([("S0803", 1)], ["S0805", "S0806"], 0.7, 0.3),
}

# Specialty of an unplanned illness episode / a walk-in one-off (adults; children are re-routed to
# pediatrics, men away from gynecology by _fit_specialty).
EPISODE_SPEC = [0.16, 0.14, 0.08, 0.26, 0.0, 0.12, 0.12, 0.07]
# Main specialty of a lapsed or occasional regular.
REGULAR_SPEC = [0.2, 0.17, 0.1, 0.25, 0.0, 0.1, 0.1, 0.08]
# Specialty of a treatment plan (dentistry dominates: implants, crowns).
PLAN_SPEC = [0.68, 0.10, 0.0, 0.0, 0.0, 0.12, 0.10, 0.0]
# Chronic patients: hypertension/heart, diabetes/thyroid, general dispensary care.
CHRONIC_SPEC = [0.0, 0.0, 0.40, 0.25, 0.0, 0.0, 0.0, 0.35]
# VIP persons see 3-4 specialties; weights of picking each.
VIP_SPEC = [1.0, 0.8, 0.7, 1.0, 0.0, 0.6, 0.7, 0.6]

# Acquisition channels as the MIS names them (seeds/channel_map.csv maps them to canonical codes),
# canonical group, base share, monthly cost per new patient (RUB) for paid channels.
CHANNELS = [
    ("Яндекс Директ", "context_ads", 0.170, 4200),
    ("Яндекс.Директ", "context_ads", 0.020, None),      # the same channel typed by another admin
    ("Контекстная реклама", "context_ads", 0.010, None),
    ("Рекомендация", "referral", 0.140, None),
    ("Рекомендация знакомых", "referral", 0.030, None),
    ("ПроДокторов", "aggregator", 0.110, 2600),
    ("НаПоправку", "aggregator", 0.040, 2200),
    ("2ГИС", "aggregator", 0.060, 1700),
    ("Яндекс Карты", "maps", 0.050, 1600),
    ("Сайт", "website", 0.090, None),
    ("Вывеска", "walk_in", 0.050, None),
    ("Шёл мимо", "walk_in", 0.010, None),
    ("ВКонтакте", "social", 0.040, 3600),
    ("Instagram", "social", 0.010, None),
    ("ДМС", "insurance", 0.040, None),
    ("Другое", "other", 0.010, None),
    (None, "other", 0.060, None),                        # not filled in at registration
]
EMPTY_CHANNEL = next(i for i, c in enumerate(CHANNELS) if c[0] is None)
CHANNEL_GROUPS = ["context_ads", "referral", "aggregator", "maps", "website", "walk_in", "social",
                  "insurance", "other"]
# Spend rows are booked under the main MIS name of each paid channel; new patients who came under a
# variant spelling ('Яндекс.Директ') still count towards that channel's budget.
SPEND_CHANNEL_OF = {"Яндекс.Директ": "Яндекс Директ", "Контекстная реклама": "Яндекс Директ"}

# Archetypes: share of persons, share of children, mean adult age at first visit, share of women,
# illness-episode rate per active year, share still active today (the rest drift away), channel-group
# multipliers (order of CHANNEL_GROUPS). Shares are documented in docs/demo.md.
ARCHETYPES = [
    # name            share  child age  fem  episodes active  context ref  aggr maps web  walk soc  ins  oth
    ("acute",         0.295, 0.18, 37, 0.60, 0.0, 0.00, (1.40, 0.60, 1.20, 1.30, 1.0, 1.40, 1.1, 0.8, 1.0)),
    ("chronic",       0.08, 0.00, 62, 0.55, 3.5, 0.65, (0.65, 1.45, 0.90, 0.90, 1.0, 1.00, 0.6, 1.8, 1.0)),
    ("hygiene",       0.14, 0.12, 38, 0.62, 3.3, 0.55, (0.85, 1.20, 1.00, 1.00, 1.1, 0.90, 1.0, 1.0, 1.0)),
    ("checkup",       0.10, 0.30, 42, 0.60, 3.3, 0.70, (0.65, 1.30, 0.90, 0.90, 1.1, 0.80, 1.0, 2.5, 1.0)),
    ("vip",           0.04, 0.03, 47, 0.55, 4.0, 0.85, (0.55, 1.70, 0.60, 0.70, 1.4, 0.50, 0.8, 1.2, 1.0)),
    ("no_show",       0.05, 0.15, 33, 0.60, 0.0, 0.00, (1.30, 0.60, 1.40, 1.00, 1.0, 0.80, 1.3, 0.5, 1.0)),
    ("plan_decliner", 0.08, 0.00, 45, 0.60, 0.6, 0.00, (1.20, 0.70, 1.20, 1.00, 1.0, 0.90, 1.1, 0.8, 1.0)),
    ("treatment",     0.08, 0.04, 46, 0.60, 2.5, 0.70, (0.85, 1.35, 1.00, 1.00, 1.1, 0.80, 0.9, 1.0, 1.0)),
    ("lapsed",        0.08, 0.15, 40, 0.60, 2.5, 0.00, (1.00, 1.00, 1.00, 1.00, 1.0, 1.00, 1.0, 1.0, 1.0)),
    ("occasional",    0.05, 0.20, 40, 0.60, 0.0, 0.00, (1.00, 1.00, 1.00, 1.00, 1.0, 1.00, 1.0, 1.0, 1.0)),
    ("new_booked",    0.005, 0.15, 35, 0.60, 0.0, 0.00, (1.20, 0.80, 1.20, 1.00, 1.2, 0.80, 1.0, 0.8, 1.0)),
]
(A_ACUTE, A_CHRONIC, A_HYGIENE, A_CHECKUP, A_VIP, A_NOSHOW, A_DECLINER, A_TREATMENT, A_LAPSED,
 A_OCCASIONAL, A_NEW) = range(len(ARCHETYPES))

# Calendar: relative demand by month (new patients / planned visits) and for illness episodes
# (respiratory season in autumn-winter, summer holidays), by weekday (Mon..Sun).
MONTH_DEMAND = [0.85, 1.0, 1.05, 1.0, 0.9, 0.9, 0.72, 0.78, 1.1, 1.2, 1.15, 1.0]
MONTH_ILLNESS = [0.95, 1.1, 1.05, 1.0, 0.85, 0.8, 0.68, 0.72, 1.05, 1.25, 1.25, 1.05]
WEEKDAY_DEMAND = [1.0, 1.0, 1.0, 1.0, 0.95, 0.75, 0.4]
GROWTH = 0.5            # the clinic gets 50% more new patients at the end of the window than at its start

# Appointment slots: 15-minute starts, 08:00-19:45 on weekdays, shorter Saturday and Sunday hours;
# mornings and after-work hours are busiest.
SLOT_HOURS = {0: (8, 20), 1: (9, 18), 2: (10, 16)}     # weekday type -> opening hours

# Status noise on top of the archetypes' own no-shows: share of intended visits preceded by a no-show
# or by a cancelled appointment (then rebooked), and of recent last visits that end as a no-show.
SHARE_NO_SHOW = 0.052
SHARE_CANCELLED = 0.088
SHARE_RECENT_NO_SHOW = 0.06

# People ---------------------------------------------------------------------------------------------
MALE_NAMES = [  # first name, patronymic (male), patronymic (female) made from it
    ("Александр", "Александрович", "Александровна"), ("Алексей", "Алексеевич", "Алексеевна"),
    ("Андрей", "Андреевич", "Андреевна"), ("Антон", "Антонович", "Антоновна"),
    ("Артём", "Артёмович", "Артёмовна"), ("Борис", "Борисович", "Борисовна"),
    ("Вадим", "Вадимович", "Вадимовна"), ("Василий", "Васильевич", "Васильевна"),
    ("Виктор", "Викторович", "Викторовна"), ("Владимир", "Владимирович", "Владимировна"),
    ("Владислав", "Владиславович", "Владиславовна"), ("Вячеслав", "Вячеславович", "Вячеславовна"),
    ("Геннадий", "Геннадьевич", "Геннадьевна"), ("Георгий", "Георгиевич", "Георгиевна"),
    ("Григорий", "Григорьевич", "Григорьевна"), ("Денис", "Денисович", "Денисовна"),
    ("Дмитрий", "Дмитриевич", "Дмитриевна"), ("Евгений", "Евгеньевич", "Евгеньевна"),
    ("Егор", "Егорович", "Егоровна"), ("Иван", "Иванович", "Ивановна"),
    ("Игорь", "Игоревич", "Игоревна"), ("Илья", "Ильич", "Ильинична"),
    ("Кирилл", "Кириллович", "Кирилловна"), ("Константин", "Константинович", "Константиновна"),
    ("Лев", "Львович", "Львовна"), ("Леонид", "Леонидович", "Леонидовна"),
    ("Максим", "Максимович", "Максимовна"), ("Матвей", "Матвеевич", "Матвеевна"),
    ("Михаил", "Михайлович", "Михайловна"), ("Никита", "Никитич", "Никитична"),
    ("Николай", "Николаевич", "Николаевна"), ("Олег", "Олегович", "Олеговна"),
    ("Павел", "Павлович", "Павловна"), ("Пётр", "Петрович", "Петровна"),
    ("Роман", "Романович", "Романовна"), ("Руслан", "Русланович", "Руслановна"),
    ("Сергей", "Сергеевич", "Сергеевна"), ("Станислав", "Станиславович", "Станиславовна"),
    ("Тимур", "Тимурович", "Тимуровна"), ("Фёдор", "Фёдорович", "Фёдоровна"),
    ("Юрий", "Юрьевич", "Юрьевна"), ("Ярослав", "Ярославович", "Ярославовна"),
]
FEMALE_NAMES = [
    "Александра", "Алина", "Алла", "Анастасия", "Анна", "Валентина", "Валерия", "Вера", "Виктория",
    "Галина", "Дарья", "Диана", "Евгения", "Екатерина", "Елена", "Елизавета", "Жанна", "Ирина",
    "Кристина", "Ксения", "Лариса", "Лидия", "Любовь", "Людмила", "Маргарита", "Марина", "Мария",
    "Надежда", "Наталья", "Нина", "Оксана", "Ольга", "Полина", "Светлана", "София", "Татьяна",
    "Юлия", "Яна",
]
SURNAMES = [  # (male form, female form); -ко and -их surnames do not change
    ("Иванов", "Иванова"), ("Смирнов", "Смирнова"), ("Кузнецов", "Кузнецова"), ("Попов", "Попова"),
    ("Васильев", "Васильева"), ("Петров", "Петрова"), ("Соколов", "Соколова"), ("Михайлов", "Михайлова"),
    ("Новиков", "Новикова"), ("Фёдоров", "Фёдорова"), ("Морозов", "Морозова"), ("Волков", "Волкова"),
    ("Алексеев", "Алексеева"), ("Лебедев", "Лебедева"), ("Семёнов", "Семёнова"), ("Егоров", "Егорова"),
    ("Павлов", "Павлова"), ("Козлов", "Козлова"), ("Степанов", "Степанова"), ("Николаев", "Николаева"),
    ("Орлов", "Орлова"), ("Андреев", "Андреева"), ("Макаров", "Макарова"), ("Никитин", "Никитина"),
    ("Захаров", "Захарова"), ("Зайцев", "Зайцева"), ("Соловьёв", "Соловьёва"), ("Борисов", "Борисова"),
    ("Яковлев", "Яковлева"), ("Григорьев", "Григорьева"), ("Романов", "Романова"), ("Воробьёв", "Воробьёва"),
    ("Сергеев", "Сергеева"), ("Кузьмин", "Кузьмина"), ("Фролов", "Фролова"), ("Александров", "Александрова"),
    ("Дмитриев", "Дмитриева"), ("Королёв", "Королёва"), ("Гусев", "Гусева"), ("Киселёв", "Киселёва"),
    ("Ильин", "Ильина"), ("Максимов", "Максимова"), ("Поляков", "Полякова"), ("Сорокин", "Сорокина"),
    ("Виноградов", "Виноградова"), ("Ковалёв", "Ковалёва"), ("Белов", "Белова"), ("Медведев", "Медведева"),
    ("Антонов", "Антонова"), ("Тарасов", "Тарасова"), ("Жуков", "Жукова"), ("Баранов", "Баранова"),
    ("Филиппов", "Филиппова"), ("Комаров", "Комарова"), ("Давыдов", "Давыдова"), ("Беляев", "Беляева"),
    ("Герасимов", "Герасимова"), ("Богданов", "Богданова"), ("Осипов", "Осипова"), ("Сидоров", "Сидорова"),
    ("Матвеев", "Матвеева"), ("Титов", "Титова"), ("Марков", "Маркова"), ("Миронов", "Миронова"),
    ("Крылов", "Крылова"), ("Куликов", "Куликова"), ("Карпов", "Карпова"), ("Власов", "Власова"),
    ("Мельников", "Мельникова"), ("Денисов", "Денисова"), ("Тихонов", "Тихонова"), ("Афанасьев", "Афанасьева"),
    ("Островский", "Островская"), ("Покровский", "Покровская"), ("Шевченко", "Шевченко"),
    ("Бондаренко", "Бондаренко"), ("Коваленко", "Коваленко"), ("Черных", "Черных"), ("Белых", "Белых"),
]
TRANSLIT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p",
                     "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"]))
EMAIL_DOMAINS = [("mail.ru", 0.34), ("yandex.ru", 0.25), ("gmail.com", 0.18), ("bk.ru", 0.06),
                 ("inbox.ru", 0.05), ("list.ru", 0.05), ("ya.ru", 0.04), ("rambler.ru", 0.03)]

# Phones: Russian mobile codes (all valid for libphonenumber), Moscow landlines, how admins type them.
MOBILE_CODES = [903, 905, 906, 909, 910, 912, 915, 916, 917, 919, 920, 925, 926, 929, 950, 951, 953,
                958, 960, 961, 962, 963, 964, 965, 967, 968, 977, 978, 980, 981, 985, 987, 991, 999]
LANDLINE_CODES = [495, 499]
PHONE_FORMATS = [  # DuckDB printf pattern over (code, 3 digits, 2 digits, 2 digits), weight
    ("+7 (%03d) %03d-%02d-%02d", 0.24), ("8%03d%03d%02d%02d", 0.24), ("8-%03d-%03d-%02d-%02d", 0.08),
    ("%03d%03d%02d%02d", 0.10), ("+7%03d%03d%02d%02d", 0.17), ("7 %03d %03d %02d %02d", 0.05),
    ("8 (%03d) %03d %02d %02d", 0.12),
]
LANDLINE_FORMATS = [("8 (%03d) %03d-%02d-%02d", 0.6), ("+7 %03d %03d-%02d-%02d", 0.2),
                    ("8%03d%03d%02d%02d", 0.2)]
INVALID_PHONES = ["12345", "+7 (000) 000-00-00", "нет", "8-912-34", "111", "-"]
PHONE_KIND_SHARE = [0.905, 0.025, 0.04, 0.03]   # mobile, landline, empty, invalid
PH_MOBILE, PH_LANDLINE, PH_EMPTY, PH_INVALID = range(4)

# Call centre ------------------------------------------------------------------------------------------
CALL_ACTIONS = ["recall_due", "reactivation", "plan_follow_up", "no_show_recovery", "welcome_second_visit"]
CALL_ACTION_SHARE = [0.30, 0.28, 0.10, 0.10, 0.22]
CALL_RESULTS = ["booked", "callback", "no_answer", "refused", "wrong_number"]
CALL_RESULT_SHARE = {  # by action: no-show recovery books best, plan follow-ups are refused most
    "recall_due": [0.27, 0.15, 0.35, 0.13, 0.10],
    "reactivation": [0.20, 0.14, 0.37, 0.18, 0.11],
    "plan_follow_up": [0.22, 0.20, 0.30, 0.22, 0.06],
    "no_show_recovery": [0.33, 0.14, 0.35, 0.10, 0.08],
    "welcome_second_visit": [0.25, 0.16, 0.34, 0.15, 0.10],
}
OPERATORS = [("OP1", 0.45), ("OP2", 0.35), ("OP3", 0.20)]
# The clinic's past call lists kept a random control group (issue #13): this share of each action's
# candidates was not called. The demo clinic ran its first year with a large share to learn fast (the
# product's default is 10%). Calls of one action never bring anyone who would not have come anyway
# (zero true effect), so the uplift mart must find about 0 for it.
DEMO_CONTROL_SHARE = 0.30
DEMO_ZERO_EFFECT_ACTION = "welcome_second_visit"
CALL_COMMENTS = {  # result -> (share of calls with a comment, comments)
    "booked": (0.7, ["Записан на приём", "Записала к врачу", "Записана, напомнить за день",
                     "Записан, просил СМС-напоминание", "Записана на удобное время, вечер"]),
    "callback": (0.8, ["Перезвонить вечером", "Просила перезвонить после 18:00", "Перезвонить на следующей неделе",
                       "Занят, перезвонить", "Уточнит график, перезвонит сам"]),
    "no_answer": (0.15, ["Не берёт трубку", "Сбросил", "Абонент недоступен"]),
    "refused": (0.7, ["Не актуально", "Лечится в другой клинике", "Дорого, подумает", "Переехал",
                      "Просил больше не звонить"]),
    "wrong_number": (0.6, ["Номер не принадлежит пациенту", "Неверный номер", "Номер не существует"]),
}

METHODS = ["card", "cash", "transfer", "insurance"]
M_CARD, M_CASH, M_TRANSFER, M_INSURANCE = range(4)

DUPLICATE_SHARE = 0.02        # second cards of the same person
FAMILY_GROUP_SHARE = 0.02     # persons who share their phone with 1-3 family members
DECEASED_SHARE = 0.005


# ================================================================================================
# Small vectorised helpers
# ================================================================================================


def _rep(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For group sizes `counts`, return (group index of each item, position of the item in its group)."""
    counts = np.asarray(counts, dtype=np.int64)
    grp = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    pos = np.arange(grp.size, dtype=np.int64) - np.repeat(starts, counts)
    return grp, pos


def _starts(keys: np.ndarray) -> np.ndarray:
    """True where a run of equal keys starts (keys sorted or grouped)."""
    out = np.ones(keys.size, dtype=bool)
    out[1:] = keys[1:] != keys[:-1]
    return out


def _group_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sum of `values` restarting at every group (groups are consecutive, sizes `counts`)."""
    cs = np.cumsum(values)
    before = np.concatenate(([0], cs))[np.cumsum(counts) - counts]
    return cs - np.repeat(before, counts)


def _choice(rng: np.random.Generator, weights, size: int, dtype=np.int64) -> np.ndarray:
    """Draw `size` indices with probabilities proportional to `weights`."""
    cw = np.cumsum(np.asarray(weights, dtype=float))
    return np.searchsorted(cw / cw[-1], rng.random(size), side="right").clip(0, len(cw) - 1).astype(dtype)


def _choice_rows(rng: np.random.Generator, table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Draw one index per item from the weight row `table[rows[i]]` (few distinct rows)."""
    table = np.asarray(table, dtype=float)
    cw = np.cumsum(table, axis=1)
    cw = cw / np.where(cw[:, -1:] > 0, cw[:, -1:], 1)
    u = rng.random(rows.size)
    out = np.zeros(rows.size, dtype=np.int64)
    for r in np.unique(rows):  # loop over distinct weight rows, not items
        m = rows == r
        out[m] = np.searchsorted(cw[r], u[m], side="right")
    return out.clip(0, table.shape[1] - 1)


def _choice_cw(cw_table: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw per item from the cumulative-weight row `cw_table[rows[i]]` (each row ends at
    1.0) without an items x k temporary: the rows are laid end to end as `row + cw` and searched once."""
    k = cw_table.shape[1]
    flat = (np.arange(cw_table.shape[0])[:, None] + cw_table).ravel()
    pos = np.searchsorted(flat, rows + u, side="right")
    return np.minimum(pos - rows * k, k - 1)


def _weighted_sample(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """Indices of k items drawn without replacement with probability ~ weights (exponential keys)."""
    k = int(min(k, np.count_nonzero(weights > 0)))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    with np.errstate(divide="ignore"):
        keys = rng.exponential(size=weights.size) / np.where(weights > 0, weights, np.nan)
    keys = np.where(np.isnan(keys), np.inf, keys)
    return np.sort(np.argpartition(keys, k - 1)[:k])


def _fit_specialty(spec: np.ndarray, child: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Route children to pediatrics for adult-only specialties, adults away from pediatrics, men from gynecology."""
    spec = np.where(child & np.isin(spec, (THER, GYN, CARD)), PED, spec)
    spec = np.where(~child & (spec == PED), THER, spec)
    return np.where(~child & male & (spec == GYN), THER, spec).astype(np.int8)


class _Calendar:
    """Per-day calendar facts and demand weights for the window and the 60-day booking horizon."""

    def __init__(self, start: _dt.date, D: int):
        self.start, self.D = start, D
        self.n = D + 200
        dates = np.datetime64(start, "D") + np.arange(self.n)
        months = dates.astype("datetime64[M]")
        self.month = (months.astype(np.int64) % 12 + 1).astype(np.int8)
        self.dom = ((dates - months.astype("datetime64[D]")).astype(np.int64) + 1).astype(np.int8)
        self.weekday = ((dates.astype(np.int64) + 3) % 7).astype(np.int8)  # 1970-01-01 was a Thursday
        self.month_index = (months.astype(np.int64) - np.datetime64(start, "M").astype(np.int64)).astype(np.int32)
        holiday = np.where((self.month == 1) & (self.dom <= 8), 0.35, 1.0)  # New Year holidays
        holiday = np.where((self.month == 1) & (self.dom == 1), 0.0, holiday)
        wd = np.asarray(WEEKDAY_DEMAND)[self.weekday] * holiday
        t = np.arange(self.n) / max(D, 1)
        acq = (1 + GROWTH * np.minimum(t, 1)) * np.asarray(MONTH_DEMAND)[self.month - 1] * wd
        ill = np.asarray(MONTH_ILLNESS)[self.month - 1] * wd
        self.cw_acq = np.concatenate(([0.0], np.cumsum(acq)))
        self.cw_ill = np.concatenate(([0.0], np.cumsum(ill)))

    def _sample(self, cw, rng, lo, hi):
        lo = np.clip(np.asarray(lo, dtype=np.int64), 0, self.n - 1)
        hi = np.clip(np.asarray(hi, dtype=np.int64), lo + 1, self.n)
        u = cw[lo] + rng.random(lo.shape) * (cw[hi] - cw[lo])
        return np.clip(np.searchsorted(cw, u, side="right") - 1, lo, hi - 1)

    def acquisition_day(self, rng, lo, hi):
        """A day in [lo, hi) weighted by new-patient demand (growth, season, weekday)."""
        return self._sample(self.cw_acq, rng, lo, hi)

    def illness_day(self, rng, lo, hi):
        """A day in [lo, hi) weighted by illness season and weekday."""
        return self._sample(self.cw_ill, rng, lo, hi)

    def adjust(self, rng, days):
        """Move planned visits the way people do: out of summer holidays, New Year and Sundays."""
        d = np.asarray(days, dtype=np.int64).copy()
        idx = np.clip(d, 0, self.n - 1)
        m, dom = self.month[idx], self.dom[idx]
        u = rng.random((3, d.size))
        summer = np.isin(m, (7, 8)) & (u[0] < 0.3)
        d = np.where(summer, d + 10 + (u[1] * 30).astype(np.int64), d)
        new_year = (m == 1) & (dom <= 8) & (u[0] < 0.85)
        d = np.where(new_year, d + (9 - dom) + (u[1] * 7).astype(np.int64), d)
        sunday = (self.weekday[np.clip(d, 0, self.n - 1)] == 6) & (u[2] < 0.6)
        return np.where(sunday, d + np.where(u[2] < 0.3, -1, 1), d)


class _Visits:
    """Collects appointment chunks (person, day, specialty, kind, status, plan, booked day)."""

    COLS = ("person", "day", "spec", "kind", "status", "plan", "bday")
    DTYPES = (np.int64, np.int64, np.int8, np.int8, np.int8, np.int64, np.int64)

    def __init__(self):
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.n = 0

    def add(self, person, day, spec, kind, status=COMPLETED, plan=-1, bday=-1) -> np.ndarray:
        """Append rows; scalars broadcast. Returns the new rows' uids (their index in the concatenation)."""
        person = np.asarray(person, dtype=np.int64)
        k = person.size
        cols = [np.broadcast_to(np.asarray(v), (k,)).astype(t) for v, t in
                zip((person, day, spec, kind, status, plan, bday), self.DTYPES)]
        self.parts.append(tuple(cols))
        uids = np.arange(self.n, self.n + k, dtype=np.int64)
        self.n += k
        return uids

    def concat(self) -> dict[str, np.ndarray]:
        out = {c: np.concatenate([p[i] for p in self.parts]) if self.parts else np.zeros(0, t)
               for i, (c, t) in enumerate(zip(self.COLS, self.DTYPES))}
        out["uid"] = np.arange(self.n, dtype=np.int64)
        return out


def _take(d: dict[str, np.ndarray], idx) -> dict[str, np.ndarray]:
    return {k: v[idx] for k, v in d.items()}


def _cat_concat(dicts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([d[k] for d in dicts]) for k in dicts[0]}


# ================================================================================================
# Stage 1: persons (archetype, channel, demographics, first day)
# ================================================================================================


def _make_persons(rng, cal: _Calendar, P: int, branches: int) -> dict[str, np.ndarray]:
    D = cal.D
    arch = _choice(rng, [a[1] for a in ARCHETYPES], P, np.int8)
    child = rng.random(P) < np.asarray([a[2] for a in ARCHETYPES])[arch]
    female_share = np.where(child, 0.5, np.asarray([a[4] for a in ARCHETYPES])[arch])
    male = rng.random(P) >= female_share

    # Channel depends on the archetype: referrals bring loyal patients, context ads one-offs.
    group_of = np.asarray([CHANNEL_GROUPS.index(c[1]) for c in CHANNELS])
    base = np.asarray([c[2] for c in CHANNELS])
    mult = np.asarray([a[7] for a in ARCHETYPES])[:, group_of]
    channel = _choice_rows(rng, base[None, :] * mult, arch).astype(np.int8)

    # First appointment day. Lapsed regulars must have had 1-2 years of visits that ended >= 7 months
    # ago; 5% of plan decliners (on top of the calendar's share) got their plan in the last month, for
    # the call centre to follow up; "new_booked" persons booked in
    # the last three weeks for a first visit that is still ahead.
    lo = np.zeros(P, dtype=np.int64)
    hi = np.full(P, D, dtype=np.int64)
    lapsed = arch == A_LAPSED
    hi[lapsed] = max(D - 210 - 365, min(60, D))
    recent = (arch == A_DECLINER) & (rng.random(P) < 0.05)
    lo[recent], hi[recent] = max(D - 35, 0), max(D - 3, 1)
    new = arch == A_NEW
    lo[new], hi[new] = max(D - 21, 0), D
    first = cal.acquisition_day(rng, lo, hi)

    # Active end (exclusive): continuing persons keep coming into the booking horizon, the others
    # drift away at a random point of their tenure.
    active_share = np.asarray([a[6] for a in ARCHETYPES])[arch]
    stays = rng.random(P) < active_share
    drift = first + 60 + (rng.random(P) * np.maximum(D - first - 60, 0)).astype(np.int64)
    end = np.where(stays, D + 60, drift)
    span = np.clip(365 + (rng.random(P) * 365).astype(np.int64), 60, np.maximum(D - 210 - first, 60))
    end = np.where(lapsed, first + span + 1, end)

    # Age at the first visit.
    age_mean = np.asarray([a[3] for a in ARCHETYPES], dtype=float)[arch]
    adult_age = np.clip(rng.normal(age_mean, 13.0), 18, 88)
    child_age = 17.99 * rng.random(P) ** 1.3
    age = np.where(child, child_age, adult_age)
    birth = first - (age * 365.25).astype(np.int64)

    # Main specialty of the person's storyline.
    spec = np.full(P, THER, dtype=np.int64)
    spec[arch == A_CHRONIC] = _choice(rng, CHRONIC_SPEC, int((arch == A_CHRONIC).sum()))
    spec[arch == A_HYGIENE] = DENT
    chk = arch == A_CHECKUP
    chk_spec = np.where(male, np.where(rng.random(P) < 0.2, CARD, THER), np.where(rng.random(P) < 0.35, GYN, THER))
    spec[chk] = chk_spec[chk]
    planned = np.isin(arch, (A_DECLINER, A_TREATMENT))
    spec[planned] = _choice(rng, PLAN_SPEC, int(planned.sum()))
    spec[planned & (child | (male & (spec == GYN)))] = DENT
    other = np.isin(arch, (A_ACUTE, A_LAPSED, A_OCCASIONAL, A_NOSHOW, A_NEW, A_VIP))
    spec[other] = _choice(rng, REGULAR_SPEC, int(other.sum()))
    spec = _fit_specialty(spec, child, male)

    # Home branch.
    bw = BRANCH_SHARE[:branches] if branches <= len(BRANCH_SHARE) else [1 / (i + 1) for i in range(branches)]
    branch = _choice(rng, bw, P, np.int8)

    return dict(arch=arch, child=child, male=male, channel=channel, first=first, end=end, birth=birth,
                spec=spec.astype(np.int8), branch=branch, hash=rng.integers(0, 1 << 30, P))


# ================================================================================================
# Stage 2: intended visits by archetype (plus treatment plans)
# ================================================================================================


def _recurring(rng, cal, V: _Visits, persons, anchor, end, mean, jitter, spec, kind, future_p,
               max_count=None, spec_fn=None, kind_fn=None):
    """Visits every mean±jitter days after `anchor` while before `end`; the first one that falls in the
    60-day booking horizon is kept as 'scheduled' with probability `future_p`."""
    D = cal.D
    persons = np.asarray(persons, dtype=np.int64)
    anchor, end = np.asarray(anchor, dtype=np.int64), np.asarray(end, dtype=np.int64)
    span = np.maximum(np.minimum(end, D + 60) - anchor, 0)
    counts = np.ceil(span / (mean - jitter)).astype(np.int64) + 1
    if max_count is not None:
        counts = np.minimum(counts, max_count)
    grp, pos = _rep(counts)
    gaps = rng.integers(mean - jitter, mean + jitter + 1, grp.size)
    days = cal.adjust(rng, anchor[grp] + _group_cumsum(gaps, counts))
    e = end[grp]
    prev = np.concatenate(([-1], days[:-1]))
    first_future = (days >= D) & ((pos == 0) | (prev < D))
    past = days < np.minimum(e, D)
    future = first_future & (days < np.minimum(e, D + 60)) & (rng.random(grp.size) < future_p)
    keep = past | future
    g = grp[keep]
    p = persons[g]
    s = spec[g] if spec_fn is None else spec_fn(p)
    k = kind if kind_fn is None else kind_fn(g.size)
    status = np.where(days[keep] >= D, SCHEDULED, COMPLETED)
    V.add(p, days[keep], s, k, status)
    return p, days[keep], status


def _episodes(rng, cal, V: _Visits, per, persons, lo, hi, rate):
    """Unplanned illness episodes: a consultation, often a follow-up 1-2 weeks later and diagnostics."""
    D = cal.D
    lo, hi = np.asarray(lo, dtype=np.int64), np.minimum(np.asarray(hi, dtype=np.int64), D)
    years = np.maximum(hi - lo, 0) / 365.0
    counts = rng.poisson(np.asarray(rate, dtype=float) * years)
    counts[hi <= lo] = 0
    grp, _ = _rep(counts)
    p = persons[grp]
    day = cal.illness_day(rng, lo[grp], hi[grp])
    spec = _fit_specialty(_choice(rng, EPISODE_SPEC, p.size), per["child"][p], per["male"][p])
    V.add(p, day, spec, K_CONS)
    u = rng.random((2, p.size))
    fu = u[0] < 0.45
    fu_day = day + rng.integers(7, 15, p.size)
    fu &= fu_day < D
    V.add(p[fu], fu_day[fu], spec[fu], K_REP)
    dg = u[1] < 0.35
    dg_day = day + rng.integers(0, 4, p.size)
    dg &= dg_day < D
    V.add(p[dg], dg_day[dg], spec[dg], K_DIAG)


def _plan_flows(rng, cal, V: _Visits, persons, start, spec, accepting: bool, plans: list):
    """Consultation -> diagnostics -> treatment plan. Accepting patients then go through 1-12
    treatment visits; the others leave the plan proposed or decline it."""
    D = cal.D
    n = persons.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    plan_no = sum(len(p["person"]) for p in plans) + np.arange(n, dtype=np.int64)
    cons_uid = V.add(persons, start, spec, K_CONS, plan=plan_no)
    gap = np.where(rng.random(n) < 0.5, 0, rng.integers(1, 8, n))
    dday = start + gap
    has_diag = dday < D
    created_uid = cons_uid.copy()
    created_uid[has_diag] = V.add(persons[has_diag], dday[has_diag], spec[has_diag], K_DIAG, plan=plan_no[has_diag])
    created_day = np.where(has_diag, dday, start)

    status = np.zeros(n, dtype=np.int8)            # index into PLAN_STATUSES below
    change_day = np.full(n, -1, dtype=np.int64)
    accept_day = created_day + rng.integers(1, 15, n)
    n_missing = np.zeros(n, dtype=np.int64)          # planned treatment visits not (yet) billed
    last_day = np.full(n, -1, dtype=np.int64)
    if not accepting:
        # Declined after thinking it over for days to weeks, or still "proposed"; a few old proposals
        # are closed as cancelled by the clinic.
        declined_day = created_day + rng.integers(2, 31, n)
        declined = (rng.random(n) < 0.55) & (declined_day < D)
        status[declined], change_day[declined] = PL_DECLINED, declined_day[declined]
        expired = (~declined) & (created_day < D - 180) & (rng.random(n) < 0.08)
        status[expired], change_day[expired] = PL_CANCELLED, created_day[expired] + 180
        median = np.asarray([95_000, 45_000, 60_000, 60_000, 60_000, 90_000, 38_000, 60_000])[spec]
        total = np.clip(rng.lognormal(np.log(median), 0.5), 30_000, 250_000)
        total_k = (np.round(total / 10) * 1000).astype(np.int64)
    else:
        dental = spec == DENT
        n_treat = np.where(dental, np.minimum(2 + rng.poisson(3.5, n), 12),
                           np.minimum(2 + rng.poisson(1.5, n), 6))
        cancelled = rng.random(n) < 0.06
        n_done_max = np.where(cancelled, rng.integers(1, 3, n), n_treat)
        grp, pos = _rep(n_treat)
        gaps = np.where(pos == 0, 0, rng.integers(7, 22, grp.size))
        t0 = accept_day + rng.integers(0, 11, n)
        days = cal.adjust(rng, t0[grp] + _group_cumsum(gaps, n_treat))
        days = np.maximum(days, accept_day[grp])
        prev = np.concatenate(([-1], days[:-1]))
        planned_ok = pos < n_done_max[grp]
        past = planned_ok & (days < D) & (accept_day[grp] < D)
        first_future = planned_ok & (days >= D) & ((pos == 0) | (prev < D)) & (days < D + 60)
        future = first_future & (accept_day[grp] < D) & ~cancelled[grp] & (rng.random(grp.size) < 0.6)
        keep = past | future
        V.add(persons[grp[keep]], days[keep], spec[grp[keep]], K_TRT,
              np.where(days[keep] >= D, SCHEDULED, COMPLETED), plan=plan_no[grp[keep]])
        n_past = np.bincount(grp[past], minlength=n)
        first_t = np.full(n, 1 << 40, dtype=np.int64)
        np.maximum.at(last_day, grp[past], days[past])
        np.minimum.at(first_t, grp[past], days[past])
        n_missing = n_treat - n_past
        undecided = accept_day >= D
        status[:] = PL_ACCEPTED
        change_day[:] = accept_day
        prog = (n_past > 0) & (n_past < n_treat)
        status[prog], change_day[prog] = PL_IN_PROGRESS, first_t[prog]
        done = (n_past == n_treat) & ~cancelled
        status[done], change_day[done] = PL_COMPLETED, last_day[done]
        canc = cancelled & ~undecided
        status[canc] = PL_CANCELLED
        change_day[canc] = np.minimum(np.maximum(last_day[canc], accept_day[canc]) + rng.integers(5, 41, int(canc.sum())), D - 1)
        status[undecided], change_day[undecided] = PL_PROPOSED, -1
        total_k = np.full(n, -1, dtype=np.int64)      # summed from the billed visits later
    plans.append(dict(person=persons, spec=spec.astype(np.int8), created_uid=created_uid,
                      created_day=created_day, accept_day=accept_day, status=status, change_day=change_day,
                      n_missing=n_missing, total=total_k))
    return last_day, status == PL_COMPLETED



def _make_visits(rng, cal: _Calendar, per: dict) -> tuple[dict, dict]:
    """All intended appointments of all persons, and the treatment plans."""
    D = cal.D
    V = _Visits()
    plans: list[dict] = []
    arch, first, end, spec = per["arch"], per["first"], per["end"], per["spec"]
    child, male = per["child"], per["male"]
    ep_rate = np.asarray([a[5] for a in ARCHETYPES])
    idx = {a: np.flatnonzero(arch == a) for a in range(len(ARCHETYPES))}

    def fit(s, p):
        return _fit_specialty(np.asarray(s), child[p], male[p])

    # -- acute one-offs: one consultation (some only came for tests), never return.
    p = idx[A_ACUTE]
    s = fit(_choice(rng, EPISODE_SPEC, p.size), p)
    V.add(p, first[p], s, np.where(rng.random(p.size) < 0.15, K_DIAG, K_CONS))

    # -- chronic: dispensary visit every 90±15 days in their specialty.
    p = idx[A_CHRONIC]
    V.add(p, first[p], spec[p], K_CONS)
    rp, rd, rs = _recurring(rng, cal, V, p, first[p], end[p], 90, 15, spec[p], K_CHR, 0.3)
    # ... and often lab tests a few days before the dispensary visit
    labs = (rs == COMPLETED) & (rng.random(rp.size) < 0.5)
    lday = rd - rng.integers(2, 8, rp.size)
    labs &= lday > first[rp]
    V.add(rp[labs], lday[labs], spec[rp[labs]], K_DIAG)

    # -- hygiene: professional cleaning every 180±30 days; many stop and are overdue now.
    p = idx[A_HYGIENE]
    V.add(p, first[p], spec[p], K_HYG)
    rp, rd, rs = _recurring(rng, cal, V, p, first[p], end[p], 180, 30, spec[p], K_HYG, 0.15)
    # ... where the hygienist sometimes finds caries: a treatment visit a few weeks later
    rp, rd = np.concatenate((p, rp[rs == COMPLETED])), np.concatenate((first[p], rd[rs == COMPLETED]))
    tday = rd + rng.integers(5, 26, rp.size)
    caries = (rng.random(rp.size) < 0.15) & (tday < cal.D)
    V.add(rp[caries], tday[caries], DENT, K_MINOR)

    # -- annual check-up every 365±30 days, flu/child vaccination most autumns.
    p = idx[A_CHECKUP]
    V.add(p, first[p], spec[p], K_CHK)
    _recurring(rng, cal, V, p, first[p], end[p], 365, 30, spec[p], K_CHK, 0.15)
    vacc = p[rng.random(p.size) < 0.45]
    vspec = np.where(child[vacc], PED, THER)
    for year in range(cal.start.year, cal.start.year + (D // 365) + 2):  # loop over a few years
        day0 = (_dt.date(year, 10, 1) - cal.start).days
        vday = day0 + rng.integers(0, 50, vacc.size)
        ok = (vday >= first[vacc]) & (vday < np.minimum(end[vacc], D)) & (vday >= 0) & (rng.random(vacc.size) < 0.8)
        V.add(vacc[ok], vday[ok], vspec[ok], K_VAC)

    # -- VIP: a visit every 30-60 days across 3-4 specialties, rich bills, often a treatment plan.
    p = idx[A_VIP]
    pr = rng.random((p.size, N_SPEC)) * np.asarray(VIP_SPEC)
    pr[male[p], GYN] = 0
    pr[:, PED] = np.where(child[p], 5.0, 0.0)
    top = np.argsort(-pr, axis=1, kind="stable")[:, :4]
    k_specs = rng.integers(3, 5, p.size)
    vip_row = np.full(per["arch"].size, -1, dtype=np.int64)
    vip_row[p] = np.arange(p.size)

    def vip_spec(pp):
        r = vip_row[pp]
        return fit(top[r, (rng.random(pp.size) * k_specs[r]).astype(np.int64)], pp)

    def vip_kind(k):
        return np.asarray([K_CONS, K_DIAG, K_CHK, K_TRT], dtype=np.int8)[_choice(rng, [0.45, 0.3, 0.1, 0.15], k)]

    V.add(p, first[p], fit(top[:, 0], p), K_CONS)
    _recurring(rng, cal, V, p, first[p], end[p], 45, 15, None, None, 0.35, spec_fn=vip_spec, kind_fn=vip_kind)
    vp = p[rng.random(p.size) < 0.4]
    vstart = first[vp] + rng.integers(30, 400, vp.size)
    ok = vstart < D - 20
    vp, vstart = vp[ok], vstart[ok]
    vpspec = fit(_choice(rng, [0.6, 0, 0, 0, 0, 0.25, 0.15, 0], vp.size), vp)
    vpspec = np.where(vpspec == PED, DENT, vpspec)
    _plan_flows(rng, cal, V, vp, vstart, vpspec, True, plans)

    # -- first-visit no-shows: booked once and never came; a third booked again and cancelled.
    p = idx[A_NOSHOW]
    s = fit(_choice(rng, EPISODE_SPEC, p.size), p)
    V.add(p, first[p], s, K_CONS, NO_SHOW)
    again = first[p] + rng.integers(1, 31, p.size)
    ok = (rng.random(p.size) < 0.35) & (again < D)
    V.add(p[ok], again[ok], s[ok], K_CONS, CANCELLED)

    # -- plan decliners: consultation + diagnostics, a plan they leave proposed or decline.
    p = idx[A_DECLINER]
    _plan_flows(rng, cal, V, p, first[p], spec[p], False, plans)

    # -- treatment patients: accepted plan, treatment visits; dental ones then stay on hygiene recall.
    p = idx[A_TREATMENT]
    last_t, completed = _plan_flows(rng, cal, V, p, first[p], spec[p], True, plans)
    hyg = completed & (spec[p] == DENT) & (rng.random(p.size) < 0.6)
    _recurring(rng, cal, V, p[hyg], last_t[hyg], end[p[hyg]], 180, 30, np.full(p.size, DENT)[hyg], K_HYG, 0.15)

    # -- lapsed regulars: every 2-4 months for 1-2 years, then gone for 7-24 months.
    p = idx[A_LAPSED]
    V.add(p, first[p], spec[p], K_CONS)
    own = spec

    def lapsed_spec(pp):
        other = fit(_choice(rng, REGULAR_SPEC, pp.size), pp)
        return np.where(rng.random(pp.size) < 0.7, own[pp], other)

    def lapsed_kind(k):
        return np.where(rng.random(k) < 0.7, K_CONS, K_DIAG).astype(np.int8)

    _recurring(rng, cal, V, p, first[p], end[p], 90, 30, None, None, 0.0, spec_fn=lapsed_spec, kind_fn=lapsed_kind)

    # -- occasional: 2-4 visits at irregular intervals.
    p = idx[A_OCCASIONAL]
    V.add(p, first[p], spec[p], K_CONS)

    def occ_spec(pp):
        return fit(_choice(rng, EPISODE_SPEC, pp.size), pp)

    _recurring(rng, cal, V, p, first[p], np.full(p.size, D), 215, 185, None, None, 0.0,
               max_count=_choice(rng, [0, 0.45, 0.35, 0.2], p.size), spec_fn=occ_spec,
               kind_fn=lambda k: np.where(rng.random(k) < 0.8, K_CONS, K_DIAG).astype(np.int8))

    # -- new patients booked for a first visit in the coming weeks.
    p = idx[A_NEW]
    s = fit(_choice(rng, EPISODE_SPEC, p.size), p)
    vday = np.maximum(first[p] + rng.integers(1, 22, p.size), D)
    V.add(p, vday, s, K_CONS, SCHEDULED, bday=first[p])

    # -- illness episodes on top of every returning storyline, while the person is active.
    rate = ep_rate[arch]
    ep = np.flatnonzero(rate > 0)
    lo = first[ep] + np.where(arch[ep] == A_DECLINER, 30, 7)
    _episodes(rng, cal, V, per, ep, lo, np.minimum(end[ep], D), rate[ep])

    visits = V.concat()
    plan = _cat_concat(plans) if plans else None
    return visits, plan


# ================================================================================================
# Stage 3: status noise, deaths, the call centre
# ================================================================================================


def _sort_visits(v: dict, minute: bool = False) -> dict:
    span = 1 << 20
    key = v["person"] * span + v["day"] + 1024
    if minute:
        key = key * 2048 + v["minute"]
    return _take(v, np.argsort(key, kind="stable"))


def _add_status_noise(rng, cal, v: dict, per: dict) -> dict:
    """No-shows and cancellations before intended visits (then rebooked); recent unrebooked no-shows."""
    D = cal.D
    n = v["day"].size
    base = (v["status"] == COMPLETED) & (per["arch"][v["person"]] != A_NOSHOW)
    u = rng.random(n)
    ns = base & (u < SHARE_NO_SHOW)
    cn = base & (u >= SHARE_NO_SHOW) & (u < SHARE_NO_SHOW + SHARE_CANCELLED)
    extra = []
    for mask, status, lo, hi in ((ns, NO_SHOW, 1, 11), (cn, CANCELLED, 0, 11)):
        e = _take(v, np.flatnonzero(mask))
        e["day"] = e["day"] - rng.integers(lo, hi, e["day"].size)
        e["status"] = np.full(e["day"].size, status, dtype=np.int8)
        e["plan"] = np.full(e["day"].size, -1, dtype=np.int64)
        # never before the window, and never before the patient was born (babies' first visits)
        ok = (e["day"] >= 0) & (e["day"] >= per["birth"][e["person"]])
        extra.append(_take(e, ok))
    for e in extra:
        e["uid"] = np.arange(n, n + e["day"].size)
        n += e["day"].size
    v = _sort_visits(_cat_concat([v] + extra))
    # The last appointment of some recent patients is a no-show nobody rebooked.
    person = v["person"]
    last = np.concatenate((person[1:] != person[:-1], [True]))
    conv = last & (v["status"] == COMPLETED) & (v["plan"] < 0) & (v["day"] >= D - 90) & (v["day"] < D)
    conv &= rng.random(person.size) < SHARE_RECENT_NO_SHOW
    v["status"] = np.where(conv, NO_SHOW, v["status"]).astype(np.int8)
    return v


def _pick_deceased(rng, cal, v: dict, per: dict) -> np.ndarray:
    """~0.5% of persons died: elderly returning patients with no appointment in the last two months."""
    D = cal.D
    P = per["arch"].size
    last_day = np.full(P, -1, dtype=np.int64)
    np.maximum.at(last_day, v["person"], v["day"])
    age_now = (D - per["birth"]) / 365.25
    ok = (last_day < D - 60) & (age_now >= 60) & ~np.isin(per["arch"], (A_NOSHOW, A_NEW))
    w = np.where(ok, np.where(per["arch"] == A_CHRONIC, 4.0, 1.0) * (age_now - 55), 0.0)
    dead = np.zeros(P, dtype=bool)
    dead[_weighted_sample(rng, w, round(DECEASED_SHARE * P))] = True
    return dead


def _make_calls(rng, cal, v: dict, per: dict, plans: dict | None, callable_: np.ndarray) -> tuple[dict, dict, dict]:
    """The last 12 months of the call centre: recalls, reactivation, plan follow-ups, no-show recovery
    and welcome calls; about one call per five persons. Each day's candidates were a list: a random
    DEMO_CONTROL_SHARE of them was held out as controls and not called. Calls that book are usually
    followed by a visit within 30 days (added to the visits returned), except for
    DEMO_ZERO_EFFECT_ACTION. Returns (calls, extra visits, assignments): one assignment per list
    occurrence with its arm and whether the call made the person come who would not have come without it
    (`added`, the true effect the uplift must recover)."""
    D = cal.D
    P = per["arch"].size
    w0 = max(D - 365, 0)
    person, day, status, kind, spec = v["person"], v["day"], v["status"], v["kind"], v["spec"]
    same_next = np.concatenate((person[1:] == person[:-1], [False]))
    next_day = np.where(same_next, np.concatenate((day[1:], [0])), 1 << 40)
    completed = status == COMPLETED
    cands = []

    # recall_due: a planned visit's interval is (nearly) up and the next visit is not yet on the books
    interval = np.select([kind == K_HYG, kind == K_CHR, kind == K_CHK], [180, 90, 365], 0)
    due = day + interval + rng.integers(-14, 22, day.size)
    m = completed & (interval > 0) & (due >= w0) & (due < D) & (next_day > due)
    i = np.flatnonzero(m)
    cands.append(dict(person=person[i], day=due[i], action=np.full(i.size, 0), spec=spec[i], kind=kind[i]))

    # reactivation: no appointment in 6+ months (weighted to persons who used to come more than once)
    last_row = np.concatenate((person[1:] != person[:-1], [True]))
    n_done = np.bincount(person[completed], minlength=P)
    last_any = np.full(P, -1, dtype=np.int64)
    last_any[person[last_row]] = day[last_row]
    last_spec = np.zeros(P, dtype=np.int8)
    last_spec[person[completed]] = spec[completed]        # later rows overwrite: the last completed
    lo = np.maximum(last_any + 180, w0)
    m = (n_done > 0) & (lo < D)
    i = np.flatnonzero(m)
    cday = lo[i] + (rng.random(i.size) * (D - lo[i])).astype(np.int64)
    cands.append(dict(person=i, day=cday, action=np.full(i.size, 1), spec=last_spec[i],
                      kind=np.full(i.size, K_CONS), weight=np.minimum(n_done[i], 4).astype(float)))

    # plan_follow_up: a proposed or declined plan
    if plans is not None:
        m = np.isin(plans["status"], (PL_PROPOSED, PL_DECLINED))
        cday = plans["created_day"] + rng.integers(2, 15, plans["status"].size)
        m &= (cday >= w0) & (cday < D)
        i = np.flatnonzero(m)
        cands.append(dict(person=plans["person"][i], day=cday[i], action=np.full(i.size, 2),
                          spec=plans["spec"][i], kind=np.full(i.size, K_CONS)))

    # no_show_recovery: the day of, or just after, a missed appointment
    cday = day + rng.integers(0, 3, day.size)
    m = (status == NO_SHOW) & (cday >= w0) & (cday < D)
    i = np.flatnonzero(m)
    cands.append(dict(person=person[i], day=cday[i], action=np.full(i.size, 3), spec=spec[i], kind=kind[i]))

    # welcome_second_visit: 2-6 weeks after a first completed visit that was not followed up
    order_done = np.flatnonzero(completed)
    fd_mask = np.zeros(day.size, dtype=bool)
    if order_done.size:
        pd_ = person[order_done]
        fd_mask[order_done[_starts(pd_)]] = True
    cday = day + rng.integers(14, 46, day.size)
    m = fd_mask & (cday >= w0) & (cday < D) & (next_day > cday)
    i = np.flatnonzero(m)
    cands.append(dict(person=person[i], day=cday[i], action=np.full(i.size, 4), spec=spec[i],
                      kind=np.full(i.size, K_CONS)))

    # Sample each action down to its share of ~P/5 calls (callable persons only).
    # the rest are second attempts after no answer / callback; the controls come out of the candidates
    target = P / 5 * 0.9 / (1 - DEMO_CONTROL_SHARE)
    chosen = []
    for a, c in enumerate(cands):
        ok = callable_[c["person"]]
        w = np.where(ok, c.get("weight", np.ones(ok.size)), 0.0)
        k = int(round(target * CALL_ACTION_SHARE[a]))
        chosen.append(_take({k_: v_ for k_, v_ in c.items() if k_ != "weight"}, _weighted_sample(rng, w, k)))
    calls = _cat_concat(chosen)
    # The list's day: the call centre rests on Sundays (Monday, or Saturday at the end of the window).
    wd = cal.weekday[np.clip(calls["day"], 0, cal.n - 1)]
    calls["day"] = np.where(wd == 6, np.where(calls["day"] + 1 < D, calls["day"] + 1, calls["day"] - 1), calls["day"])
    # Held out as controls: on the list's candidates, never called.
    is_control = rng.random(calls["day"].size) < DEMO_CONTROL_SHARE
    controls = _take(calls, np.flatnonzero(is_control))
    calls = _take(calls, np.flatnonzero(~is_control))
    listed = {k_: v_.copy() for k_, v_ in calls.items()}

    def results(action):
        table = np.asarray([CALL_RESULT_SHARE[a] for a in CALL_ACTIONS])
        return _choice_rows(rng, table, action).astype(np.int8)

    calls["result"] = results(calls["action"])
    # second attempts a few days after no answer / "call back later"
    retry = np.isin(calls["result"], (1, 2)) & (rng.random(calls["day"].size) < 0.35)
    r = _take(calls, np.flatnonzero(retry))
    r["day"] = r["day"] + rng.integers(1, 4, r["day"].size)
    r = _take(r, r["day"] < D)
    r["result"] = results(r["action"])
    calls = _cat_concat([calls, r])
    # Sundays: the call centre rests (Monday, or Saturday at the end of the window).
    wd = cal.weekday[np.clip(calls["day"], 0, cal.n - 1)]
    calls["day"] = np.where(wd == 6, np.where(calls["day"] + 1 < D, calls["day"] + 1, calls["day"] - 1), calls["day"])

    # A booked call usually means a visit within 30 days (if none was already booked).
    booked = np.flatnonzero(calls["result"] == 0)
    key = person * (1 << 20) + day
    ck = calls["person"][booked] * (1 << 20) + calls["day"][booked]
    j = np.searchsorted(key, ck, side="right")
    has_next = (j < key.size) & (person[np.minimum(j, key.size - 1)] == calls["person"][booked]) & \
               (day[np.minimum(j, key.size - 1)] <= calls["day"][booked] + 30)
    add = booked[~has_next & (rng.random(booked.size) < 0.85)]
    vday = calls["day"][add] + rng.integers(1, 22, add.size)
    vday = cal.adjust(rng, vday)
    u = rng.random(add.size)
    vstatus = np.where(vday >= D, SCHEDULED, np.select([u < 0.05, u < 0.1], [NO_SHOW, CANCELLED], COMPLETED))
    # the zero-effect action's patients agree to a visit and never come: the call adds no visit
    zero = calls["action"][add] == CALL_ACTIONS.index(DEMO_ZERO_EFFECT_ACTION)
    vstatus = np.where(zero & (vstatus == COMPLETED), np.where(u < 0.6, CANCELLED, NO_SHOW), vstatus)
    kinds = calls["kind"][add]
    kinds = np.where(np.isin(kinds, (K_CHR, K_HYG, K_CHK, K_VAC, K_DIAG)), kinds, K_CONS)
    extra = dict(person=calls["person"][add], day=vday, spec=calls["spec"][add].astype(np.int8),
                 kind=kinds.astype(np.int8), status=vstatus.astype(np.int8),
                 plan=np.full(add.size, -1, dtype=np.int64), bday=calls["day"][add])

    # The truth per list occurrence: came = a completed visit after the list's day, at most 30 days
    # later (as call_uplift counts it); `added` = came with the call's visit but not without it.
    def came(keys_sorted, who, when):
        lo = who * (1 << 20) + when
        return np.searchsorted(keys_sorted, lo + 30, side="right") > np.searchsorted(keys_sorted, lo, side="right")

    natural = np.sort(key[completed & (day < D)])
    caused = np.sort((extra["person"] * (1 << 20) + vday)[(vstatus == COMPLETED) & (vday < D)])
    came_natural = came(natural, listed["person"], listed["day"])
    added = ~came_natural & came(caused, listed["person"], listed["day"])
    assignments = dict(
        person=np.concatenate((listed["person"], controls["person"])),
        day=np.concatenate((listed["day"], controls["day"])),
        action=np.concatenate((listed["action"], controls["action"])),
        arm=np.concatenate((np.zeros(listed["day"].size, np.int8), np.ones(controls["day"].size, np.int8))),
        added=np.concatenate((added, np.zeros(controls["day"].size, bool))),
    )
    return calls, extra, assignments


# ================================================================================================
# Stage 4: appointment times, branches, doctors, bookings
# ================================================================================================


def _doctors(branches: int) -> tuple[list[tuple[str, int, int]], np.ndarray, np.ndarray]:
    """Doctor roster: (doctor_id, specialty, branch), plus first-index and count per (branch, specialty)."""
    roster = []
    for b in range(branches):
        staff = STAFFING[0] if b == 0 else STAFFING[1 + (b - 1) % 2]
        for s, n in enumerate(staff):
            roster += [(b, s)] * n
    first = np.zeros((branches, N_SPEC), dtype=np.int64)
    count = np.zeros((branches, N_SPEC), dtype=np.int64)
    for i, (b, s) in enumerate(roster):  # a few dozen doctors
        if count[b, s] == 0:
            first[b, s] = i
        count[b, s] += 1
    return [(f"D{i + 1:03d}", s, b) for i, (b, s) in enumerate(roster)], first, count


def _place_visits(rng, cal, v: dict, per: dict, branches: int) -> dict:
    """Slot time, branch and doctor of every appointment; when it was booked."""
    D = cal.D
    n = v["day"].size
    wd = cal.weekday[np.clip(v["day"], 0, cal.n - 1)]
    daytype = np.select([wd == 6, wd == 5], [2, 1], 0)
    minute = np.zeros(n, dtype=np.int64)
    u = rng.random(n)
    for t, (h0, h1) in SLOT_HOURS.items():  # three day types
        slots = np.arange(h0 * 60, h1 * 60, 15)
        hours = slots / 60
        w = 1 + 0.6 * np.exp(-((hours - 10) ** 2) / 2) + 0.7 * np.exp(-((hours - 18) ** 2) / 2)
        m = daytype == t
        minute[m] = slots[np.searchsorted(np.cumsum(w) / w.sum(), u[m], side="right").clip(0, slots.size - 1)]
    v["minute"] = minute
    v = _sort_visits(v, minute=True)
    # Two appointments of one person on one day: the later one starts at least 30 minutes later.
    for _ in range(2):
        same = ~_starts(v["person"] * (1 << 20) + v["day"])
        prev = np.concatenate(([0], v["minute"][:-1]))
        v["minute"] = np.where(same, np.minimum(np.maximum(v["minute"], prev + 30), 19 * 60 + 45), v["minute"])

    # Branch: mostly the home branch; a specialty the branch lacks is seen at the flagship B1.
    _, dfirst, dcount = _doctors(branches)
    p = v["person"]
    branch = per["branch"][p].astype(np.int64)
    u = rng.random((3, n))
    branch = np.where(u[0] < 0.08, (u[1] * branches).astype(np.int64), branch)
    branch = np.where(dcount[branch, v["spec"]] > 0, branch, 0)
    cnt = dcount[branch, v["spec"]]
    # Patients stay with "their" doctor in a specialty; sometimes whoever is free.
    pref = (per["hash"][p] + 7 * v["spec"]) % cnt
    other = rng.integers(0, 1 << 30, n) % cnt
    v["branch"] = branch.astype(np.int8)
    v["doctor"] = (dfirst[branch, v["spec"]] + np.where(u[2] < 0.85, pref, other)).astype(np.int16)

    # Booking: planned visits weeks ahead, others a few days ahead or the same day; walk-ins on the day.
    # (A person's first appointment is never "planned" by the clinic.)
    first_row = _starts(p)
    planned = np.isin(v["kind"], (K_HYG, K_CHR, K_CHK, K_TRT, K_MINOR, K_VAC)) & ~first_row
    u = rng.random((3, n))
    lead = np.where(planned, rng.integers(2, 36, n),
                    np.where(u[0] < 0.18, 0, np.minimum(rng.geometric(0.22, n), 30)))
    walk_in = np.isin(per["channel"][p], _channels_in("walk_in"))
    lead = np.where(first_row & walk_in, 0, lead)
    bday = np.minimum(np.where(v["bday"] >= 0, v["bday"], v["day"] - lead), D - 1)
    bmin = np.where(bday == v["day"], v["minute"] - rng.integers(10, 181, n), 7 * 60 + (u[1] * 16 * 60).astype(np.int64))
    booked = bday * 86400 + bmin * 60 + (u[2] * 60).astype(np.int64)
    v["sched"] = v["day"] * 86400 + v["minute"] * 60
    booked = np.minimum(booked, v["sched"] - 60)
    # Nothing is booked before the person's very first booking (that is when the card was opened).
    first_booked = booked[np.flatnonzero(first_row)]
    v["booked"] = np.minimum(np.maximum(booked, np.repeat(first_booked, np.diff(np.flatnonzero(np.r_[first_row, True])))),
                             v["sched"] - 60)
    return v


# ================================================================================================
# Stage 5: patient cards (duplicates, families, phones, created_at, referrals, loyalty)
# ================================================================================================


def _make_contacts(rng, per: dict) -> dict[str, np.ndarray]:
    """Names, phones, e-mail flags, families sharing a phone and opt-outs of every person."""
    P = per["arch"].size
    male = per["male"]

    # Phones: one unique number per person (a bijection of a permuted index), then families share.
    kind = _choice(rng, PHONE_KIND_SHARE, P, np.int8)
    perm = rng.permutation(P).astype(np.int64)
    code = np.where(kind == PH_LANDLINE, np.asarray(LANDLINE_CODES)[perm % len(LANDLINE_CODES)],
                    np.asarray(MOBILE_CODES)[rng.integers(0, len(MOBILE_CODES), P)])
    sub = (perm * 7_654_321 + 1_234_567) % 10_000_000
    sub = np.where(kind == PH_LANDLINE, 2_000_000 + sub % 8_000_000, sub)  # no 0/1 first digit
    fmt = np.where(kind == PH_LANDLINE, _choice(rng, [w for _, w in LANDLINE_FORMATS], P),
                   _choice(rng, [w for _, w in PHONE_FORMATS], P))
    invalid = rng.integers(0, len(INVALID_PHONES), P)

    # Names: sex-consistent surname form, patronymic from the father's first name.
    last = rng.integers(0, len(SURNAMES), P)
    first_name = np.where(male, rng.integers(0, len(MALE_NAMES), P), rng.integers(0, len(FEMALE_NAMES), P))
    father = rng.integers(0, len(MALE_NAMES), P)
    has_middle = rng.random(P) >= 0.04
    birth = per["birth"].copy()

    # Families sharing one phone: an adult with a mobile, plus a spouse and/or children (usually the
    # same surname; children of a father get his patronymic). Birth dates differ, so they never merge.
    adults = np.flatnonzero(~per["child"] & (kind == PH_MOBILE))
    n_heads = min(int(round(FAMILY_GROUP_SHARE * P)), adults.size // 3)
    heads = np.sort(rng.permutation(adults)[:n_heads])
    size = _choice(rng, [0, 0.55, 0.3, 0.15], heads.size)
    g, pos = _rep(size)
    is_spouse = (pos == 0) & (rng.random(g.size) < 0.5)
    taken = np.zeros(P, dtype=bool)
    taken[heads] = True
    members = np.full(g.size, -1, dtype=np.int64)
    for want_child, want_male in ((True, None), (False, True), (False, False)):  # three candidate pools
        if want_child:
            slots = np.flatnonzero(~is_spouse)
            pool = np.flatnonzero(per["child"] & ~taken)
        else:
            slots = np.flatnonzero(is_spouse & (male[heads[g]] != want_male))
            pool = np.flatnonzero(~per["child"] & (male == want_male) & ~taken)
        pool = rng.permutation(pool)[: slots.size]
        members[slots[: pool.size]] = pool
        taken[pool] = True
    ok = members >= 0
    members, mh, mpos = members[ok], heads[g[ok]], pos[ok]
    kind[members], code[members], sub[members] = kind[mh], code[mh], sub[mh]
    same_name = rng.random(members.size) < np.where(per["child"][members], 0.9, 0.75)
    last[members] = np.where(same_name, last[mh], last[members])
    # Children share one patronymic: the head's first name if he is the father, else another man's.
    family_father = np.where(male[heads], first_name[heads], rng.integers(0, len(MALE_NAMES), heads.size))
    kids = per["child"][members]
    father[members] = np.where(kids, family_father[g[ok]], father[members])
    # Everyone in a family has their own first name and birth date.
    n_names = np.where(male[members], len(MALE_NAMES), len(FEMALE_NAMES))
    first_name[members] = (first_name[mh] + 1 + 7 * mpos) % n_names
    fam_p = np.concatenate((heads, members))
    fam_g = np.concatenate((np.arange(heads.size), g[ok]))
    is_member = np.concatenate((np.zeros(heads.size, dtype=bool), np.ones(members.size, dtype=bool)))
    for _ in range(3):  # twins would merge by the person rule: move a member's birthday by a day
        order = np.lexsort((is_member, birth[fam_p], fam_g))
        p_o, g_o, b_o = fam_p[order], fam_g[order], birth[fam_p[order]]
        clash = np.zeros(order.size, dtype=bool)
        clash[1:] = (g_o[1:] == g_o[:-1]) & (b_o[1:] == b_o[:-1])
        birth[p_o[clash]] -= 1
    in_family = np.zeros(P, dtype=bool)
    in_family[members] = True

    # Opt-outs: do-not-call ~5%, do-not-message ~7%, many of the first also the second.
    u = rng.random((2, P))
    dnc = u[0] < 0.05
    dnm = np.where(dnc, u[1] < 0.4, u[1] < 0.052)

    return dict(
        phone_kind=kind, code=code, sub=sub, fmt=fmt, invalid=invalid, in_family=in_family,
        last=last, first=first_name, father=father, has_middle=has_middle, birth=birth,
        has_email=rng.random(P) < np.where(per["child"], 0.1, 0.45),
        ecase=_choice(rng, [0.85, 0.11, 0.04], P), eform=rng.integers(0, 5, P),
        edomain=_choice(rng, [w for _, w in EMAIL_DOMAINS], P), enum=perm + 1,
        sex_known=rng.random(P) >= 0.02, birth_known=rng.random(P) >= 0.03, dnc=dnc, dnm=dnm,
    )


def _make_cards(rng, v: dict, per: dict, con: dict, calls: dict, dead: np.ndarray, n_cards: int):
    """Open a second card for ~2% of persons, number the cards, add referrals and loyalty.

    Returns (cards, card of each visit, card of each call, per-person loyalty info)."""
    P = per["arch"].size
    person = v["person"]
    n_per = np.bincount(person, minlength=P)
    row0 = np.cumsum(n_per) - n_per
    kind, has_email = con["phone_kind"], con["has_email"]

    # Duplicate cards: a second card opened at a later booking; from then on most visits land on the
    # new card. Either the same phone (typed differently) and birth date, or the same e-mail and name
    # and no phone.
    n_dup = n_cards - P
    elig = (n_per >= 3) & (((kind == PH_MOBILE) & ~con["in_family"]) | has_email) & ~dead
    dups = _weighted_sample(rng, elig.astype(float), n_dup)
    email_variant = has_email[dups] & ((kind[dups] != PH_MOBILE) | con["in_family"][dups] | (rng.random(dups.size) < 0.3))
    dup_of = np.full(P, -1, dtype=np.int64)
    dup_of[dups] = P + np.arange(dups.size)
    split = 1 + (rng.random(dups.size) * (n_per[dups] - 1)).astype(np.int64)
    split_time = np.full(P, 1 << 50, dtype=np.int64)
    split_time[dups] = v["booked"][row0[dups] + split]
    split_pos = np.full(P, 1 << 40, dtype=np.int64)
    split_pos[dups] = split
    vrow = np.arange(person.size) - row0[person]
    moved = (vrow >= split_pos[person]) & (rng.random(person.size) < 0.85)
    vcard = np.where(moved, dup_of[person], person)

    # created_at: a minute or few before the card's earliest booking; a second card is always younger.
    never = 1 << 50
    first_booked = np.full(P + dups.size, never, dtype=np.int64)
    np.minimum.at(first_booked, vcard, v["booked"])
    first_booked[P:] = np.minimum(first_booked[P:], split_time[dups])
    first_booked[:P] = np.where(first_booked[:P] == never, per["first"] * 86400 + 9 * 3600, first_booked[:P])
    created = first_booked - rng.integers(60, 300, first_booked.size)
    created[P:] = np.maximum(created[P:], created[dups] + 30)

    # Calls belong to the card in use at the time (often still the old one).
    ccard = calls["person"].copy()
    late = (dup_of[ccard] >= 0) & (calls["day"] * 86400 >= split_time[ccard]) & (rng.random(ccard.size) < 0.5)
    ccard = np.where(late, dup_of[ccard], ccard)

    # Patient numbers follow card creation order, as in an MIS.
    order = np.argsort(created, kind="stable")
    number = np.empty(created.size, dtype=np.int64)
    number[order] = 100001 + np.arange(created.size)

    # Referral programme: ~25% of referral patients name an earlier patient who keeps coming back.
    loyal_arch = np.isin(per["arch"], (A_CHRONIC, A_HYGIENE, A_CHECKUP, A_VIP, A_TREATMENT, A_LAPSED))
    referrers = np.sort(number[:P][loyal_arch])
    n_before = np.searchsorted(referrers, number[:P])
    ask = np.isin(per["channel"], _channels_in("referral")) & (rng.random(P) < 0.25) & (n_before > 0)
    pick = (rng.random(P) * n_before).astype(np.int64)
    referred = np.full(P, -1, dtype=np.int64)
    referred[ask] = referrers[pick[ask]]

    # Loyalty programme: ~15% of regulars (3+ completed visits) joined at their 2nd or 3rd visit and
    # get a 5-10% discount from then on.
    drow = np.flatnonzero(v["status"] == COMPLETED)
    dp = person[drow]
    n_done = np.bincount(dp, minlength=P)
    k_done = np.arange(drow.size) - (np.cumsum(n_done) - n_done)[dp]
    loyal = (n_done >= 3) & (rng.random(P) < 0.15 * np.minimum(n_done, 8) / 5)
    join_k = np.where(rng.random(P) < 0.5, 1, 2)
    sel = drow[(k_done == join_k[dp]) & loyal[dp]]
    loyalty_day = np.full(P, -1, dtype=np.int64)
    loyalty_day[person[sel]] = v["day"][sel]
    discount = np.where(loyalty_day >= 0, np.asarray([5, 7, 10])[_choice(rng, [0.4, 0.3, 0.3], P)], 0)

    # Card attributes; a duplicate card repeats its person's data with the MIS-typical differences.
    d = dups
    fmt = con["fmt"]
    dup_fmt = np.where(kind[d] == PH_MOBILE, (fmt[d] + rng.integers(1, len(PHONE_FORMATS), d.size)) % len(PHONE_FORMATS), fmt[d])
    birth_known = con["birth_known"].copy()
    birth_known[d[~email_variant]] = True

    def both(a, dup_values=None):
        return np.concatenate((a, a[d] if dup_values is None else dup_values))

    cards = dict(
        person=np.concatenate((np.arange(P), d)), number=number,
        last=both(con["last"]), first=both(con["first"]), father=both(con["father"]),
        has_middle=both(con["has_middle"]), male=both(per["male"]), sex_known=both(con["sex_known"]),
        birth=both(con["birth"]), birth_known=both(birth_known, np.where(email_variant, rng.random(d.size) < 0.7, True)),
        phone_kind=both(kind, np.where(email_variant, PH_EMPTY, kind[d]).astype(np.int8)),
        code=both(con["code"]), sub=both(con["sub"]), fmt=both(fmt, dup_fmt), invalid=both(con["invalid"]),
        has_email=both(has_email, email_variant),
        ecase=both(con["ecase"], np.where(email_variant, (con["ecase"][d] + 1) % 3, con["ecase"][d])),
        eform=both(con["eform"]), edomain=both(con["edomain"]), enum=both(con["enum"]),
        branch=both(per["branch"]),
        channel=both(per["channel"], np.where(rng.random(d.size) < 0.5, per["channel"][d], EMPTY_CHANNEL)),
        referred=both(referred, np.full(d.size, -1)), created=created,
        dnc=both(con["dnc"]), dnm=both(con["dnm"]), dead=both(dead),
        loyalty=both(loyalty_day, np.full(d.size, -1)),
    )
    return cards, vcard, ccard, dict(discount=discount, loyalty_day=loyalty_day)


def _channels_in(group: str) -> list[int]:
    """Indices of the CHANNELS of one canonical group."""
    return [i for i, c in enumerate(CHANNELS) if c[1] == group]


# ================================================================================================
# Stage 6: services, payments, plans, marketing
# ================================================================================================


def _service_tables():
    """Padded lookup tables over (specialty * N_KIND + kind): main candidates, add-ons, probabilities."""
    code_idx = {s[0]: i for i, s in enumerate(SERVICES)}
    n_combo = N_SPEC * N_KIND
    main = np.zeros((n_combo, 5), dtype=np.int64)
    main_cw = np.ones((n_combo, 5))
    addons = np.zeros((n_combo, 2), dtype=np.int64)
    n_add = np.zeros(n_combo, dtype=np.int64)
    p_add = np.zeros((n_combo, 2))
    fallback = {s: MENU[(s, K_CONS)] for s in range(N_SPEC) if (s, K_CONS) in MENU}
    fallback[PED] = MENU[(PED, K_CONS)]
    for s in range(N_SPEC):  # 8 x 9 menu cells
        for k in range(N_KIND):
            c = s * N_KIND + k
            entry = MENU.get((s, k)) or MENU.get((s, K_REP if k == K_REP else K_CONS)) or fallback[s]
            mains, adds, p1, p2 = entry
            w = np.asarray([x[1] for x in mains], dtype=float)
            main[c, : len(mains)] = [code_idx[x[0]] for x in mains]
            main_cw[c, : len(mains)] = np.cumsum(w) / w.sum()
            main[c, len(mains):] = main[c, len(mains) - 1]
            addons[c, : len(adds)] = [code_idx[a] for a in adds]
            n_add[c] = len(adds)
            p_add[c] = (p1, p2 if len(adds) > 1 else 0.0)
    qty_cw = np.ones((len(SERVICES), 5))
    for i, s in enumerate(SERVICES):
        q = np.cumsum(s[5]) / sum(s[5])
        qty_cw[i, : len(q)] = q
    price = np.asarray([s[4] for s in SERVICES], dtype=np.int64)
    return main, main_cw, addons, n_add, p_add, qty_cw, price


def _expected_treatment_amount(spec: int) -> float:
    """Expected bill of one treatment visit of a specialty at today's prices (RUB), for plan totals."""
    main, main_cw, addons, n_add, p_add, qty_cw, price = _service_tables()
    c = spec * N_KIND + K_TRT
    w = np.diff(main_cw[c], prepend=0.0)
    eq = (np.diff(qty_cw[main[c]], axis=1, prepend=0.0) * np.arange(1, 6)).sum(axis=1)
    total = float((w * price[main[c]] * eq).sum())
    if n_add[c]:
        total += p_add[c, 0] * float(price[addons[c, : n_add[c]]].mean())
    return total


def _make_services(rng, cal, v: dict, per: dict, pinfo: dict) -> tuple[dict, np.ndarray]:
    """1-3 services per completed visit; returns the services and each visit's bill (kopecks)."""
    D = cal.D
    main, main_cw, addons, n_add, p_add, qty_cw, price = _service_tables()
    vis = np.flatnonzero(v["status"] == COMPLETED)
    spec, kind, p = v["spec"][vis].astype(np.int64), v["kind"][vis].astype(np.int64), v["person"][vis]
    # A consultation is "primary" only for the person's first completed visit in that specialty.
    cons = np.isin(kind, (K_CONS, K_REP))
    key = p * N_SPEC + spec
    order = np.argsort(key, kind="stable")          # visits are already in time order per person
    first_in = np.zeros(vis.size, dtype=bool)
    ks = key[order]
    first_in[order[_starts(ks)]] = True
    kind = np.where(cons, np.where(first_in, K_CONS, K_REP), kind)
    combo = spec * N_KIND + kind

    u = rng.random((4, vis.size))
    vip = per["arch"][p] == A_VIP
    u[1] = np.where(vip, u[1] * 0.45, u[1])        # VIPs take the extra tests and procedures
    s_main = main[combo, _choice_cw(main_cw, combo, u[0])]
    n_extra = (u[1] < p_add[combo, 0]).astype(np.int64) + (u[1] < p_add[combo, 1])
    n_extra = np.minimum(n_extra, n_add[combo])
    a0 = (u[2] * np.maximum(n_add[combo], 1)).astype(np.int64)
    s_add1 = addons[combo, a0]
    s_add2 = addons[combo, (a0 + 1) % np.maximum(n_add[combo], 1)]

    n_svc = 1 + n_extra
    grp, pos = _rep(n_svc)
    svc = np.select([pos == 0, pos == 1], [s_main[grp], s_add1[grp]], s_add2[grp])
    qty = _choice_cw(qty_cw, svc, rng.random(grp.size)) + 1
    # Price at the visit date (yearly repricing, rounded to 10 RUB), minus a discount: loyalty members
    # 5-10% after joining; aggregator promo of 10% on some first visits.
    vday = v["day"][vis]
    factor = (1 + PRICE_GROWTH) ** ((vday - D) / 365.0)
    unit = np.round(price[svc] * factor[grp] / 10) * 10
    disc = np.where((pinfo["loyalty_day"][p] >= 0) & (vday >= pinfo["loyalty_day"][p]), pinfo["discount"][p], 0)
    first_row = _starts(p)
    aggr = np.isin(per["channel"][p], _channels_in("aggregator"))
    disc = np.where(first_row & aggr & (u[3] < 0.3), 10, disc)
    amount = (unit.astype(np.int64) * 100 * qty * (100 - disc[grp])) // 100
    bill = np.zeros(v["day"].size, dtype=np.int64)
    bill[vis] = np.bincount(grp, weights=amount, minlength=vis.size).astype(np.int64)
    services = dict(row=vis[grp], svc=svc.astype(np.int16), qty=qty.astype(np.int64), amount=amount)
    return services, bill


def _make_payments(rng, cal, v: dict, vcard: np.ndarray, bill: np.ndarray, per: dict, plans: dict | None,
                   plan_card: np.ndarray | None):
    """Payments on the visit day (some split, ~1% unpaid), plan advances, ~1% refunds."""
    D = cal.D
    ins = np.isin(per["channel"][v["person"]], _channels_in("insurance"))

    # Plan advances: 45% of accepted plans prepay 20-50%; treatment visits draw on the deposit first.
    due = bill.copy()
    adv_rows = None
    if plans is not None:
        np_ = plans["status"].size
        accepted = np.isin(plans["status"], (PL_ACCEPTED, PL_IN_PROGRESS, PL_COMPLETED)) & (plans["accept_day"] < D)
        has_adv = accepted & (rng.random(np_) < 0.45)
        adv = np.where(has_adv, np.round(plans["total"] * rng.uniform(0.2, 0.5, np_) / 100_000) * 100_000, 0).astype(np.int64)
        has_adv &= adv > 0
        adv = np.where(has_adv, adv, 0)
        t = np.flatnonzero((v["plan"] >= 0) & (v["kind"] == K_TRT) & (bill > 0))
        t = t[np.argsort(v["plan"][t], kind="stable")]
        cnt = np.bincount(v["plan"][t], minlength=np_)
        cnt_nz = cnt[cnt > 0]
        cum = _group_cumsum(bill[t], cnt_nz)
        a = adv[v["plan"][t]]
        covered = np.minimum(cum, a) - np.minimum(cum - bill[t], a)
        due[t] -= covered
        k = np.flatnonzero(has_adv)
        adv_rows = dict(card=plan_card[k], row=np.full(k.size, -1),
                        t=plans["accept_day"][k] * 86400 + rng.integers(10 * 3600, 19 * 3600, k.size),
                        amount=adv[k], method=np.where(rng.random(k.size) < 0.4, M_TRANSFER, M_CARD))

    rows = np.flatnonzero((v["status"] == COMPLETED) & (due > 0))
    u = rng.random((4, rows.size))
    unpaid = u[0] < 0.01
    split = (u[0] >= 0.01) & (u[0] < 0.11)
    rows, split, u = rows[~unpaid], split[~unpaid], u[:, ~unpaid]
    amt = due[rows]
    t0 = v["sched"][rows] + rng.integers(20 * 60, 80 * 60, rows.size)
    big = amt >= 5_000_000
    method = np.select([u[1] < np.where(big, 0.60, 0.68), u[1] < np.where(big, 0.65, 0.92)], [M_CARD, M_CASH], M_TRANSFER)
    method = np.where(ins[rows] & (u[3] < 0.9), M_INSURANCE, method)
    part1 = (np.round(amt * (0.3 + 0.4 * u[2]) / 10_000) * 10_000).astype(np.int64)
    split &= (part1 > 0) & (part1 < amt)
    first_amt = np.where(split, part1, amt)
    t1 = t0 + rng.integers(1, 31, rows.size) * 86400
    second = split & (t1 < D * 86400)
    pay = [dict(card=vcard[rows], row=rows, t=t0, amount=first_amt, method=method),
           dict(card=vcard[rows[second]], row=rows[second], t=t1[second], amount=(amt - part1)[second],
                method=method[second])]
    if adv_rows is not None:
        pay.append(adv_rows)
    pay = _cat_concat([{k: np.asarray(x, dtype=np.int64) for k, x in d.items()} for d in pay])

    # Refunds: ~1% of visit payments are (partly) returned a few days later.
    r = np.flatnonzero((pay["row"] >= 0) & (pay["amount"] > 0) & (rng.random(pay["t"].size) < 0.01))
    full = rng.random(r.size) < 0.35
    ramt = np.where(full, pay["amount"][r], np.round(pay["amount"][r] * rng.uniform(0.1, 0.6, r.size) / 1000) * 1000)
    rt = pay["t"][r] + rng.integers(1, 11, r.size) * 86400
    ok = (rt < D * 86400) & (ramt > 0)
    refunds = dict(card=pay["card"][r][ok], row=pay["row"][r][ok], t=rt[ok], amount=-ramt[ok].astype(np.int64),
                   method=pay["method"][r][ok])
    pay = _cat_concat([pay, {k: np.asarray(x, dtype=np.int64) for k, x in refunds.items()}])
    order = np.argsort(pay["t"], kind="stable")
    return _take(pay, order)


def _plan_totals(cal, v: dict, bill: np.ndarray, plans: dict) -> np.ndarray:
    """Plan totals (kopecks): declined/proposed plans were priced up front; accepted plans total what
    their treatment visits billed plus the expected bill of the visits still planned."""
    t = (v["plan"] >= 0) & (v["kind"] == K_TRT)
    billed = np.bincount(v["plan"][t], weights=bill[t], minlength=plans["status"].size).astype(np.int64)
    expected = np.asarray([_expected_treatment_amount(s) for s in range(N_SPEC)]) * 100
    factor = (1 + PRICE_GROWTH) ** ((plans["created_day"] - cal.D) / 365.0)
    rest = np.round(plans["n_missing"] * expected[plans["spec"]] * factor / 1000).astype(np.int64) * 1000
    return np.where(plans["total"] >= 0, plans["total"], billed + rest)


def _plan_table(rng, v: dict, vcard, plans: dict, pos_of_uid: np.ndarray) -> dict:
    """Treatment plan rows: card and doctor of the visit that produced the plan, ordered by creation."""
    row = pos_of_uid[plans["created_uid"]]
    created = v["sched"][row] + rng.integers(25 * 60, 55 * 60, row.size)
    change = np.where(plans["change_day"] >= 0,
                      plans["change_day"] * 86400 + rng.integers(9 * 3600, 20 * 3600, row.size), -1)
    change = np.where((change >= 0) & (change <= created), created + 3600, change)
    order = np.argsort(created, kind="stable")
    return _take(dict(card=vcard[row], doctor=v["doctor"][row], spec=plans["spec"], created=created,
                      total=plans["total"], status=plans["status"], change=change), order)


def _make_marketing(rng, cal, cards: dict, P: int) -> dict:
    """Monthly spend per paid channel: new patients of that channel times its CAC, with noise."""
    paid = [i for i, c in enumerate(CHANNELS) if c[3]]
    paid_names = [CHANNELS[i][0] for i in paid]
    budget = [SPEND_CHANNEL_OF.get(c[0], c[0]) for c in CHANNELS]      # whose budget a channel's patients count to
    spend_of = np.asarray([paid_names.index(b) if b in paid_names else -1 for b in budget])
    n_months = int(cal.month_index[cal.D - 1]) + 1
    created_day = np.clip(cards["created"][:P] // 86400, 0, cal.D - 1)
    month = cal.month_index[created_day]
    ch = spend_of[cards["channel"][:P]]
    ok = ch >= 0
    counts = np.bincount(month[ok] * len(paid) + ch[ok], minlength=n_months * len(paid)).reshape(n_months, len(paid))
    cac = np.asarray([CHANNELS[i][3] for i in paid], dtype=float)
    noise = rng.uniform(0.85, 1.2, counts.shape)
    amount = np.round(np.maximum(counts, 0.5) * cac * noise * 100).astype(np.int64)
    m, c = np.divmod(np.arange(counts.size), len(paid))
    return dict(month=m, channel=np.asarray(paid)[c], amount=amount.ravel())


# ================================================================================================
# Writing
# ================================================================================================


def _cat(codes, categories) -> pd.Categorical:
    """Integer codes (-1 = null) as a pandas Categorical: DuckDB scans it as an ENUM without copying strings."""
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64), categories=list(categories))


def _unique(values: list[str]) -> tuple[list[str], dict[str, int]]:
    cats = list(dict.fromkeys(values))
    return cats, {x: i for i, x in enumerate(cats)}


def _ts(start: _dt.date, seconds: np.ndarray) -> np.ndarray:
    """Seconds since the window start -> datetime64[us], which DuckDB reads as TIMESTAMP."""
    return (np.datetime64(start, "s") + np.asarray(seconds, dtype=np.int64).astype("timedelta64[s]")).astype("datetime64[us]")


def _write(con, out_dir: Path, name: str, frame: pd.DataFrame, select: str) -> int:
    """COPY one table to <name>.csv.tmp and rename it into place; returns the row count."""
    final = out_dir / f"{name}.csv"
    tmp = out_dir / f"{name}.csv.tmp"
    con.register("src", frame)
    try:
        path = str(tmp).replace("'", "''")
        con.execute(f"COPY ({select}) TO '{path}' (FORMAT CSV, HEADER, DELIMITER ',', QUOTE '\"', "
                    f"TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S', DATEFORMAT '%Y-%m-%d')")
        os.replace(tmp, final)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise
    finally:
        con.unregister("src")
    return len(frame)


def _money(col: str) -> str:
    """SQL for integer kopecks -> DECIMAL(18,2), which DuckDB writes with exactly two decimals."""
    return f"cast({col} / 100.0 as decimal(18,2))"


def _write_patients(con, out_dir, start, cards, branch_ids) -> int:
    """patients.csv: names, phones and e-mails are assembled by DuckDB from catalogue codes."""
    cards = _take(cards, np.argsort(cards["number"], kind="stable"))   # file order = patient_id
    surname_cats, surname_ix = _unique([s for pair in SURNAMES for s in pair])
    last_code = np.asarray([[surname_ix[m], surname_ix[f]] for m, f in SURNAMES])[cards["last"], cards["male"].astype(np.int64) ^ 1]
    first_cats, first_ix = _unique([m[0] for m in MALE_NAMES] + FEMALE_NAMES)
    male_first = np.asarray([first_ix[m[0]] for m in MALE_NAMES])
    female_first = np.asarray([first_ix[f] for f in FEMALE_NAMES])
    first_code = np.where(cards["male"], male_first[np.minimum(cards["first"], len(MALE_NAMES) - 1)],
                          female_first[np.minimum(cards["first"], len(FEMALE_NAMES) - 1)])
    mid_cats, mid_ix = _unique([m[1] for m in MALE_NAMES] + [m[2] for m in MALE_NAMES])
    mid_code = np.asarray([[mid_ix[m[1]], mid_ix[m[2]]] for m in MALE_NAMES])[cards["father"], cards["male"].astype(np.int64) ^ 1]
    mid_code = np.where(cards["has_middle"], mid_code, -1)

    def translit(s: str) -> str:
        return "".join(TRANSLIT.get(ch, ch) for ch in s.lower())

    lat_first = np.asarray([translit(x) for x in first_cats], dtype=object)
    lat_last = np.asarray([translit(x) for x in surname_cats], dtype=object)
    lf_cats, lf_ix = _unique(list(lat_first))
    ll_cats, ll_ix = _unique(list(lat_last))
    lf_code = np.asarray([lf_ix[x] for x in lat_first])[first_code]
    ll_code = np.asarray([ll_ix[x] for x in lat_last])[last_code]
    invalid_cat = _cat(np.where(cards["phone_kind"] == PH_INVALID, cards["invalid"], -1), INVALID_PHONES)
    channel_names = [c[0] or "" for c in CHANNELS]                    # "" is never used: empty -> null
    channel_code = np.where(cards["channel"] == EMPTY_CHANNEL, -1, cards["channel"])
    sub = cards["sub"]
    frame = pd.DataFrame({
        "number": cards["number"],
        "last": _cat(last_code, surname_cats), "first": _cat(first_code, first_cats), "middle": _cat(mid_code, mid_cats),
        "birth": np.where(cards["birth_known"], _ts(start, cards["birth"] * 86400), np.datetime64("NaT")).astype("datetime64[us]"),
        "sex": _cat(np.where(cards["sex_known"], cards["male"].astype(np.int64), -1), ["F", "M"]),
        "pkind": cards["phone_kind"].astype(np.int8), "fmt": cards["fmt"].astype(np.int8),
        "code": cards["code"].astype(np.int32), "s1": (sub // 10000).astype(np.int32),
        "s2": (sub // 100 % 100).astype(np.int32), "s3": (sub % 100).astype(np.int32), "invalid": invalid_cat,
        "has_email": cards["has_email"], "ecase": cards["ecase"].astype(np.int8), "eform": cards["eform"].astype(np.int8),
        "lf": _cat(lf_code, lf_cats), "ll": _cat(ll_code, ll_cats), "enum": cards["enum"],
        "domain": _cat(cards["edomain"], [d for d, _ in EMAIL_DOMAINS]),
        "branch": _cat(cards["branch"], branch_ids),
        "channel": _cat(channel_code, channel_names),
        "referred": cards["referred"],
        "created": _ts(start, cards["created"]),
        "dnc": cards["dnc"], "dnm": cards["dnm"], "dead": cards["dead"],
        "loyalty": np.where(cards["loyalty"] >= 0, _ts(start, cards["loyalty"] * 86400), np.datetime64("NaT")).astype("datetime64[us]"),
    }, copy=False)
    mobile = " ".join(f"when {i} then printf('{f}', code, s1, s2, s3)" for i, (f, _) in enumerate(PHONE_FORMATS))
    land = " ".join(f"when {i} then printf('{f}', code, s1, s2, s3)" for i, (f, _) in enumerate(LANDLINE_FORMATS))
    local = ("case eform when 0 then lf || '.' || ll || enum when 1 then ll || '.' || lf || enum "
             "when 2 then left(lf, 1) || ll || enum when 3 then ll || enum else lf || '_' || ll || enum end")
    email = f"({local}) || '@' || domain"
    select = f"""
        select
            cast(number as varchar) as patient_id,
            cast("last" as varchar) as last_name,
            cast("first" as varchar) as first_name,
            cast(middle as varchar) as middle_name,
            cast(birth as date) as birth_date,
            cast(sex as varchar) as sex,
            case pkind when 0 then (case fmt {mobile} end) when 1 then (case fmt {land} end)
                       when 3 then cast(invalid as varchar) end as phone,
            case when has_email then (case ecase when 0 then lower({email})
                                                 when 1 then upper(left({email}, 1)) || substr({email}, 2)
                                                 else upper({email}) end) end as email,
            cast(branch as varchar) as branch_id,
            cast(channel as varchar) as source_channel,
            case when referred >= 0 then cast(referred as varchar) end as referred_by_patient_id,
            created as created_at,
            dnc as do_not_call,
            dnm as do_not_message,
            dead as is_deceased,
            cast(loyalty as date) as loyalty_member_since
        from src"""
    return _write(con, out_dir, "patients", frame, select)


def generate(out_dir, patients: int = 3000, seed: int = 42, today: _dt.date = DEMO_TODAY,
             branches: int = 3, years: int = 3, progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Write the canonical CSV exports into out_dir; return {table_name: row_count}."""
    say = progress or (lambda _msg: None)
    if patients < 1:
        raise ValueError("patients must be at least 1")
    if branches < 1 or years < 1:
        raise ValueError("branches and years must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        start = today.replace(year=today.year - years)
    except ValueError:                                      # 29 February
        start = today.replace(year=today.year - years, day=28)
    cal = _Calendar(start, (today - start).days)
    # One independent random stream per stage: changing one stage leaves the others' draws alone.
    rngs = [np.random.default_rng(s) for s in np.random.SeedSequence([seed, 0xC11A1C]).spawn(12)]

    n_dup = int(round(DUPLICATE_SHARE * patients)) if patients >= 50 else 0
    P = patients - n_dup
    say(f"Demo clinic: {patients:,} patients")
    per = _make_persons(rngs[0], cal, P, branches)
    contacts = _make_contacts(rngs[1], per)
    say("Demo clinic: visits and treatment plans")
    v, plans = _make_visits(rngs[2], cal, per)
    v = _add_status_noise(rngs[3], cal, v, per)
    dead = _pick_deceased(rngs[4], cal, v, per)
    say("Demo clinic: the call centre")
    callable_ = ~dead & ~contacts["dnc"] & np.isin(contacts["phone_kind"], (PH_MOBILE, PH_LANDLINE))
    calls, extra, assignments = _make_calls(rngs[5], cal, v, per, plans, callable_)
    extra["uid"] = np.arange(v["day"].size, v["day"].size + extra["day"].size)
    v = _cat_concat([v, extra])
    say("Demo clinic: appointment times, doctors, cards")
    v = _place_visits(rngs[6], cal, v, per, branches)
    pos_of_uid = np.empty(v["uid"].size, dtype=np.int64)
    pos_of_uid[v["uid"]] = np.arange(v["uid"].size)
    cards, vcard, ccard, loyalty = _make_cards(rngs[7], v, per, contacts, calls, dead, patients)
    say("Demo clinic: services and payments")
    services, bill = _make_services(rngs[8], cal, v, per, loyalty)
    plan_rows, plan_card = None, None
    if plans is not None:
        plans["total"] = _plan_totals(cal, v, bill, plans)
        plan_card = vcard[pos_of_uid[plans["created_uid"]]]
        plan_rows = _plan_table(rngs[9], v, vcard, plans, pos_of_uid)
    pay = _make_payments(rngs[10], cal, v, vcard, bill, per, plans, plan_card)
    spend = _make_marketing(rngs[11], cal, cards, P)
    # Free what the writers do not need (1M patients: ~0.5 GB).
    for column in ("person", "day", "kind", "plan", "bday", "uid", "minute"):
        del v[column]
    del per, contacts, plans, bill, pos_of_uid, plan_card
    return _write_all(out_dir, start, v, vcard, services, pay, plan_rows, calls, ccard, cards, spend, say, branches,
                      seed, assignments)


def _write_all(out_dir, start, v, vcard, services, pay, plan_rows, calls, ccard, cards, spend, say, branches,
               seed, assignments=None) -> dict[str, int]:
    """Write the seven CSVs, each sorted by its id, through one in-memory DuckDB connection."""
    rng = np.random.default_rng([seed, 0xF11E])
    roster, _, _ = _doctors(branches)
    doctor_ids = [d[0] for d in roster]
    branch_ids = [f"B{i + 1}" for i in range(branches)]
    number = cards["number"]
    counts: dict[str, int] = {}
    con = duckdb.connect()
    # Rows are written in the order of the registered arrays (already sorted by their id): DuckDB keeps
    # insertion order for a plain scan when preserve_insertion_order is on. This is as deterministic as
    # an ORDER BY and needs neither the sort's time nor its memory.
    con.execute("set preserve_insertion_order = true")
    con.execute("set enable_progress_bar = false")
    try:
        say("Writing patients.csv")
        counts["patients"] = _write_patients(con, out_dir, start, cards, branch_ids)

        say("Writing visits.csv")
        # visit ids follow booking order, as an MIS numbers appointments when they are made
        vorder = np.argsort(v["booked"], kind="stable")
        vno = np.empty(vorder.size, dtype=np.int64)
        vno[vorder] = np.arange(1, vorder.size + 1)
        booked = _ts(start, v["booked"][vorder])
        null_booked = rng.random(vno.size) < 0.005          # a few legacy rows without a booking time
        booked[null_booked] = np.datetime64("NaT")
        frame = pd.DataFrame({
            "vno": np.arange(1, vorder.size + 1), "patient": number[vcard[vorder]],
            "sched": _ts(start, v["sched"][vorder]), "status": _cat(v["status"][vorder], STATUSES),
            "doctor": _cat(v["doctor"][vorder], doctor_ids), "spec": _cat(v["spec"][vorder], SPECIALTIES),
            "branch": _cat(v["branch"][vorder], branch_ids), "booked": booked,
        }, copy=False)
        counts["visits"] = _write(con, out_dir, "visits", frame, """
            select printf('V%08d', vno) as visit_id, cast(patient as varchar) as patient_id,
                   sched as scheduled_at, cast(status as varchar) as status, cast(doctor as varchar) as doctor_id,
                   cast(spec as varchar) as specialty, cast(branch as varchar) as branch_id, booked as booked_at
            from src""")
        del frame, booked

        say("Writing visit_services.csv")
        categories, cat_ix = _unique([s[2] for s in SERVICES])
        cat_of_service = np.asarray([cat_ix[s[2]] for s in SERVICES])
        srow = services["row"]
        sorder = np.argsort(vno[srow], kind="stable")      # by visit, lines in billing order
        frame = pd.DataFrame({
            "vno": vno[srow][sorder],
            "code": _cat(services["svc"][sorder], [s[0] for s in SERVICES]),
            "name": _cat(services["svc"][sorder], [s[1] for s in SERVICES]),
            "cat": _cat(cat_of_service[services["svc"][sorder]], categories),
            "qty": services["qty"][sorder], "amount": services["amount"][sorder],
        }, copy=False)
        counts["visit_services"] = _write(con, out_dir, "visit_services", frame, f"""
            select printf('V%08d', vno) as visit_id, cast(code as varchar) as service_code,
                   cast(name as varchar) as service_name, cast(cat as varchar) as service_category,
                   qty as quantity, {_money('amount')} as amount
            from src""")
        del frame

        say("Writing payments.csv")
        prow = pay["row"]
        frame = pd.DataFrame({
            "k": np.arange(prow.size, dtype=np.int64), "patient": number[pay["card"]],
            "vno": np.where(prow >= 0, vno[np.maximum(prow, 0)], -1), "paid": _ts(start, pay["t"]),
            "amount": pay["amount"], "method": _cat(pay["method"], METHODS),
        }, copy=False)
        counts["payments"] = _write(con, out_dir, "payments", frame, f"""
            select printf('PAY%08d', k + 1) as payment_id, cast(patient as varchar) as patient_id,
                   case when vno >= 0 then printf('V%08d', vno) end as visit_id, paid as paid_at,
                   {_money('amount')} as amount, cast(method as varchar) as method
            from src""")
        del frame

        say("Writing treatment_plans.csv")
        if plan_rows is None:
            plan_rows = dict(card=np.zeros(0, np.int64), doctor=np.zeros(0, np.int64), spec=np.zeros(0, np.int64),
                             created=np.zeros(0, np.int64), total=np.zeros(0, np.int64),
                             status=np.zeros(0, np.int64), change=np.zeros(0, np.int64))
        change = _ts(start, np.maximum(plan_rows["change"], 0))
        change[plan_rows["change"] < 0] = np.datetime64("NaT")
        frame = pd.DataFrame({
            "k": np.arange(plan_rows["card"].size, dtype=np.int64), "patient": number[plan_rows["card"]],
            "doctor": _cat(plan_rows["doctor"], doctor_ids), "spec": _cat(plan_rows["spec"], SPECIALTIES),
            "created": _ts(start, plan_rows["created"]), "total": plan_rows["total"],
            "status": _cat(plan_rows["status"], PLAN_STATUSES), "change": change,
        }, copy=False)
        counts["treatment_plans"] = _write(con, out_dir, "treatment_plans", frame, f"""
            select printf('TP%06d', k + 1) as plan_id, cast(patient as varchar) as patient_id,
                   cast(doctor as varchar) as doctor_id, cast(spec as varchar) as specialty, created as created_at,
                   {_money('total')} as total_amount, cast(status as varchar) as status,
                   change as status_changed_at
            from src""")
        del frame

        say("Writing calls.csv")
        crng = rng
        nc = ccard.size
        ct = calls["day"] * 86400 + crng.integers(9 * 3600, 19 * 3600 + 1800, nc)
        res = calls["result"].astype(np.int64)
        duration = np.where(np.isin(res, (2, 4)), 0, crng.integers(20, 301, nc))
        comment = np.full(nc, -1, dtype=np.int64)
        texts: list[str] = []
        for r, name in enumerate(CALL_RESULTS):  # five results
            share, options = CALL_COMMENTS[name]
            m = (res == r) & (crng.random(nc) < share)
            comment[m] = len(texts) + crng.integers(0, len(options), int(m.sum()))
            texts += options
        order = np.argsort(ct, kind="stable")
        frame = pd.DataFrame({
            "k": np.arange(nc, dtype=np.int64), "patient": number[ccard][order],
            "op": _cat(_choice(crng, [w for _, w in OPERATORS], nc)[order], [o for o, _ in OPERATORS]),
            "t": _ts(start, ct[order]), "dur": duration[order], "res": _cat(res[order], CALL_RESULTS),
            "action": _cat(calls["action"][order], CALL_ACTIONS), "comment": _cat(comment[order], texts),
        }, copy=False)
        counts["calls"] = _write(con, out_dir, "calls", frame, """
            select printf('C%07d', k + 1) as call_id, cast(patient as varchar) as patient_id,
                   cast(op as varchar) as operator_id, t as called_at, dur as duration_s,
                   cast(res as varchar) as result, cast(action as varchar) as action_code,
                   cast(comment as varchar) as comment
            from src""")
        del frame

        say("Writing marketing_spend.csv")
        month_start = np.datetime64(start, "M") + spend["month"].astype("timedelta64[M]")
        frame = pd.DataFrame({
            "k": np.arange(spend["month"].size, dtype=np.int64),
            "month": month_start.astype("datetime64[D]").astype("datetime64[us]"),
            "channel": _cat(spend["channel"], [c[0] or "" for c in CHANNELS]), "amount": spend["amount"],
        }, copy=False)
        counts["marketing_spend"] = _write(con, out_dir, "marketing_spend", frame, f"""
            select cast(month as date) as month, cast(channel as varchar) as channel, {_money('amount')} as amount
            from src""")
        del frame

        if assignments is not None:
            say("Writing call_assignments.csv")
            list_day = np.datetime64(start, "D") + assignments["day"].astype("timedelta64[D]")
            frame = pd.DataFrame({
                "k": np.arange(assignments["day"].size, dtype=np.int64),
                "list_date": list_day.astype("datetime64[us]"), "patient": number[assignments["person"]],
                "action": _cat(assignments["action"], CALL_ACTIONS), "arm": _cat(assignments["arm"], ["call", "control"]),
                "added": assignments["added"],
            }, copy=False)
            # the past lists as patientbase would have recorded them; demo_came_because_called is the
            # simulation's truth (an extra column: the loader keeps it, the models ignore it)
            counts["call_assignments"] = _write(con, out_dir, "call_assignments", frame, """
                select cast(list_date as date) as list_date, cast(patient as varchar) as patient_id,
                       cast(action as varchar) as action_code, cast(list_date as date) as trigger_date,
                       cast(arm as varchar) as arm, cast(null as bigint) as list_rank,
                       cast(null as varchar) as operator_id, cast(null as decimal(18,2)) as expected_value,
                       cast(null as timestamp) as recorded_at,
                       case when arm = 'call' then added end as demo_came_because_called
                from src
                order by list_date, patient_id, action_code""")
    finally:
        con.close()
    return counts
