-- Weather per station and hour: temperature range, precipitation, wind and the worst air quality.
select
    hour_start,
    device_id as station_id,
    {{ any_value('zone') }} as zone,
    {{ any_value('latitude') }} as latitude,
    {{ any_value('longitude') }} as longitude,
    count(*) as readings,
    min(temperature_c) as min_temperature_c,
    max(temperature_c) as max_temperature_c,
    avg(temperature_c) as mean_temperature_c,
    max(precipitation_mm) as max_precipitation_mm,
    avg(precipitation_mm) as mean_precipitation_mm,
    max(wind_speed_kmh) as max_wind_speed_kmh,
    avg(humidity_pct) as mean_humidity_pct,
    max(aqi) as worst_aqi,
    avg(aqi) as mean_aqi,
    max_by(condition, event_time) as last_condition
from {{ source('processed', 'weather') }}
where {{ in_window('hour_start') }}
group by hour_start, device_id
