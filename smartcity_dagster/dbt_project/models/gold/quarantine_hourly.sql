-- Records the stream quarantined, per ingest hour, stream and reason: bad input is counted, never dropped
-- silently. The hour is the ingest hour (a malformed record may have no event time), as in the quarantine zone.
{% set streams = ['vehicle', 'gps', 'traffic', 'weather', 'emergency'] %}
{% for stream in streams %}
select
    {{ hour_of('ingest_time') }} as hour_start,
    '{{ stream }}' as stream,
    reason,
    cast(count(*) as bigint) as records,
    cast(max(ingest_time) as timestamp) as last_ingest_time
from {{ source('quarantine', stream) }}
where {{ in_window(hour_of('ingest_time')) }}
group by {{ hour_of('ingest_time') }}, reason
{% if not loop.last %}union all{% endif %}
{% endfor %}
