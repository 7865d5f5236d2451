-- Traffic per camera and hour: vehicles seen, mean speed, and how congested the hour was.
select
    hour_start,
    camera_id,
    {{ any_value('zone') }} as zone,
    {{ any_value('latitude') }} as latitude,
    {{ any_value('longitude') }} as longitude,
    count(*) as reports,
    cast(sum(vehicle_count) as bigint) as vehicles_seen,
    avg(vehicle_count) as mean_vehicle_count,
    avg(mean_speed_kmh) as mean_speed_kmh,
    -- the worst level reported in the hour (deterministic, unlike the most frequent one on ties)
    {%- set levels = ['free', 'moderate', 'heavy', 'severe'] %}
    case max(case congestion_level {% for level in levels %}when '{{ level }}' then {{ loop.index }} {% endfor %}end)
        {% for level in levels %}when {{ loop.index }} then '{{ level }}' {% endfor %}
    end as peak_congestion_level,
    -- a double on every engine: Trino averages a decimal literal as a decimal of the same scale (0.1 steps)
    avg(cast(case when congestion_level in ('heavy', 'severe') then 1 else 0 end as double)) as congested_share
from {{ source('processed', 'traffic') }}
where {{ in_window('hour_start') }}
group by hour_start, camera_id
