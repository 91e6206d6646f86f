-- Every group of matching cards (same phone + birth date, or same e-mail + name) must end up as one
-- person. Rows returned here mean person_match_rounds was too small for a chain of duplicate cards.
{{ config(severity='error') }}

with

persons as (

    select * from {{ ref('int_patients_resolved_to_persons') }}

),

groups as (

    select 'phone_birth_date' as match_rule, phone_birth_key as match_key, count(distinct person_id) as persons
    from persons
    where phone_birth_key is not null
    group by phone_birth_key

    union all

    select 'email_name' as match_rule, email_name_key as match_key, count(distinct person_id) as persons
    from persons
    where email_name_key is not null
    group by email_name_key

)

select * from groups where persons > 1
