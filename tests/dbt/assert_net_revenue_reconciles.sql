-- Net revenue must be the same in the staged payments (before the as-of date), fct_payments and
-- dim_patients (plus payments whose card is unknown, which have no person).
{{ config(severity='error') }}

with

as_of as (

    select * from {{ ref('int_as_of_date') }}

),

staged as (

    select coalesce(sum(amount), 0) as revenue
    from {{ ref('stg_mis__payments') }}
    cross join as_of
    where paid_date < as_of.as_of_date

),

facts as (

    select
        coalesce(sum(amount), 0) as revenue,
        coalesce(sum(case when person_id is null then amount else 0 end), 0) as orphan_revenue
    from {{ ref('fct_payments') }}

),

persons as (

    select coalesce(sum(total_revenue), 0) as revenue
    from {{ ref('dim_patients') }}

)

select
    staged.revenue as staged_revenue,
    facts.revenue as fct_payments_revenue,
    persons.revenue + facts.orphan_revenue as dim_patients_revenue
from staged
cross join facts
cross join persons
where staged.revenue <> facts.revenue
    or staged.revenue <> persons.revenue + facts.orphan_revenue
