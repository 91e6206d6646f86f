{#- One row: the date every "as of" rule is computed for. Var `as_of_date`, else the day after the
    latest completed visit (so a build is reproducible), else today for an empty warehouse; and
    whether the build is a replay (the exports hold completed visits on or after that date). -#}
with

visits as (

    select * from {{ ref('stg_mis__visits') }}

),

latest as (

    select max(visit_date) as last_completed_visit_date
    from visits
    where is_completed

),

final as (

    select
        {% if var('as_of_date', none) -%}
        cast('{{ var("as_of_date") }}' as date)
        {%- else -%}
        coalesce(
            cast({{ dbt.dateadd('day', 1, 'last_completed_visit_date') }} as date),
            {{ dbt.current_timestamp() }}
        )
        {%- endif %} as as_of_date,
        cast({{ dbt.dateadd('day', 1, 'last_completed_visit_date') }} as date) as knowledge_date
    from latest

)

select
    cast(as_of_date as date) as as_of_date,
    -- a replay: the exports know days after the as-of date, so a future visit without booked_at may
    -- have been booked after it and is not counted as a booking (docs/decisions.md, "Replays")
    coalesce(cast(as_of_date as date) < knowledge_date, false) as is_replay
from final
