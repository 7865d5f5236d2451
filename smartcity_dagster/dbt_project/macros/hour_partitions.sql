{#- Gold on Athena and Trino: each run writes its window's rows as a fresh Parquet table, partitioned by hour, at a
    location of its own under the lake's staging prefix (var build_location, then the dbt invocation). The gold
    step then publishes each hour's files into gold/<model>/ as a new version of the hour, so readers of gold never
    see an hour half rebuilt, which Athena's insert_overwrite (delete the hour's objects, then write) would show.
    One SQL text for both: Athena's CTAS properties are the Hive connector's. -#}
{% materialization hour_partitions, default %}
  {%- set target_relation = this.incorporate(type='table') -%}
  {%- set location = var('build_location') ~ '/' ~ invocation_id ~ '/' ~ this.identifier -%}
  {{ drop_relation_if_exists(load_cached_relation(this)) }}
  {{ run_hooks(pre_hooks) }}
  {% call statement('main') -%}
    create table {{ target_relation }}
    with (format = 'PARQUET', external_location = '{{ location }}', partitioned_by = array['event_date', 'event_hour'])
    as select built.*, date_format(built.hour_start, '%Y-%m-%d') as event_date,
              date_format(built.hour_start, '%H') as event_hour
    from ({{ sql }}) as built
  {%- endcall %}
  {{ run_hooks(post_hooks) }}
  {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
