{# SQL that differs between DuckDB (the local engine) and Athena's engine (Trino): one dispatched macro each, so
   every model is written once. Everything else in the models is SQL both engines take as it is. #}

{# Any one value of the group (the models use it on columns constant per group). #}
{% macro any_value(column) -%}{{ return(adapter.dispatch('any_value', 'smartcity')(column)) }}{%- endmacro %}
{% macro default__any_value(column) -%}any_value({{ column }}){%- endmacro %}
{% macro trino__any_value(column) -%}arbitrary({{ column }}){%- endmacro %}
{% macro athena__any_value(column) -%}arbitrary({{ column }}){%- endmacro %}

{# The hour of a timestamp, as a timestamp without zone (the models' hour_start). #}
{% macro hour_of(column) -%}cast(date_trunc('hour', {{ column }}) as timestamp){%- endmacro %}
