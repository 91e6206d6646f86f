{#-
  One row per person (a human, possibly with several MIS cards) as of the as-of date: contact details,
  visit and payment facts, plans, acquisition channel, lifecycle status and whether they may be called
  or messaged. dim_patients is a view of it; the intermediates that need person facts read this model.
-#}
with

persons as (

    select * from {{ ref('int_patients_resolved_to_persons') }}

),

patients as (

    select * from {{ ref('stg_mis__patients') }}

),

visits as (

    select * from {{ ref('int_visits_sequenced') }}

),

payments as (

    select * from {{ ref('int_payments_resolved') }}

),

plans as (

    select * from {{ ref('stg_mis__treatment_plans') }}

),

source_channels as (

    select * from {{ ref('int_source_channels_mapped') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

cards as (

    select
        persons.person_id,
        patients.*,
        -- the card whose name and phone the person is shown with: a valid phone first, then the newest
        row_number() over (
            partition by persons.person_id
            order by
                case when patients.has_valid_phone then 0 else 1 end,
                coalesce(patients.created_at, cast('1900-01-01' as {{ dbt.type_timestamp() }})) desc,
                patients.patient_id desc
        ) as display_rank,
        -- the card the person first came with decides the acquisition channel
        row_number() over (
            partition by persons.person_id
            order by
                coalesce(patients.created_at, cast('2999-12-31' as {{ dbt.type_timestamp() }})),
                patients.patient_id
        ) as first_card_rank
    from persons
    inner join patients
        on persons.patient_id = patients.patient_id

),

person_cards as (

    select
        person_id,
        {{ patient_base.ordered_list('patient_id', 'patient_id') }} as patient_ids,
        count(*) as cards,
        {{ dbt.bool_or('do_not_call') }} as do_not_call,
        {{ dbt.bool_or('do_not_message') }} as do_not_message,
        {{ dbt.bool_or('is_deceased') }} as is_deceased,
        max(email) as email,
        min(created_at) as first_card_created_at
    from cards
    group by person_id

),

display_card as (

    select
        person_id,
        display_name,
        phone_e164,
        has_valid_phone,
        sex,
        birth_date,
        branch_id
    from cards
    where display_rank = 1

),

first_card as (

    select
        cards.person_id,
        cards.source_channel as acquisition_source,
        coalesce(source_channels.channel, 'unknown') as acquisition_channel
    from cards
    left join source_channels
        on cards.source_channel = source_channels.source_channel
    where cards.first_card_rank = 1

),

visit_facts as (

    select
        person_id,
        min(case when is_completed then visit_at end) as first_visit_at,
        max(case when is_completed then visit_at end) as last_visit_at,
        count(case when is_completed then 1 end) as completed_visits,
        count(case when status = 'no_show' then 1 end) as no_shows,
        count(case when status = 'cancelled' then 1 end) as cancellations,
        min(case when is_future then visit_at end) as next_scheduled_at,
        count(distinct case when is_completed then specialty end) as specialties_used,
        max(case when is_primary then specialty end) as first_specialty,
        max(case when is_primary then branch_id end) as first_branch_id
    from visits
    where person_id is not null
    group by person_id

),

payment_facts as (

    select
        person_id,
        sum(amount) as total_revenue,
        -sum(case when is_refund then amount else 0 end) as refunded_amount
    from payments
    where person_id is not null
    group by person_id

),

plans_as_of as (

    select
        persons.person_id,
        plans.plan_id,
        plans.status,
        plans.total_amount,
        plans.created_date,
        row_number() over (
            partition by persons.person_id order by plans.created_at desc, plans.plan_id desc
        ) as recency_rank
    from plans
    cross join as_of
    inner join persons
        on plans.patient_id = persons.patient_id
    where plans.created_date < as_of.as_of_date

),

plan_facts as (

    select
        person_id,
        sum(
            case when status in ('proposed', 'accepted', 'in_progress') then total_amount else 0 end
        ) as open_plan_amount,
        max(case when status in ('accepted', 'in_progress') then 1 else 0 end) = 1 as has_active_plan,
        max(case when recency_rank = 1 then status end) as latest_plan_status,
        max(case when recency_rank = 1 then created_date end) as latest_plan_date
    from plans_as_of
    group by person_id

),

joined as (

    select
        person_cards.person_id,
        person_cards.patient_ids,
        person_cards.cards,
        display_card.display_name,
        display_card.phone_e164,
        display_card.has_valid_phone,
        person_cards.email,
        display_card.sex,
        cast(floor({{ dbt.datediff('display_card.birth_date', 'as_of.as_of_date', 'day') }} / 365.25) as {{ dbt.type_int() }}) as age_years,
        coalesce(visit_facts.first_branch_id, display_card.branch_id) as branch_id,
        person_cards.first_card_created_at,
        visit_facts.first_visit_at,
        visit_facts.last_visit_at,
        cast(visit_facts.first_visit_at as date) as first_visit_date,
        cast(visit_facts.last_visit_at as date) as last_visit_date,
        coalesce(visit_facts.completed_visits, 0) as completed_visits,
        coalesce(visit_facts.no_shows, 0) as no_shows,
        coalesce(visit_facts.cancellations, 0) as cancellations,
        coalesce(visit_facts.specialties_used, 0) as specialties_used,
        coalesce(payment_facts.total_revenue, 0) as total_revenue,
        coalesce(payment_facts.refunded_amount, 0) as refunded_amount,
        first_card.acquisition_channel,
        first_card.acquisition_source,
        visit_facts.first_specialty,
        visit_facts.next_scheduled_at,
        coalesce(plan_facts.open_plan_amount, 0) as open_plan_amount,
        coalesce(plan_facts.has_active_plan, false) as has_active_plan,
        plan_facts.latest_plan_status,
        plan_facts.latest_plan_date,
        person_cards.do_not_call,
        person_cards.do_not_message,
        person_cards.is_deceased,
        as_of.as_of_date
    from person_cards
    cross join as_of
    inner join display_card
        on person_cards.person_id = display_card.person_id
    inner join first_card
        on person_cards.person_id = first_card.person_id
    left join visit_facts
        on person_cards.person_id = visit_facts.person_id
    left join payment_facts
        on person_cards.person_id = payment_facts.person_id
    left join plan_facts
        on person_cards.person_id = plan_facts.person_id

),

measured as (

    select
        *,
        {{ dbt.datediff('first_visit_date', 'last_visit_date', 'day') }} as tenure_days,
        {{ dbt.datediff('last_visit_date', 'as_of_date', 'day') }} as days_since_last_visit,
        {{ dbt.datediff('first_visit_date', 'as_of_date', 'day') }} as days_since_first_visit,
        case
            when completed_visits > 0 then cast({{ patient_base.exact_quotient('total_revenue', 'completed_visits') }} as {{ patient_base.type_money() }})
        end as avg_check
    from joined

),

final as (

    select
        person_id,
        patient_ids,
        cards,
        display_name,
        phone_e164,
        email,
        sex,
        age_years,
        branch_id,
        first_card_created_at,
        first_visit_at,
        last_visit_at,
        cast({{ dbt.date_trunc('month', 'first_visit_date') }} as date) as cohort_month,
        completed_visits,
        no_shows,
        cancellations,
        specialties_used,
        total_revenue,
        refunded_amount,
        avg_check,
        tenure_days,
        days_since_last_visit,
        acquisition_channel,
        acquisition_source,
        first_specialty,
        next_scheduled_at,
        open_plan_amount,
        has_active_plan,
        latest_plan_status,
        case
            when is_deceased then 'deceased'
            when completed_visits = 0 and next_scheduled_at is null and no_shows + cancellations > 0
                then 'no_show_first'
            when completed_visits = 0 and next_scheduled_at is null then 'no_visits'
            when completed_visits > 0
                and latest_plan_status in ('proposed', 'declined')
                and {{ dbt.datediff('latest_plan_date', 'as_of_date', 'day') }} <= {{ var('declined_plan_days') }}
                then 'declined_plan'
            when has_active_plan or next_scheduled_at is not null then 'in_treatment'
            when days_since_first_visit <= {{ var('new_days') }} then 'new'
            when days_since_last_visit <= {{ var('sleeping_days') }} then 'active'
            when days_since_last_visit <= {{ var('lost_days') }} then 'sleeping'
            else 'lost'
        end as lifecycle_status,
        has_valid_phone and not do_not_call and not is_deceased as can_call,
        (has_valid_phone or email is not null) and not do_not_message and not is_deceased as can_message,
        do_not_call,
        do_not_message,
        is_deceased,
        as_of_date
    from measured

)

select * from final
