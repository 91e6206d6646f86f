-- The simplest fast way to get the core numbers: one hand-written DuckDB script straight from the raw
-- tables (plus the RFM segment seed), no dbt, no portability, no tests. benchmarks/run.py times it
-- next to `patientbase build` so the project's cost shows as a ratio. It computes: persons (one round
-- of phone+birth date / e-mail+name matching), patient facts with lifecycle, RFM scores and segments,
-- cohort revenue, and call-list candidates.

create schema if not exists reference;

create or replace table reference.as_of as
select max(cast(scheduled_at as date)) + 1 as as_of_date from raw.visits where lower(trim(status)) = 'completed';

create or replace table reference.persons as
with cards as (
    select patient_id,
           case when phone_e164 is not null and birth_date is not null then phone_e164 || '|' || birth_date end as k1,
           case when email is not null and last_name is not null and first_name is not null
                then lower(trim(email)) || '|' || lower(last_name) || ' ' || lower(first_name) end as k2
    from raw.patients
)
select patient_id,
       least(patient_id,
             case when k1 is not null then min(patient_id) over (partition by k1) else patient_id end,
             case when k2 is not null then min(patient_id) over (partition by k2) else patient_id end) as person_id
from cards;

create or replace table reference.visits as
select v.visit_id, p.person_id, v.scheduled_at as visit_at, lower(trim(v.status)) as status, v.specialty
from raw.visits v join reference.persons p using (patient_id);

create or replace table reference.payments as
select p.person_id, pay.paid_at, pay.amount
from raw.payments pay join reference.persons p using (patient_id), reference.as_of
where cast(pay.paid_at as date) < as_of_date;

create or replace table reference.patient_facts as
with v as (
    select person_id,
           min(visit_at) filter (where status = 'completed') as first_visit_at,
           max(visit_at) filter (where status = 'completed') as last_visit_at,
           count(*) filter (where status = 'completed') as completed_visits,
           count(*) filter (where status = 'no_show') as no_shows,
           min(visit_at) filter (where status = 'scheduled') as next_scheduled_at
    from reference.visits group by person_id
),
m as (select person_id, sum(amount) as revenue from reference.payments group by person_id),
card as (
    select p.person_id, bool_or(coalesce(do_not_call, false)) as dnc, bool_or(coalesce(is_deceased, false)) as dead,
           max(phone_e164) as phone
    from raw.patients r join reference.persons p using (patient_id) group by p.person_id
)
select card.person_id, v.first_visit_at, v.last_visit_at, coalesce(v.completed_visits, 0) as completed_visits,
       coalesce(m.revenue, 0) as revenue, v.next_scheduled_at, card.phone, card.dnc, card.dead,
       as_of_date - cast(v.last_visit_at as date) as days_since_last_visit,
       case when card.dead then 'deceased'
            when coalesce(v.completed_visits, 0) = 0 then 'no_show_first'
            when v.next_scheduled_at is not null then 'in_treatment'
            when as_of_date - cast(v.first_visit_at as date) <= 90 then 'new'
            when as_of_date - cast(v.last_visit_at as date) <= 180 then 'active'
            when as_of_date - cast(v.last_visit_at as date) <= 365 then 'sleeping'
            else 'lost' end as lifecycle_status
from card left join v using (person_id) left join m using (person_id), reference.as_of;

create or replace table reference.rfm as
with base as (
    select person_id, days_since_last_visit as r, completed_visits as f, revenue as m
    from reference.patient_facts where completed_visits > 0
),
scored as (
    select *,
           cast(least(3, floor(percent_rank() over (order by r desc) * 3) + 1) as int) as r_score,
           cast(least(3, floor(percent_rank() over (order by f) * 3) + 1) as int) as f_score,
           cast(least(3, floor(percent_rank() over (order by m) * 3) + 1) as int) as m_score
    from base
)
select scored.*, 'R' || r_score || 'F' || f_score || 'M' || m_score as rfm_code, map.segment
from scored left join marts.rfm_segment_map_3 map
  on map.rfm_code = 'R' || r_score || 'F' || f_score || 'M' || m_score;

create or replace table reference.cohort_revenue as
with first as (
    select person_id, date_trunc('month', first_visit_at) as cohort_month from reference.patient_facts
    where first_visit_at is not null
),
sizes as (select cohort_month, count(*) as cohort_size from first group by 1),
rev as (
    select first.cohort_month,
           greatest(0, datediff('month', first.cohort_month, date_trunc('month', payments.paid_at))) as months_since_first,
           sum(amount) as revenue
    from reference.payments payments join first using (person_id) group by 1, 2
)
select rev.*, sizes.cohort_size,
       sum(revenue) over (partition by rev.cohort_month order by months_since_first) as cumulative_revenue,
       sum(revenue) over (partition by rev.cohort_month order by months_since_first) / sizes.cohort_size
           as cumulative_revenue_per_patient
from rev join sizes using (cohort_month);

create or replace table reference.call_candidates as
with last_call as (
    select p.person_id, max(called_at) as last_call_at,
           max(called_at) filter (where lower(result) = 'refused') as last_refusal_at
    from raw.calls c join reference.persons p using (patient_id) group by 1
)
select f.person_id, f.phone, f.lifecycle_status, r.segment, f.revenue,
       case when f.lifecycle_status in ('sleeping', 'lost') then 'reactivation'
            when f.lifecycle_status = 'new' and f.completed_visits = 1 then 'welcome_second_visit'
            else 'none' end as action_code
from reference.patient_facts f
left join reference.rfm r using (person_id)
left join last_call using (person_id), reference.as_of
where f.phone is not null and not f.dnc and not f.dead and f.next_scheduled_at is null
  and (last_call_at is null or cast(last_call_at as date) <= as_of_date - 14)
  and (last_refusal_at is null or cast(last_refusal_at as date) <= as_of_date - 90);
