{#
  test grain_is_unique(model, columns)
  The key test for a composite grain (cohort month x month since first, month x from x to segment, …):
  one row per combination of `columns` that occurs more than once or has a null part. Portable: a
  group by, no string concatenation of dates and numbers.
  Arguments:
    columns: list of the column names that make up the grain.
#}
{% test grain_is_unique(model, columns) %}

select
    {{ columns | join(', ') }},
    count(*) as rows_with_key
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
    {%- for column in columns %}
    or {{ column }} is null
    {%- endfor %}

{% endtest %}


{#
  test sums_match(model, column_name, to, field, model_where=none, to_where=none, tolerance=0)
  Reconciliation: sum(column_name) over the model (optionally filtered) equals sum(field) over `to`
  (optionally filtered), within `tolerance`. An empty side counts as 0. One row when they differ.
  Arguments:
    column_name: column or expression summed in the model.
    to: the relation to reconcile with, e.g. ref('fct_payments').
    field: column or expression summed in `to` ('1' counts rows).
    model_where: optional SQL filter on the model.
    to_where: optional SQL filter on `to`.
    tolerance: allowed absolute difference (default 0: money must match to the kopeck).
#}
{% test sums_match(model, column_name, to, field, model_where=none, to_where=none, tolerance=0) %}

with

model_total as (

    select coalesce(sum({{ column_name }}), 0) as total
    from {{ model }}
    {% if model_where %}where {{ model_where }}{% endif %}

),

reference_total as (

    select coalesce(sum({{ field }}), 0) as total
    from {{ to }}
    {% if to_where %}where {{ to_where }}{% endif %}

)

select
    model_total.total as model_total,
    reference_total.total as reference_total
from model_total
cross join reference_total
where abs(model_total.total - reference_total.total) > {{ tolerance }}

{% endtest %}


{#
  test value_in_range(model, column_name, min_value=none, max_value=none)
  Fails for every non-null value below min_value or above max_value (both inclusive; leave one out for
  an open range). Meant for plausibility checks at severity warn and for score ranges at error.
  Arguments:
    min_value: lowest accepted value (a SQL literal), or none.
    max_value: highest accepted value (a SQL literal), or none.
#}
{% test value_in_range(model, column_name, min_value=none, max_value=none) %}

select {{ column_name }} as out_of_range_value
from {{ model }}
where {{ column_name }} is not null
    and (
        1 = 0
        {% if min_value is not none %} or {{ column_name }} < {{ min_value }}{% endif %}
        {% if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %}
    )

{% endtest %}
