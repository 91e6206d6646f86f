with

source as (

    select * from {{ source('mis', 'marketing_spend') }}

),

cleaned as (

    select
        cast({{ dbt.date_trunc('month', 'month') }} as date) as spend_month,
        {{ clean_text('channel') }} as source_channel,
        {{ cast_money('amount') }} as amount,
        _source_file,
        _source_line

    from source

),

numbered as (

    select
        *,
        row_number() over (
            partition by spend_month, source_channel
            order by _source_file, _source_line
        ) as line_number

    from cleaned

),

final as (

    select
        {{ dbt.concat([
            'coalesce(cast(spend_month as ' ~ dbt.type_string() ~ "), 'none')",
            "'-'",
            "coalesce(source_channel, 'none')",
            "'-'",
            'cast(line_number as ' ~ dbt.type_string() ~ ')',
        ]) }} as marketing_spend_id,
        spend_month,
        source_channel,
        amount

    from numbered

)

select * from final
