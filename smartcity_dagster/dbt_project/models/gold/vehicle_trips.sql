-- Trip summary per vehicle and hour (a trip crossing an hour boundary has one row per hour): where it went,
-- how far and how fast, and where the vehicle was last seen.
select
    hour_start,
    device_id as vehicle_id,
    trip_id,
    {{ any_value('direction') }} as direction,
    {{ any_value('fuel_type') }} as fuel_type,
    {{ any_value('make') }} as make,
    {{ any_value('model') }} as model,
    count(*) as events,
    min(event_time) as first_seen,
    max(event_time) as last_seen,
    max(odometer_km) - min(odometer_km) as distance_km,
    avg(speed_kmh) as mean_speed_kmh,
    max(speed_kmh) as max_speed_kmh,
    min_by(latitude, event_time) as start_latitude,
    min_by(longitude, event_time) as start_longitude,
    max_by(latitude, event_time) as last_latitude,
    max_by(longitude, event_time) as last_longitude,
    max_by(zone, event_time) as last_zone
from {{ source('processed', 'vehicle') }}
where {{ in_window('hour_start') }}
group by hour_start, device_id, trip_id
