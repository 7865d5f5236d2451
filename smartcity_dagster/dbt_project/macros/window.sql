{# The hour window a run rebuilds: [window_start, window_end), passed by Dagster as dbt vars. #}
{% macro in_window(column) -%}
    {{ column }} >= timestamp '{{ var("window_start") }}' and {{ column }} < timestamp '{{ var("window_end") }}'
{%- endmacro %}

{# Incremental models replace their window: delete it first, then the model's select appends it again. #}
{% macro delete_window() -%}
    {% if is_incremental() %}delete from {{ this }} where {{ in_window('hour_start') }}{% endif %}
{%- endmacro %}

{# Engines on the Glue catalog build in the platform's database (one per environment); DuckDB builds in the custom
   schema as it is (gold), not <target schema>_gold. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ target.schema if target.type in ('athena', 'trino') or not custom_schema_name else custom_schema_name }}
{%- endmacro %}

{# On the Glue catalog a model's build table is gold_build_<model>, beside the gold_<model> table the gold step
   registers from the published hours. #}
{% macro generate_alias_name(custom_alias_name=none, node=none) -%}
    {%- set name = custom_alias_name or node.name -%}
    {{ 'gold_build_' ~ name if target.type in ('athena', 'trino') and node.resource_type == 'model' else name }}
{%- endmacro %}
