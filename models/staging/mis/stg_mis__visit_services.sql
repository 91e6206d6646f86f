{%- set service_categories = [
    'consultation', 'diagnostics', 'hygiene', 'treatment', 'checkup',
    'vaccination', 'surgery', 'chronic_care', 'other',
] -%}

-- indentation (LT02) unchecked here: Jinja loops or hanging continuation lines (.sqlfluff)
-- noqa: disable=LT02
with

source as (

    select * from {{ source('mis', 'visit_services') }}

),

cleaned as (

    select
        {{ clean_text('visit_id') }} as visit_id,
        {{ clean_text('service_code') }} as service_code,
        {{ clean_text('service_name') }} as service_name,
        {{ clean_status('service_category') }} as service_category_code,
        cast(quantity as {{ dbt.type_int() }}) as quantity,
        {{ cast_money('amount') }} as amount,
        _source_file,
        _source_line

    from source

),

numbered as (

    select
        *,
        row_number() over (
            partition by visit_id, service_code
            order by _source_file, _source_line
        ) as line_number

    from cleaned

),

final as (

    select
        {{ dbt.concat([
            'visit_id',
            "'-'",
            "coalesce(service_code, 'none')",
            "'-'",
            'cast(line_number as ' ~ dbt.type_string() ~ ')',
        ]) }} as visit_service_id,
        visit_id,
        service_code,
        service_name,
        case
            when service_category_code in (
                {%- for category in service_categories %}
                '{{ category }}'{% if not loop.last %},{% endif %}
                {%- endfor %}
            ) then service_category_code
            else 'other'
        end as service_category,
        coalesce(quantity, 1) as quantity,
        amount

    from numbered

)

select * from final
