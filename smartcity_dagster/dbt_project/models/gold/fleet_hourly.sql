-- Fleet statistics per hour: vehicles reporting, speed, distance driven and the fuel-type mix.
with per_vehicle as (
    select
        hour_start,
        device_id,
        {{ any_value('fuel_type') }} as fuel_type,
        count(*) as events,
        sum(speed_kmh) as speed_sum,
        max(speed_kmh) as max_speed_kmh,
        max(odometer_km) - min(odometer_km) as distance_km
    from {{ source('processed', 'vehicle') }}
    where {{ in_window('hour_start') }}
    group by hour_start, device_id
)

select
    hour_start,
    count(*) as vehicles_reporting,
    cast(sum(events) as bigint) as events,
    sum(speed_sum) / sum(events) as mean_speed_kmh,
    max(max_speed_kmh) as max_speed_kmh,
    sum(distance_km) as distance_km,
    count(*) filter (where fuel_type = 'petrol') as petrol_vehicles,
    count(*) filter (where fuel_type = 'diesel') as diesel_vehicles,
    count(*) filter (where fuel_type = 'hybrid') as hybrid_vehicles,
    count(*) filter (where fuel_type = 'electric') as electric_vehicles
from per_vehicle
group by hour_start
