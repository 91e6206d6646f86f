{#-
  What the call centre achieved, per operator x action x ISO week (Monday): attempts, conversations,
  bookings, patients who came (a completed visit within `call_outcome_days` after their call, last
  touch: see int_calls_attributed), the revenue of those visits, rates and the operator bonus.

  The funnel adds up: attempts >= reached >= booked (calls); patients_called >= patients_reached;
  came = came_after_reached (the visit followed a call that reached the patient) + came_after_unanswered
  (it followed only unanswered attempts). The bonus is paid only for came_after_reached: per patient
  (var `operator_bonus_basis` 'came', default) or per incremental patient ('incremental': x the
  action's measured uplift / its called came-rate from call_uplift, when that is final and significant;
  0 when it is measured at or below 0; per patient while there is no measurement yet).
-#}
{%- set bonus = var('operator_bonus_per_patient', 300) -%}
{%- set basis = var('operator_bonus_basis', 'came') -%}
{%- if basis not in ('came', 'incremental') -%}
    {{ exceptions.raise_compiler_error("var operator_bonus_basis must be 'came' or 'incremental'") }}
{%- endif -%}
with

calls as (

    select * from {{ ref('int_calls_attributed') }}

),

uplift as (

    select * from {{ ref('call_uplift') }}

),

-- the share of the called who came that the calls added, per action (final, significant measurements)
incremental_shares as (

    select
        action_code,
        case
            when uplift <= 0 then 0
            when uplift >= rate_called then 1
            else uplift / rate_called
        end as incremental_share
    from uplift
    where operator_id = 'all'
        and month is null
        and action_code <> 'all'
        and is_significant
        and rate_called > 0

),

labelled as (

    select
        *,
        coalesce(operator_id, 'unknown') as operator_key,
        coalesce(action_code, 'unknown') as action_key,
        -- a patient is a person; a call on a card outside the patients export counts as its card
        coalesce(person_id, {{ dbt.concat(["'card:'", 'patient_id']) }}) as patient_key
    from calls

),

weekly as (

    select
        operator_key as operator_id,
        action_key as action_code,
        week_start,
        count(*) as attempts,
        count(distinct patient_key) as patients_called,
        sum(case when is_reached then 1 else 0 end) as reached,
        sum(case when is_booked then 1 else 0 end) as booked,
        sum(case when is_refused then 1 else 0 end) as refused,
        count(distinct case when is_reached then patient_key end) as patients_reached,
        count(distinct case when is_booked then patient_key end) as patients_booked,
        count(distinct case when has_visit_after then patient_key end) as came,
        count(distinct case when has_visit_after and is_reached then patient_key end) as came_after_reached,
        sum(visits_after) as visits_after,
        sum(revenue_after) as revenue,
        min(case when is_outcome_window_complete then 1 else 0 end) = 1 as is_outcome_window_complete,
        max(as_of_date) as as_of_date
    from labelled
    group by
        operator_key,
        action_key,
        week_start

),

final as (

    select
        weekly.operator_id,
        weekly.action_code,
        weekly.week_start,
        cast(weekly.attempts as {{ dbt.type_int() }}) as attempts,
        cast(weekly.patients_called as {{ dbt.type_int() }}) as patients_called,
        cast(weekly.reached as {{ dbt.type_int() }}) as reached,
        cast(weekly.booked as {{ dbt.type_int() }}) as booked,
        cast(weekly.refused as {{ dbt.type_int() }}) as refused,
        cast(weekly.patients_reached as {{ dbt.type_int() }}) as patients_reached,
        cast(weekly.patients_booked as {{ dbt.type_int() }}) as patients_booked,
        cast(weekly.came as {{ dbt.type_int() }}) as came,
        cast(weekly.came_after_reached as {{ dbt.type_int() }}) as came_after_reached,
        cast(weekly.came - weekly.came_after_reached as {{ dbt.type_int() }}) as came_after_unanswered,
        cast(weekly.visits_after as {{ dbt.type_int() }}) as visits_after,
        {{ patient_base.cast_money('weekly.revenue') }} as revenue,
        {{ patient_base.ratio_or_null('weekly.reached', 'weekly.attempts') }} as reach_rate,
        {{ patient_base.ratio_or_null('weekly.booked', 'weekly.reached') }} as booking_rate,
        {{ patient_base.ratio_or_null('weekly.came', 'weekly.patients_called') }} as came_rate,
        {%- if basis == 'incremental' %}
        {{ patient_base.cast_money('weekly.came_after_reached * coalesce(incremental_shares.incremental_share, 1) * ' ~ bonus) }}
        {%- else %}
        {{ patient_base.cast_money('weekly.came_after_reached * ' ~ bonus) }}
        {%- endif %} as operator_bonus,
        weekly.is_outcome_window_complete,
        weekly.as_of_date
    from weekly
    -- read only when operator_bonus_basis = 'incremental'
    left join incremental_shares  -- noqa: ST11
        on weekly.action_code = incremental_shares.action_code

)

select * from final
