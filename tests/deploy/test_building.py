"""The demo's simulated room: plausible, and answering its setpoint."""

from __future__ import annotations

from demo.building import DATAPOINTS, SETPOINT_MAX, SETPOINT_MIN, Building

START = 1_795_840_000_000
MINUTE = 60_000


def test_room_warms_toward_the_setpoint_and_the_meter_counts():
    building = Building(START, setpoint=22.0)
    meter = building.energy_kwh
    for minute in range(1, 31):
        building.advance(START + minute * MINUTE)
    assert 19.0 < building.room_temperature <= 22.5
    assert building.energy_kwh > meter


def test_no_heating_above_the_setpoint():
    building = Building(START, setpoint=15.0)
    building.advance(START + MINUTE)
    assert building.power_w == 0.0


def test_setpoint_is_clamped():
    building = Building(START)
    assert building.set_setpoint(99) == SETPOINT_MAX
    assert building.set_setpoint(-5) == SETPOINT_MIN
    assert building.set_setpoint(21.5) == 21.5


def test_every_sensor_has_a_value_and_the_actuator_has_limits():
    building = Building(START)
    sensors = {d.key for d in DATAPOINTS if d.type == "sensor"}
    assert set(building.sensor_values(START)) == sensors
    (actuator,) = [d for d in DATAPOINTS if d.type == "actuator"]
    assert (actuator.min_value, actuator.max_value) == (SETPOINT_MIN, SETPOINT_MAX)
