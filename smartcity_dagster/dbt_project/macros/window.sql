{# The hour window a run rebuilds: [window_start, window_end), passed by Dagster as dbt vars. #}
{% macro in_window(column) -%}
    {{ column }} >= timestamp '{{ var("window_start") }}' and {{ column }} < timestamp '{{ var("window_end") }}'
{%- endmacro %}

{# Incremental models replace their window: delete it first, then the model's select appends it again. #}
{% macro delete_window() -%}
    {% if is_incremental() %}delete from {{ this }} where {{ in_window('hour_start') }}{% endif %}
{%- endmacro %}

{# Use the custom schema name as is (gold), not <target schema>_gold. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name if custom_schema_name else target.schema }}
{%- endmacro %}
