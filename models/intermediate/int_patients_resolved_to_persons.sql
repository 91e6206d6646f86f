{#-
  One row per patient card with the person (human) it belongs to.

  Two cards are the same person when they share (normalised phone AND birth date) or (e-mail AND
  last + first name). A shared family phone alone never merges: the birth dates differ. Matches are
  transitive (A~B by phone, B~C by e-mail => one person), found by label propagation: each round every
  card takes the smallest label among the cards it matches and among the cards that shared its label,
  so chains shrink geometrically; `person_match_rounds` rounds join chains of up to 2^rounds cards.
  The singular test `assert_person_resolution_converged` fails if any match group still has two labels.
  person_id is the smallest patient_id of the person's cards.
  Only cards that share a key with another card can join anyone: the rounds run on those alone (a few
  percent of a real base), and every other card is its own person, so a network's million cards cost
  two windows, not three per round.
-#}
{%- set rounds = var('person_match_rounds', 6) | int -%}

with

patients as (

    select * from {{ ref('stg_mis__patients') }}

),

match_keys as (

    select
        patient_id,
        case
            when phone_e164 is not null and birth_date is not null
                then {{ dbt.concat(['phone_e164', "'|'", 'cast(birth_date as ' ~ dbt.type_string() ~ ')']) }}
        end as phone_birth_key,
        case
            when email is not null and last_name is not null and first_name is not null
                then {{ dbt.concat([
                    'email', "'|'",
                    "replace(lower(last_name), 'ё', 'е')", "' '",
                    "replace(lower(first_name), 'ё', 'е')",
                ]) }}
        end as email_name_key
    from patients

),

key_sharing as (

    select
        patient_id,
        phone_birth_key,
        email_name_key,
        case
            when phone_birth_key is not null then count(*) over (partition by phone_birth_key) else 1
        end as cards_with_phone_birth_key,
        case
            when email_name_key is not null then count(*) over (partition by email_name_key) else 1
        end as cards_with_email_name_key
    from match_keys

),

-- cards that share no key with any other card: each is a person of its own
single_cards as (

    select
        patient_id,
        phone_birth_key,
        email_name_key
    from key_sharing
    where cards_with_phone_birth_key = 1 and cards_with_email_name_key = 1

),

round_0 as (

    select
        patient_id,
        phone_birth_key,
        email_name_key,
        patient_id as label
    from key_sharing
    where cards_with_phone_birth_key > 1 or cards_with_email_name_key > 1

),
{% for i in range(1, rounds + 1) %}
round_{{ i }}_hooked as (

    select
        patient_id,
        phone_birth_key,
        email_name_key,
        label as previous_label,
        least(
            label,
            case when phone_birth_key is not null then min(label) over (partition by phone_birth_key) else label end,
            case when email_name_key is not null then min(label) over (partition by email_name_key) else label end
        ) as hooked_label
    from round_{{ i - 1 }}

),

round_{{ i }} as (

    select
        patient_id,
        phone_birth_key,
        email_name_key,
        min(hooked_label) over (partition by previous_label) as label
    from round_{{ i }}_hooked

),
{% endfor %}
resolved as (

    select
        round_{{ rounds }}.patient_id,
        round_{{ rounds }}.label as person_id,
        round_{{ rounds }}.phone_birth_key,
        round_{{ rounds }}.email_name_key
    from round_{{ rounds }}

),

final as (

    select
        resolved.person_id,
        resolved.patient_id,
        case
            when resolved.patient_id = resolved.person_id then 'self'
            when resolved.phone_birth_key is not null
                and count(*) over (partition by resolved.person_id, resolved.phone_birth_key) > 1
                then 'phone_birth_date'
            else 'email_name'
        end as match_rule,
        count(*) over (partition by resolved.person_id) as cards_in_person,
        resolved.phone_birth_key,
        resolved.email_name_key
    from resolved

    union all

    select
        patient_id as person_id,
        patient_id,
        'self' as match_rule,
        1 as cards_in_person,
        phone_birth_key,
        email_name_key
    from single_cards

)

select * from final
