-- Emergency incidents per hour, type and severity: lifecycle events in the hour, incidents still open at the
-- hour's end (reported before it, not resolved before it), and the time to resolve those resolved in the hour.
with hours as (
    select distinct hour_start from {{ source('processed', 'emergency') }} where {{ in_window('hour_start') }}
),

lifecycle as (
    select
        incident_id,
        {{ any_value('incident_type') }} as incident_type,
        {{ any_value('severity') }} as severity,
        min(event_time) filter (where status = 'reported') as reported_at,
        min(event_time) filter (where status = 'resolved') as resolved_at
    from {{ source('processed', 'emergency') }}
    where event_time < timestamp '{{ var("window_end") }}'
    group by incident_id
),

open_at_end as (
    select hours.hour_start, incident_type, severity, count(*) as open_incidents
    from hours
    join lifecycle
        on lifecycle.reported_at < hours.hour_start + interval '1' hour
        and (lifecycle.resolved_at is null or lifecycle.resolved_at >= hours.hour_start + interval '1' hour)
    group by hours.hour_start, incident_type, severity
),

in_hour as (
    select
        hour_start,
        incident_type,
        severity,
        count(*) filter (where status = 'reported') as reported,
        count(*) filter (where status = 'dispatched') as dispatched,
        count(*) filter (where status = 'resolved') as resolved,
        avg(incident_duration_s) filter (where status = 'resolved') as mean_time_to_resolve_s,
        max(incident_duration_s) filter (where status = 'resolved') as max_time_to_resolve_s
    from {{ source('processed', 'emergency') }}
    where {{ in_window('hour_start') }}
    group by hour_start, incident_type, severity
)

select
    coalesce(in_hour.hour_start, open_at_end.hour_start) as hour_start,
    coalesce(in_hour.incident_type, open_at_end.incident_type) as incident_type,
    coalesce(in_hour.severity, open_at_end.severity) as severity,
    coalesce(in_hour.reported, 0) as reported,
    coalesce(in_hour.dispatched, 0) as dispatched,
    coalesce(in_hour.resolved, 0) as resolved,
    coalesce(open_at_end.open_incidents, 0) as open_at_hour_end,
    in_hour.mean_time_to_resolve_s,
    in_hour.max_time_to_resolve_s
from in_hour
full outer join open_at_end
    on in_hour.hour_start = open_at_end.hour_start
    and in_hour.incident_type = open_at_end.incident_type
    and in_hour.severity = open_at_end.severity
