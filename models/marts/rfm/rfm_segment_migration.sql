with

monthly as (

    select * from {{ ref('int_persons_rfm_monthly') }}

),

transitions as (

    select
        month,
        coalesce(previous_segment, 'new_entry') as from_segment,
        segment as to_segment
    from monthly

),

final as (

    select
        month,
        from_segment,
        to_segment,
        cast(count(*) as {{ dbt.type_int() }}) as patients,
        from_segment <> to_segment as is_segment_change
    from transitions
    group by month, from_segment, to_segment

)

select * from final
