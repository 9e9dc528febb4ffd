"""The simulated building: a heated room, the weather, a heat pump and an energy meter.

Pure state and arithmetic, no MQTT: the connector reads sensor values from it and hands it the
actuator's setpoint. Time is passed in (ms) so the simulation is deterministic under test.
"""

from __future__ import annotations

import math

import msgspec

SETPOINT_MIN = 10.0
SETPOINT_MAX = 30.0


class DatapointInfo(msgspec.Struct, frozen=True):
    """What the connector announces about one datapoint, and how the launcher describes it."""

    key: str
    type: str  # "sensor" or "actuator"
    unit: str
    description: str
    data_format: str = "continuous_numeric"
    min_value: float | None = None
    max_value: float | None = None


DATAPOINTS: tuple[DatapointInfo, ...] = (
    DatapointInfo("outside_temperature", "sensor", "°C", "Outside air temperature"),
    DatapointInfo("room_temperature", "sensor", "°C", "Temperature of the living room"),
    DatapointInfo("heat_pump_power", "sensor", "W", "Electric power of the heat pump"),
    DatapointInfo("energy_meter", "sensor", "kWh", "Electricity meter reading"),
    DatapointInfo("room_setpoint_state", "sensor", "°C", "Setpoint the thermostat holds now"),
    DatapointInfo(
        "room_setpoint",
        "actuator",
        "°C",
        "Thermostat setpoint (write a value to change it)",
        min_value=SETPOINT_MIN,
        max_value=SETPOINT_MAX,
    ),
)

SENSOR_KEYS = tuple(d.key for d in DATAPOINTS if d.type == "sensor")
ACTUATOR_KEYS = tuple(d.key for d in DATAPOINTS if d.type == "actuator")


class Building:
    """A first-order room model: it drifts toward the setpoint while the heat pump runs."""

    def __init__(self, now_ms: int, setpoint: float = 21.0) -> None:
        self.setpoint = setpoint
        self.room_temperature = 19.0
        self.energy_kwh = 1234.5
        self.power_w = 0.0
        self._last_ms = now_ms

    def outside_temperature(self, now_ms: int) -> float:
        # One cycle a day around 5 °C, so a newcomer sees it move over an afternoon.
        day_fraction = (now_ms / 86_400_000) % 1.0
        return round(5.0 + 4.0 * math.sin(2 * math.pi * (day_fraction - 0.375)), 2)

    def set_setpoint(self, value: float) -> float:
        """Apply an actuator value, clamped to what the thermostat accepts; return it."""
        self.setpoint = min(SETPOINT_MAX, max(SETPOINT_MIN, value))
        return self.setpoint

    def advance(self, now_ms: int) -> None:
        hours = max(0, now_ms - self._last_ms) / 3_600_000
        self._last_ms = now_ms
        gap = self.setpoint - self.room_temperature
        self.power_w = round(min(3000.0, max(0.0, gap * 1500.0)), 1)
        # Simulated time runs 60x faster than the wall clock, so a setpoint change shows.
        sim_hours = hours * 60
        heating = self.power_w / 3000.0 * 2.0 * sim_hours
        loss = (self.room_temperature - self.outside_temperature(now_ms)) * 0.05 * sim_hours
        self.room_temperature = round(self.room_temperature + heating - loss, 3)
        self.energy_kwh = round(self.energy_kwh + self.power_w / 1000.0 * hours, 6)

    def sensor_values(self, now_ms: int) -> dict[str, float]:
        return {
            "outside_temperature": self.outside_temperature(now_ms),
            "room_temperature": self.room_temperature,
            "heat_pump_power": self.power_w,
            "energy_meter": self.energy_kwh,
            "room_setpoint_state": self.setpoint,
        }

    def examples(self, now_ms: int) -> dict[str, dict[str, float]]:
        """The example values of the available datapoints message."""
        return {
            "sensor": self.sensor_values(now_ms),
            "actuator": {key: self.setpoint for key in ACTUATOR_KEYS},
        }
