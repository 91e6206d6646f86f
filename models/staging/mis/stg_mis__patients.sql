with

source as (

    select * from {{ source('mis', 'patients') }}

),

cleaned as (

    select
        {{ clean_text('patient_id') }} as patient_id,
        {{ clean_text('last_name') }} as last_name,
        {{ clean_text('first_name') }} as first_name,
        {{ clean_text('middle_name') }} as middle_name,
        cast(birth_date as date) as birth_date,
        upper({{ clean_text('sex') }}) as sex_code,
        {{ clean_text('phone') }} as phone_raw,
        {{ clean_text('phone_e164') }} as phone_e164,
        {{ clean_code('phone_status') }} as phone_status_code,
        lower({{ clean_text('email') }}) as email_clean,
        {{ clean_text('branch_id') }} as branch_id,
        {{ clean_text('source_channel') }} as source_channel,
        {{ clean_text('referred_by_patient_id') }} as referred_by_patient_id,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        {{ clean_flag('do_not_call') }} as do_not_call,
        {{ clean_flag('do_not_message') }} as do_not_message,
        {{ clean_flag('is_deceased') }} as is_deceased,
        cast(loyalty_member_since as date) as loyalty_member_since

    from source

),

final as (

    select
        patient_id,
        last_name,
        first_name,
        middle_name,
        {{ join_words(['last_name', 'first_name', 'middle_name']) }} as display_name,
        birth_date,
        case when sex_code in ('F', 'M') then sex_code end as sex,
        phone_raw,
        phone_e164,
        -- the loader sets phone_status; fall back to what the columns imply if it did not
        coalesce(
            phone_status_code,
            case
                when phone_e164 is not null then 'valid'
                when phone_raw is null then 'empty'
                else 'invalid'
            end
        ) as phone_status,
        phone_e164 is not null as has_valid_phone,
        case when email_clean like '%@%' then email_clean end as email,
        branch_id,
        source_channel,
        referred_by_patient_id,
        created_at,
        do_not_call,
        do_not_message,
        is_deceased,
        loyalty_member_since

    from cleaned

)

select * from final
