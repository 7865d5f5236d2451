-- Every lifecycle event of every emergency incident, with its position: the dashboard derives open incidents
-- (latest status not "resolved") and times to resolve from it across hours.
select
    hour_start,
    incident_id,
    event_id,
    event_time,
    status,
    incident_type,
    severity,
    latitude,
    longitude,
    zone,
    incident_duration_s,
    description
from {{ source('processed', 'emergency') }}
where {{ in_window('hour_start') }}
