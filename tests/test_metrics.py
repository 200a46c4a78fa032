"""The /metrics text as a scraper reads it: parsed by prometheus_client's own parser."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from anchor.ops.metrics import CONTENT_TYPE, LATENCY_BUCKETS, Registry


def _scrape(
    text: str,
) -> dict[str, tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]]:
    """Exposition → {family: (type, {(sample name, sorted labels): value})}."""
    families = {}
    for family in text_string_to_metric_families(text):
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for sample in family.samples
        }
        families[family.name] = (family.type, samples)
    return families


def _sample_names(text: str) -> set[str]:
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def test_a_counter_keeps_its_total_name_and_labels() -> None:
    registry = Registry()
    frames = registry.counter("anchor_frames_encoded_total", "Video frames encoded.")
    voice = registry.counter("anchor_voice_events_total", "Voice fallbacks and cache use.")
    frames.inc()
    frames.inc(2.5)
    voice.inc(event="cache_hit")
    voice.inc(3, event="fallback")

    text = registry.render()

    assert "# TYPE anchor_frames_encoded_total counter" in text.splitlines()
    assert _sample_names(text) == {"anchor_frames_encoded_total", "anchor_voice_events_total"}
    scraped = _scrape(text)
    assert scraped["anchor_frames_encoded"] == (
        "counter",
        {("anchor_frames_encoded_total", ()): 3.5},
    )
    assert scraped["anchor_voice_events"] == (
        "counter",
        {
            ("anchor_voice_events_total", (("event", "cache_hit"),)): 1.0,
            ("anchor_voice_events_total", (("event", "fallback"),)): 3.0,
        },
    )
    assert voice.value(event="fallback") == 3.0
    assert voice.value(event="never") is None


def test_a_counter_mirrored_with_set_shows_the_components_total() -> None:
    registry = Registry()
    renders = registry.counter("anchor_renders_total", "Pictures rendered.")
    renders.set(10)
    renders.set(42)
    assert _scrape(registry.render())["anchor_renders"][1] == {("anchor_renders_total", ()): 42.0}


def test_a_counter_refuses_to_go_down() -> None:
    registry = Registry()
    counter = registry.counter("anchor_things_total", "Things.")
    with pytest.raises(ValueError, match="only goes up"):
        counter.inc(-1)
    assert counter.value() is None


def test_a_gauge_may_label_its_samples_differently() -> None:
    registry = Registry()
    questions = registry.gauge("anchor_questions", "Stored questions by status.")
    questions.set(5)
    questions.set(2, status="answered")
    questions.set(0, status="pending")
    questions.set(1, status="pending", site="town")
    questions.set(7, status="answered")  # a later value replaces the earlier one

    kind, samples = _scrape(registry.render())["anchor_questions"]

    assert kind == "gauge"
    assert samples == {
        ("anchor_questions", ()): 5.0,
        ("anchor_questions", (("status", "answered"),)): 7.0,
        ("anchor_questions", (("status", "pending"),)): 0.0,
        ("anchor_questions", (("site", "town"), ("status", "pending"))): 1.0,
    }
    assert questions.value(status="answered") == 7.0


def test_label_values_are_escaped() -> None:
    registry = Registry()
    stats = registry.gauge("anchor_obs_stat", "OBS's own statistics.")
    stats.set(1, stat='a "quoted"\\back\nslash 工会')
    _, samples = _scrape(registry.render())["anchor_obs_stat"]
    assert samples == {("anchor_obs_stat", (("stat", 'a "quoted"\\back\nslash 工会'),)): 1.0}


def test_a_summary_exposes_sum_and_count() -> None:
    registry = Registry()
    registry.summary("anchor_render_seconds", "Time spent rendering pictures.").set(12.5, 300)
    assert _scrape(registry.render())["anchor_render_seconds"] == (
        "summary",
        {("anchor_render_seconds_sum", ()): 12.5, ("anchor_render_seconds_count", ()): 300.0},
    )


def test_a_histogram_counts_into_cumulative_buckets_up_to_inf() -> None:
    registry = Registry()
    latency = registry.histogram("anchor_answer_latency_seconds", "Question to answer on air.")
    for seconds in (0.2, 0.7, 3.0, 45.0, 1000.0):
        latency.observe(seconds)

    kind, samples = _scrape(registry.render())["anchor_answer_latency_seconds"]

    assert kind == "histogram"
    buckets = {
        dict(labels)["le"]: value
        for (name, labels), value in samples.items()
        if name == "anchor_answer_latency_seconds_bucket"
    }
    bounds = [*(float(bound) for bound in LATENCY_BUCKETS), float("inf")]
    assert sorted(float(le) for le in buckets) == bounds
    assert buckets["0.5"] == 1
    assert buckets["1"] == 2
    assert buckets["2"] == 2
    assert buckets["5"] == 3
    assert buckets["60"] == 4
    assert buckets["600"] == 4
    assert buckets["+Inf"] == 5
    by_bound = [buckets[le] for le in sorted(buckets, key=float)]
    assert by_bound == sorted(by_bound), "buckets are cumulative"
    assert samples[("anchor_answer_latency_seconds_count", ())] == 5
    assert samples[("anchor_answer_latency_seconds_sum", ())] == pytest.approx(1048.9)


def test_a_histogram_takes_its_own_buckets() -> None:
    registry = Registry()
    registry.histogram("anchor_wait_seconds", "Waits.", buckets=(2.5, 0.1)).observe(1.0)
    _, samples = _scrape(registry.render())["anchor_wait_seconds"]
    assert samples[("anchor_wait_seconds_bucket", (("le", "0.1"),))] == 0
    assert samples[("anchor_wait_seconds_bucket", (("le", "2.5"),))] == 1
    assert samples[("anchor_wait_seconds_bucket", (("le", "+Inf"),))] == 1


def test_a_histogram_mirrors_a_components_own_bucket_counts() -> None:
    registry = Registry()
    late = registry.histogram("anchor_frame_lateness_seconds", "Late frames.", (0.01, 0.1))
    late.mirror([50, 3, 2], total=1.5)  # per bucket, and beyond the last bound
    _, samples = _scrape(registry.render())["anchor_frame_lateness_seconds"]
    assert samples[("anchor_frame_lateness_seconds_bucket", (("le", "0.01"),))] == 50
    assert samples[("anchor_frame_lateness_seconds_bucket", (("le", "0.1"),))] == 53
    assert samples[("anchor_frame_lateness_seconds_bucket", (("le", "+Inf"),))] == 55
    assert samples[("anchor_frame_lateness_seconds_count", ())] == 55
    assert samples[("anchor_frame_lateness_seconds_sum", ())] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="anchor_frame_lateness_seconds"):
        late.mirror([1, 2], total=0.0)


async def test_collectors_plain_and_async_run_before_each_exposition() -> None:
    registry = Registry()
    frames = registry.counter("anchor_frames_encoded_total", "Video frames encoded.")
    depth = registry.gauge("anchor_speech_queue_depth", "Synthesized sentences waiting.")
    component = {"frames": 0, "queue": 0}

    def copy_frames() -> None:
        frames.set(component["frames"])

    async def copy_queue() -> None:
        await asyncio.sleep(0)
        depth.set(component["queue"])

    registry.collect_with(copy_frames)
    registry.collect_with(copy_queue)

    component.update(frames=25, queue=3)
    first = _scrape(await registry.exposition())
    component.update(frames=50, queue=1)
    second = _scrape(await registry.exposition())

    assert first["anchor_frames_encoded"][1] == {("anchor_frames_encoded_total", ()): 25.0}
    assert first["anchor_speech_queue_depth"][1] == {("anchor_speech_queue_depth", ()): 3.0}
    assert second["anchor_frames_encoded"][1] == {("anchor_frames_encoded_total", ()): 50.0}
    assert second["anchor_speech_queue_depth"][1] == {("anchor_speech_queue_depth", ()): 1.0}


def test_two_registries_share_nothing() -> None:
    one, other = Registry(), Registry()
    one.counter("anchor_lines_aired_total", "Lines aired.").inc(4)
    other.counter("anchor_lines_aired_total", "Lines aired.").inc(1)
    one.gauge("anchor_stalled", "1 while stalled.").set(1)

    assert _scrape(one.render())["anchor_lines_aired"][1] == {("anchor_lines_aired_total", ()): 4}
    assert _scrape(other.render()) == {
        "anchor_lines_aired": ("counter", {("anchor_lines_aired_total", ()): 1.0})
    }


def test_families_come_out_in_declared_order() -> None:
    registry = Registry()
    registry.gauge("anchor_b", "B.").set(1)
    registry.counter("anchor_a_total", "A.").inc()
    registry.summary("anchor_c_seconds", "C.")
    assert [family.name for family in text_string_to_metric_families(registry.render())] == [
        "anchor_b",
        "anchor_a",
        "anchor_c_seconds",
    ]


def test_bad_and_repeated_names_are_refused() -> None:
    registry = Registry()
    for bad in ("", "2fast", "anchor-frames", "anchor frames", "工会"):
        with pytest.raises(ValueError, match="not a valid metric name"):
            registry.gauge(bad, "Bad.")
    with pytest.raises(ValueError, match="_total"):
        registry.counter("anchor_frames", "A counter's name ends in _total.")
    registry.gauge("anchor_stalled", "1 while stalled.")
    registry.counter("anchor_things_total", "Things.")
    with pytest.raises(ValueError, match="declared twice"):
        registry.counter("anchor_things_total", "Again.")
    with pytest.raises(ValueError, match="declared twice"):
        registry.gauge("anchor_stalled", "Again.")
    with pytest.raises(ValueError, match="declared twice"):
        registry.histogram("anchor_stalled", "Again.")


def test_the_content_type_is_the_text_format_the_library_writes() -> None:
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
