{#-
  What the call centre achieved, per operator x action x ISO week (Monday): attempts, conversations,
  bookings, patients who came (a completed visit within `call_outcome_days` after their call, last
  touch: see int_calls_attributed), the revenue of those visits, rates and the operator bonus.
-#}
with

calls as (

    select * from {{ ref('int_calls_attributed') }}

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
        count(distinct case when has_visit_after then patient_key end) as came,
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
        operator_id,
        action_code,
        week_start,
        cast(attempts as {{ dbt.type_int() }}) as attempts,
        cast(patients_called as {{ dbt.type_int() }}) as patients_called,
        cast(reached as {{ dbt.type_int() }}) as reached,
        cast(booked as {{ dbt.type_int() }}) as booked,
        cast(refused as {{ dbt.type_int() }}) as refused,
        cast(came as {{ dbt.type_int() }}) as came,
        cast(visits_after as {{ dbt.type_int() }}) as visits_after,
        {{ patient_base.cast_money('revenue') }} as revenue,
        {{ patient_base.ratio_or_null('reached', 'attempts') }} as reach_rate,
        {{ patient_base.ratio_or_null('booked', 'reached') }} as booking_rate,
        {{ patient_base.ratio_or_null('came', 'patients_called') }} as came_rate,
        {{ patient_base.cast_money('came * ' ~ var('operator_bonus_per_patient', 300)) }} as operator_bonus,
        is_outcome_window_complete,
        as_of_date
    from weekly

)

select * from final
