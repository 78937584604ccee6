"""The simulated fleet (streamvae.plant): its physics, its faults, its labels, its contract."""

from __future__ import annotations

import time

import numpy as np
import pytest

from streamvae.errors import ConfigError, InputError
from streamvae.plant import (
    ASSET_KINDS,
    FAULT_ASSETS,
    FAULT_KINDS,
    FLEET_CHANNELS,
    Asset,
    AssetFault,
    fault_applies,
)
from streamvae.types import Reading

DAY = 288  # 5-minute readings
STEPS = 3 * DAY


def ch(series, name):
    return series.channel(name)


def corr(a, b):
    return float(np.corrcoef(a, b)[0, 1])


def quiet(kind, seed=4):
    """Noise-free, so the coupling is visible exactly."""
    return Asset(kind, seed=seed, noise=0.0).generate(STEPS)


def with_and_without(kind, fault, seed=5):
    asset = Asset(kind, seed=seed)
    return asset.generate(STEPS, [fault]), asset.generate(STEPS)


# ---------------------------------------------------------------- the normal physics


@pytest.mark.parametrize("kind", ASSET_KINDS)
def test_every_kind_reports_the_same_six_channels(kind):
    series = Asset(kind, seed=1).generate(DAY)
    assert series.channels == FLEET_CHANNELS
    assert series.values.shape == (DAY, 6)
    assert np.isfinite(series.values).all()
    assert (series.values[:, FLEET_CHANNELS.index("vibration")] > 0).all()


def test_a_pump_follows_its_system_curve_and_the_affinity_laws():
    s = quiet("pump")
    flow, pressure, speed = ch(s, "flow"), ch(s, "pressure"), ch(s, "speed")
    design = np.vstack([flow**2, np.ones_like(flow)]).T  # p = p_static + k·Q²
    coef, *_ = np.linalg.lstsq(design, pressure, rcond=None)
    assert np.abs(design @ coef - pressure).max() < 1e-6
    assert corr(flow, speed) > 0.999  # flow ≈ ∝ speed
    slope = np.polyfit(np.log(speed), np.log(pressure), 1)[0]
    assert 1.4 < slope < 2.2  # pressure ≈ ∝ speed² (less the static head)
    assert corr(ch(s, "current"), flow) > 0.99  # the motor carries the hydraulic power


def test_a_fan_motor_follows_the_fan_laws():
    s = quiet("motor")
    flow, pressure, speed = ch(s, "flow"), ch(s, "pressure"), ch(s, "speed")
    ratio = flow / speed
    assert ratio.std() / ratio.mean() < 0.01  # airflow ∝ speed (a little motor slip)
    head = pressure / flow**2
    assert head.std() / head.mean() < 0.03  # static pressure ∝ flow², the air density aside
    assert corr(ch(s, "current"), flow) > 0.98


def test_a_compressor_current_and_slip_follow_its_loaded_share_and_the_plants_demand():
    s = quiet("compressor")
    current, flow, speed = ch(s, "current"), ch(s, "flow"), ch(s, "speed")
    assert corr(current, flow) > 0.9  # loaded share = demand / capacity, give or take a cycle
    assert corr(speed, current) < -0.99  # the motor slips more when loaded
    pressure = ch(s, "pressure")
    assert pressure.min() > 6.0  # inside the load/unload band
    assert pressure.max() < 7.7


@pytest.mark.parametrize("kind", ASSET_KINDS)
def test_the_bearing_temperature_lags_the_load(kind):
    s = quiet(kind)
    temperature, current = ch(s, "temperature"), ch(s, "current")
    lagged = [corr(current[: STEPS - lag], temperature[lag:]) for lag in range(24)]
    assert int(np.argmax(lagged)) >= 3  # at least 15 minutes of thermal lag


@pytest.mark.parametrize("kind", ASSET_KINDS)
def test_demand_follows_a_daily_two_shift_cycle(kind):
    s = Asset(kind, seed=2).generate(STEPS)
    hour = np.arange(STEPS) * 300 / 3600 % 24
    day, night = (hour > 10) & (hour < 18), hour < 4
    assert ch(s, "current")[day].mean() > ch(s, "current")[night].mean() * 1.15


def test_the_shifts_follow_the_clock_given_the_time_of_day():
    asset = Asset("pump", seed=2)
    midnight = asset.generate(DAY)
    noon = asset.generate(DAY, time_of_day_s=12 * 3600)
    first_hours = slice(0, 36)
    assert ch(noon, "flow")[first_hours].mean() > ch(midnight, "flow")[first_hours].mean() + 10


def test_the_same_asset_and_seed_give_the_same_series_and_another_seed_another():
    a = Asset("compressor", seed=9).generate(DAY)
    b = Asset("compressor", seed=9).generate(DAY)
    c = Asset("compressor", seed=10).generate(DAY)
    assert np.array_equal(a.values, b.values)
    assert not np.allclose(a.values, c.values)


def test_assets_of_one_kind_differ_in_size_but_not_in_nature():
    flows = [ch(Asset("pump", seed=s).generate(DAY), "flow").mean() for s in range(5)]
    assert len({round(f) for f in flows}) > 1
    assert all(60 < f < 140 for f in flows)


def test_a_fleet_of_nine_assets_over_ten_days_takes_well_under_a_second():
    started = time.perf_counter()
    for i in range(9):
        Asset(ASSET_KINDS[i % 3], seed=i).generate(2880)
    assert time.perf_counter() - started < 1.0


def test_readings_carry_every_channel_at_the_asset_period():
    series = Asset("motor", seed=1, period_s=60.0).generate(3)
    readings = series.readings("motor-01", start_ts=1_700_000_000.0)
    assert all(isinstance(r, Reading) and r.asset == "motor-01" for r in readings)
    assert [r.ts for r in readings] == [1_700_000_000.0, 1_700_000_060.0, 1_700_000_120.0]
    assert set(readings[0].values) == set(FLEET_CHANNELS)


# ---------------------------------------------------------------- faults and labels


def test_labels_and_fault_index_mark_exactly_the_injected_spans():
    faults = [AssetFault("leak", start=300, length=144), AssetFault("spike", 600, 1, "flow")]
    series = Asset("pump", seed=1).generate(STEPS, faults)
    expected = np.full(STEPS, -1)
    expected[300:444] = 0
    expected[600] = 1
    assert np.array_equal(series.fault_index, expected)
    assert np.array_equal(series.labels, expected >= 0)
    assert series.faults == tuple(faults)


@pytest.mark.parametrize(
    ("fault", "asset_kind", "channel"),
    [
        ("bearing_wear", "motor", "vibration"),
        ("cavitation", "pump", "vibration"),
        ("leak", "pump", "flow"),
        ("leak", "compressor", "current"),
    ],
)
def test_a_physical_fault_names_the_channel_that_shows_it_most(fault, asset_kind, channel):
    assert AssetFault(fault, start=0, length=10).channel_for(asset_kind) == channel


def test_a_sensor_fault_names_its_sensor():
    assert AssetFault("stuck", 0, 10, channel="speed").channel_for("compressor") == "speed"


def test_a_fault_changes_nothing_before_it_starts():
    for fault, kind in [
        (AssetFault("bearing_wear", 400, 288), "compressor"),
        (AssetFault("cavitation", 400, 144), "pump"),
        (AssetFault("leak", 400, 144), "compressor"),
        (AssetFault("drift", 400, 72, channel="flow"), "motor"),
    ]:
        faulty, clean = with_and_without(kind, fault)
        assert np.array_equal(faulty.values[:400], clean.values[:400]), fault.kind


def test_bearing_wear_raises_vibration_progressively_and_heats_the_bearing():
    fault = AssetFault("bearing_wear", start=300, length=288)
    faulty, clean = with_and_without("pump", fault)
    extra = ch(faulty, "vibration") / ch(clean, "vibration")
    first, last = extra[300:372].mean(), extra[516:588].mean()
    assert 1.1 < first < last  # there at once, and growing
    assert last > 2.0
    heat = ch(faulty, "temperature") - ch(clean, "temperature")
    assert heat[580:588].mean() > 8.0
    assert (ch(faulty, "current") >= ch(clean, "current") - 1e-9)[300:588].all()


def test_bearing_wear_ends_with_its_label_but_for_the_bearings_cooling():
    fault = AssetFault("bearing_wear", start=300, length=288)
    faulty, clean = with_and_without("motor", fault)
    after = slice(588 + 48, STEPS)  # four hours later: cooled down
    assert np.allclose(ch(faulty, "vibration")[588:], ch(clean, "vibration")[588:])
    assert np.abs(ch(faulty, "temperature")[after] - ch(clean, "temperature")[after]).max() < 0.2


def test_cavitation_drops_and_unsettles_flow_and_shakes_the_pump():
    fault = AssetFault("cavitation", start=300, length=144)
    faulty, clean = with_and_without("pump", fault)
    span = slice(312, 444)  # after the half-hour onset
    flow_f, flow_c = ch(faulty, "flow")[span], ch(clean, "flow")[span]
    assert flow_f.mean() < flow_c.mean() * 0.97
    assert np.diff(flow_f).std() > 2 * np.diff(flow_c).std()
    press_f, press_c = ch(faulty, "pressure")[span], ch(clean, "pressure")[span]
    assert np.diff(press_f).std() > 2 * np.diff(press_c).std()
    assert ch(faulty, "vibration")[span].mean() > ch(clean, "vibration")[span].mean() + 1.5


def test_a_pump_leak_raises_flow_and_current_and_drops_pressure_below_its_curve():
    fault = AssetFault("leak", start=300, length=144)
    faulty, clean = with_and_without("pump", fault)
    span = slice(312, 444)
    assert (ch(faulty, "flow") - ch(clean, "flow"))[span].mean() > 10.0  # m³/h
    assert (ch(faulty, "pressure") - ch(clean, "pressure"))[span].mean() < -0.2  # bar
    assert (ch(faulty, "current") - ch(clean, "current"))[span].mean() > 0.5  # A
    assert np.allclose(ch(faulty, "speed")[span], ch(clean, "speed")[span], atol=15)


def test_a_compressor_leak_loads_the_compressor_for_the_same_metered_flow():
    fault = AssetFault("leak", start=300, length=144)
    faulty, clean = with_and_without("compressor", fault)
    span = slice(312, 444)
    assert np.array_equal(ch(faulty, "flow"), ch(clean, "flow"))  # the meter is downstream
    assert (ch(faulty, "current") - ch(clean, "current"))[span].mean() > 15.0  # A
    assert (ch(faulty, "speed") - ch(clean, "speed"))[span].mean() < -2.0  # more slip
    assert (ch(faulty, "temperature") - ch(clean, "temperature"))[span].mean() > 1.0


def test_a_compressor_that_cannot_keep_up_loses_pressure():
    fault = AssetFault("leak", start=300, length=144, magnitude=0.6)
    faulty, clean = with_and_without("compressor", fault)
    span = slice(312, 444)
    assert ch(faulty, "pressure")[span].min() < ch(clean, "pressure").min() - 0.3


@pytest.mark.parametrize("kind", ASSET_KINDS)
def test_a_stuck_sensor_repeats_its_reading_and_nothing_else_changes(kind):
    fault = AssetFault("stuck", start=300, length=144, channel="current")
    faulty, clean = with_and_without(kind, fault)
    j = FLEET_CHANNELS.index("current")
    assert (faulty.values[300:444, j] == clean.values[300, j]).all()
    others = [i for i in range(6) if i != j]
    assert np.array_equal(faulty.values[:, others], clean.values[:, others])
    assert np.array_equal(faulty.values[444:, j], clean.values[444:, j])


def test_a_drifting_sensor_moves_linearly_to_its_magnitude_in_noise_sigmas():
    fault = AssetFault("drift", start=300, length=72, channel="pressure", magnitude=20.0)
    faulty, clean = with_and_without("pump", fault)
    j = FLEET_CHANNELS.index("pressure")
    offset = faulty.values[:, j] - clean.values[:, j]
    sigma = clean.noise_sd[j]
    assert np.allclose(np.abs(offset[300:372]), 20.0 * sigma * np.arange(1, 73) / 72)
    assert np.array_equal(offset[:300], np.zeros(300))
    assert np.array_equal(offset[372:], np.zeros(STEPS - 372))
    others = [i for i in range(6) if i != j]
    assert np.array_equal(faulty.values[:, others], clean.values[:, others])


def test_a_spike_is_one_reading_off_by_its_magnitude_in_channel_spreads():
    fault = AssetFault("spike", start=400, channel="vibration", magnitude=8.0)
    faulty, clean = with_and_without("compressor", fault)
    diff = faulty.values - clean.values
    assert np.count_nonzero(diff) == 1
    j = FLEET_CHANNELS.index("vibration")
    spread = np.delete(faulty.values[:, j], 400).std()
    assert diff[400, j] == pytest.approx(8.0 * spread, rel=0.01)  # and upwards


# ---------------------------------------------------------------- refusals


def test_fault_kinds_apply_only_where_they_can_happen():
    assert FAULT_ASSETS["cavitation"] == ("pump",)
    assert not fault_applies("leak", "motor")
    assert all(fault_applies(k, "pump") for k in FAULT_KINDS)


def test_cavitation_on_a_compressor_is_refused():
    with pytest.raises(ConfigError, match=r"compressor cannot have 'cavitation'.*pump"):
        Asset("compressor").generate(DAY, [AssetFault("cavitation", 10, 20)])


def test_a_leak_on_a_fan_motor_is_refused():
    with pytest.raises(ConfigError, match="motor cannot have 'leak'"):
        Asset("motor").generate(DAY, [AssetFault("leak", 10, 20)])


def test_overlapping_faults_on_one_asset_are_refused():
    faults = [AssetFault("leak", 10, 50), AssetFault("stuck", 40, 20, channel="flow")]
    with pytest.raises(ConfigError, match="must not overlap"):
        Asset("pump").generate(DAY, faults)


def test_a_fault_past_the_end_of_the_series_is_refused():
    with pytest.raises(ConfigError, match="does not fit in 288 steps"):
        Asset("pump").generate(DAY, [AssetFault("leak", 250, 50)])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "explosion", "start": 0}, "kind must be one of"),
        ({"kind": "spike", "start": 0, "length": 3, "channel": "flow"}, "single reading"),
        ({"kind": "stuck", "start": 0, "length": 3}, "name the failing sensor"),
        ({"kind": "drift", "start": 0, "length": 3, "channel": "torque"}, "name the failing"),
        ({"kind": "leak", "start": 0, "length": 3, "channel": "flow"}, "leave channel unset"),
        ({"kind": "leak", "start": -1, "length": 3}, "start >= 0"),
        ({"kind": "leak", "start": 0, "length": 0}, "length >= 1"),
        ({"kind": "leak", "start": 0.5, "length": 3}, "integer step"),
        ({"kind": "leak", "start": 0, "length": 3, "magnitude": -1.0}, "finite number > 0"),
        ({"kind": "leak", "start": 0, "length": 3, "magnitude": 0.95}, "at most 0.8"),
        ({"kind": "cavitation", "start": 0, "length": 3, "magnitude": 2.0}, "severity"),
        ({"kind": "stuck", "start": 0, "length": 3, "channel": "flow", "magnitude": 1.0}, "no"),
    ],
)
def test_an_invalid_fault_says_what_is_wrong(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        AssetFault(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "turbine"}, "kind must be one of"),
        ({"kind": "pump", "seed": -1}, "seed must be an integer >= 0"),
        ({"kind": "pump", "period_s": 0.5}, "between 1 and 3600 seconds"),
        ({"kind": "pump", "period_s": float("nan")}, "between 1 and 3600 seconds"),
        ({"kind": "pump", "noise": -0.1}, "noise must be a finite number >= 0"),
    ],
)
def test_an_invalid_asset_says_what_is_wrong(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Asset(**kwargs)


def test_an_empty_series_is_refused():
    with pytest.raises(InputError, match="n_steps must be an integer >= 1"):
        Asset("pump").generate(0)
