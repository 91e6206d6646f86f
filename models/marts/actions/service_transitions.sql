{#-
  The next-best-offer statistics for BI: how often a visit with service category A is followed by a
  visit with category B within the window. Computed once in int_service_transitions, which the
  offer model reads too.
-#}
with

transitions as (

    select * from {{ ref('int_service_transitions') }}

),

final as (

    select
        from_category,
        to_category,
        from_label_en,
        from_label_ru,
        to_label_en,
        to_label_ru,
        is_same_category,
        window_days,
        from_visits,
        followed_visits,
        probability,
        as_of_date
    from transitions

)

select * from final
