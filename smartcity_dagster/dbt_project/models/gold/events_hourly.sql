-- Events per stream and hour (after deduplication): volumes, devices reporting, and the newest event time,
-- which the dashboard shows as "data as of".
{% set streams = ['vehicle', 'gps', 'traffic', 'weather', 'emergency'] %}
{% for stream in streams %}
select
    hour_start,
    '{{ stream }}' as stream,
    cast(count(*) as bigint) as events,
    cast(count(distinct device_id) as bigint) as devices,
    max(event_time) as last_event_time
from {{ source('processed', stream) }}
where {{ in_window('hour_start') }}
group by hour_start
{% if not loop.last %}union all{% endif %}
{% endfor %}
