-- Records the stream quarantined, per ingest hour, stream and reason: bad input is counted, never dropped
-- silently. The hour is the ingest hour (a malformed record may have no event time), as in the quarantine zone.
{% set streams = ['vehicle', 'gps', 'traffic', 'weather', 'emergency'] %}
{% for stream in streams %}
select
    date_trunc('hour', ingest_time)::timestamp as hour_start,
    '{{ stream }}' as stream,
    reason,
    count(*)::bigint as records,
    max(ingest_time)::timestamp as last_ingest_time
from {{ source('quarantine', stream) }}
where {{ in_window("date_trunc('hour', ingest_time)::timestamp") }}
group by all
{% if not loop.last %}union all{% endif %}
{% endfor %}
