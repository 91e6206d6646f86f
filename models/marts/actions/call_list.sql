{#-
  The day's call list, exactly as `patientbase export call-list` writes it: one row per phone to call,
  assigned to an administrator's slot. Capacity, family grouping and assignment live here, so a BI
  tool, the export and the report see the same list.

  - Who is eligible, the control group held out, the quotas, the ranking and which phones fit the
    capacity come from int_call_list_ranked (call arm only; list date = var `call_list_date`, default
    the as-of date). Family members sharing a phone become one row that ranks as its most urgent member.
  - Capacity = administrators (var `call_list_admins`) x var `calls_per_admin`.
  - A row whose last caller works today stays with them, up to that administrator's capacity; every
    other row takes the next free slot, administrators in turn.
  - One language per list (var `language`): action names, offers and specialty names (seed
    specialty_labels) in it, and reasons worded from their templates as of the list date, so "172 days
    ago" on the as-of date reads "174 days ago" on a list two days later.
-#}
{%- set admins = patient_base.call_list_admins() -%}
{%- set per_admin = var('calls_per_admin', 50) | int -%}
{%- set capacity = admins | length * per_admin -%}
{%- set list_date = var('call_list_date', none) -%}
{%- set language = patient_base.text_language() -%}

with

ranked as (

    select * from {{ ref('int_call_list_ranked') }}

),

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

specialty_labels as (

    select
        lower(trim(specialty)) as specialty_code,
        label_{{ language }} as specialty_label
    from {{ ref('specialty_labels') }}

),

settings as (

    select
        as_of_date,
        {% if list_date -%}
        cast('{{ list_date }}' as date)
        {%- else -%}
        as_of_date
        {%- endif %} as list_date
    from as_of

),

administrators as (

    {% for name in admins -%}
    select
        cast({{ loop.index }} as {{ dbt.type_int() }}) as admin_no,
        cast({{ patient_base.sql_string(name) }} as {{ dbt.type_string() }}) as administrator
    {% if not loop.last %}union all
    {% endif -%}
    {%- endfor %}

),

slot_numbers as (

    select cast(generated_number as {{ dbt.type_int() }}) as slot
    from ({{ dbt.generate_series(per_admin) }}) as series

),

-- the call-arm persons on the phones that fit the capacity (controls never are)
people as (

    select
        *,
        count(*) over (partition by phone_e164) as persons_on_phone,
        action_label_{{ language }} as action_text,
        {{ patient_base.reason_on('reason_template_' ~ language, 'reason_counted_from', 'list_date') }} as reason_text,
        offer_{{ language }} as offer_text
    from ranked
    where is_listed

),

people_labelled as (

    select
        *,
        case when persons_on_phone > 1 then display_name || ': ' else '' end as name_prefix
    from people

),

-- the administrator who called the family last keeps it
last_callers as (

    select
        phone_e164,
        last_operator_id
    from (
        select
            phone_e164,
            last_operator_id,
            row_number() over (
                partition by phone_e164
                order by
                    case when last_call_at is null then 1 else 0 end asc,
                    last_call_at desc,
                    person_rank asc
            ) as caller_rank
        from people
    ) as callers
    where caller_rank = 1

),

-- a family row is about its most urgent member's action
lead_actions as (

    select
        phone_e164,
        action_code
    from (
        select
            phone_e164,
            action_code,
            row_number() over (partition by phone_e164 order by person_rank) as member_rank
        from people
    ) as members
    where member_rank = 1

),

phone_doctors as (

    select distinct
        phone_e164,
        last_doctor_id
    from people
    where last_doctor_id is not null

),

phone_specialties as (

    select distinct
        people.phone_e164,
        coalesce(specialty_labels.specialty_label, people.last_specialty) as specialty
    from people
    left join specialty_labels
        on lower(trim(people.last_specialty)) = specialty_labels.specialty_code
    where people.last_specialty is not null

),

doctors as (

    select
        phone_e164,
        {{ patient_base.ordered_list('last_doctor_id', 'last_doctor_id', ', ') }} as doctors
    from phone_doctors
    group by phone_e164

),

specialties as (

    select
        phone_e164,
        {{ patient_base.ordered_list('specialty', 'specialty', ', ') }} as specialties
    from phone_specialties
    group by phone_e164

),

phones as (

    select
        phone_e164,
        min(list_rank) as list_rank,
        count(*) as persons,
        {{ patient_base.ordered_list('display_name', 'person_rank', '; ') }} as patient_names,
        {{ patient_base.ordered_list('person_id', 'person_rank', ',') }} as person_ids,
        {{ patient_base.ordered_list('action_code', 'person_rank', ',') }} as action_codes,
        {{ patient_base.ordered_list("name_prefix || action_text", 'person_rank', '; ') }} as action_label,
        {{ patient_base.ordered_list("name_prefix || reason_text", 'person_rank', '; ') }} as reason,
        {{ patient_base.ordered_list("name_prefix || coalesce(offer_text, '')", 'person_rank', '; ') }} as offer,
        max(last_visit_date) as last_visit_date,
        min(priority) as priority,
        sum(expected_value) as expected_value
    from people_labelled
    group by phone_e164

),

-- rows whose last caller works today stay with them, up to that administrator's capacity
sticky as (

    select
        phones.list_rank,
        administrators.admin_no,
        row_number() over (partition by administrators.admin_no order by phones.list_rank) as sticky_slot
    from phones
    inner join last_callers
        on phones.phone_e164 = last_callers.phone_e164
    inner join administrators
        on last_callers.last_operator_id = administrators.administrator

),

kept as (

    select
        list_rank,
        admin_no
    from sticky
    where sticky_slot <= {{ per_admin }}

),

kept_per_admin as (

    select
        administrators.admin_no,
        count(kept.list_rank) as kept_rows
    from administrators
    left join kept
        on administrators.admin_no = kept.admin_no
    group by administrators.admin_no

),

-- every other row takes the next free slot, administrators in turn
free_slots as (

    select
        kept_per_admin.admin_no,
        row_number() over (order by slot_numbers.slot, kept_per_admin.admin_no) as free_order
    from kept_per_admin
    cross join slot_numbers
    where slot_numbers.slot <= {{ per_admin }} - kept_per_admin.kept_rows

),

rest as (

    select
        phones.list_rank,
        row_number() over (order by phones.list_rank) as free_order
    from phones
    left join kept
        on phones.list_rank = kept.list_rank
    where kept.list_rank is null

),

assigned as (

    select
        list_rank,
        admin_no
    from kept
    union all
    select
        rest.list_rank,
        free_slots.admin_no
    from rest
    inner join free_slots
        on rest.free_order = free_slots.free_order

),

final as (

    select
        settings.list_date,
        administrators.administrator,
        cast(
            row_number() over (partition by assigned.admin_no order by phones.list_rank)
            as {{ dbt.type_int() }}
        ) as slot,
        cast(phones.list_rank as {{ dbt.type_int() }}) as list_rank,
        {{ patient_base.list_row_id('settings.list_date', 'phones.list_rank') }} as list_row_id,
        {{ patient_base.national_phone('phones.phone_e164') }} as phone,
        phones.phone_e164,
        cast(phones.persons as {{ dbt.type_int() }}) as persons,
        phones.person_ids,
        phones.patient_names,
        lead_actions.action_code,
        phones.action_codes,
        phones.action_label,
        phones.reason,
        phones.offer,
        phones.last_visit_date,
        doctors.doctors,
        specialties.specialties,
        cast(phones.priority as {{ dbt.type_int() }}) as priority,
        cast(phones.expected_value as {{ patient_base.type_money() }}) as expected_value,
        cast({{ admins | length }} as {{ dbt.type_int() }}) as administrators_on_duty,
        cast({{ per_admin }} as {{ dbt.type_int() }}) as calls_per_admin,
        cast({{ capacity }} as {{ dbt.type_int() }}) as capacity,
        cast('{{ language }}' as {{ dbt.type_string() }}) as list_language,
        settings.as_of_date
    from phones
    inner join assigned
        on phones.list_rank = assigned.list_rank
    inner join administrators
        on assigned.admin_no = administrators.admin_no
    inner join lead_actions
        on phones.phone_e164 = lead_actions.phone_e164
    left join doctors
        on phones.phone_e164 = doctors.phone_e164
    left join specialties
        on phones.phone_e164 = specialties.phone_e164
    cross join settings

)

select * from final
