{#- One row: the date every "as of" rule is computed for. Var `as_of_date`, else the day after the
    latest completed visit (so a build is reproducible), else today for an empty warehouse. -#}
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
        {%- endif %} as as_of_date
    from latest

)

select cast(as_of_date as date) as as_of_date from final
