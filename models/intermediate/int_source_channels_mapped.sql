{#- One row per acquisition-source name the clinic's MIS uses (on patient cards or in marketing
    spend), with the canonical channel from the editable seed `channel_map` (matched trimmed and
    case-insensitively); a name missing from the seed maps to 'other'. A card or spend line with no
    source at all finds no row here: consumers call it 'unknown'. -#}
with

patients as (

    select * from {{ ref('stg_mis__patients') }}

),

marketing_spend as (

    select * from {{ ref('stg_mis__marketing_spend') }}

),

channel_map as (

    select * from {{ ref('channel_map') }}

),

source_names as (

    select source_channel
    from patients
    where source_channel is not null
    union
    select source_channel
    from marketing_spend
    where source_channel is not null

),

final as (

    select
        source_names.source_channel,
        coalesce(min(channel_map.channel), 'other') as channel
    from source_names
    left join channel_map
        on lower(source_names.source_channel) = lower(trim(channel_map.source_channel))
    group by source_names.source_channel

)

select * from final
