"""Numbers an operator's Prometheus scrapes: a tiny registry, written out by `prometheus_client`.

The channel owns one `Registry`; nothing here is global, so two channels in one process (or
one test after another) never share a count. Each `Registry` therefore has its own
`prometheus_client.CollectorRegistry`, never the library's process-wide default one. Most
figures already live somewhere (the playout's frame counters, the store's question table, OBS's
stats), so the registry mostly mirrors them: collectors registered with `Registry.collect_with`
copy the current values in just before each scrape. Only figures nobody else keeps (answer
latency) are observed here.

Counters mirrored from a component are set to that component's running total: they only go
up while the process lives, which is all Prometheus asks of a counter (a restart resets it,
and `rate()` handles that). The library's own metric classes can only be incremented, and
they fix a family's label names up front; our labels are free-form keyword labels. So the
values live in the small holders below, and one custom collector hands them to the library
as metric families at each scrape; the library only writes the text.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    Sample,
    SummaryMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

# What `generate_latest` writes. Not the library's CONTENT_TYPE_LATEST: since 0.22 that names
# the 1.0.0 text format, which the library only serves with an `escaping=` parameter.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
LATENCY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_Labels = tuple[tuple[str, str], ...]
Collector = Callable[[], Awaitable[None] | None]
_F = TypeVar("_F", bound="_Family")


def _key(labels: dict[str, object]) -> _Labels:
    return tuple(sorted((name, str(value)) for name, value in labels.items()))


def _bound(value: float) -> str:
    """A bucket's `le` as it has always been written (`1`, `0.5`), so dashboards keep matching."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _add_samples(family: Metric, name: str, values: dict[_Labels, float]) -> Metric:
    """Add one sample per label set. The families' `add_metric` takes one fixed list of label
    names per family, but a family here may label its samples differently, so each sample
    carries its own labels."""
    for labels, value in sorted(values.items()):
        family.samples.append(Sample(name, dict(labels), value))
    return family


class _Family:
    def __init__(self, name: str, help_text: str) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid metric name")
        self.name = name
        self.help = help_text

    def family(self) -> Metric:
        """This family's current values, as the library's metric family."""
        raise NotImplementedError


class Gauge(_Family):
    """A value that goes up and down (queue depth, connected 0/1, lateness)."""

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._values: dict[_Labels, float] = {}

    def set(self, value: float, **labels: object) -> None:
        self._values[_key(labels)] = float(value)

    def value(self, **labels: object) -> float | None:
        return self._values.get(_key(labels))

    def family(self) -> Metric:
        return _add_samples(GaugeMetricFamily(self.name, self.help), self.name, self._values)


class Counter(Gauge):
    """A running total. `inc` counts here; `set` mirrors a total kept by another component."""

    def __init__(self, name: str, help_text: str) -> None:
        # The library writes a counter's samples as `<family>_total`: any other name would change.
        if not name.endswith("_total"):
            raise ValueError(f"counter {name!r} must end in _total")
        super().__init__(name, help_text)

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = _key(labels)
        self._values[key] = self._values.get(key, 0.0) + amount

    def family(self) -> Metric:
        # The family is named without `_total` (the library strips it); samples keep it.
        return _add_samples(CounterMetricFamily(self.name, self.help), self.name, self._values)


class Summary(_Family):
    """Sum and count of observations (seconds spent rendering, encoding), no quantiles."""

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self.sum = 0.0
        self.count = 0

    def set(self, total: float, count: int) -> None:
        self.sum, self.count = float(total), int(count)

    def family(self) -> Metric:
        return SummaryMetricFamily(self.name, self.help, count_value=self.count, sum_value=self.sum)


class Histogram(_Family):
    """Observations counted into cumulative buckets (answer latency)."""

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        super().__init__(name, help_text)
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * len(self.buckets)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self._counts[index] += 1
        self.sum += value
        self.count += 1

    def mirror(self, per_bucket: Sequence[int], total: float) -> None:
        """Take a component's own counts: one per bucket (not cumulative) and one beyond the
        last bound, as the playout keeps its frame lateness."""
        if len(per_bucket) != len(self.buckets) + 1:
            raise ValueError(f"{self.name}: {len(per_bucket)} counts, {len(self.buckets)} buckets")
        running = 0
        for index, count in enumerate(per_bucket[:-1]):
            running += count
            self._counts[index] = running
        self.count = running + per_bucket[-1]
        self.sum = float(total)

    def family(self) -> Metric:
        cumulative: list[tuple[str, float]] = [
            (_bound(bound), count) for bound, count in zip(self.buckets, self._counts, strict=True)
        ]
        cumulative.append(("+Inf", self.count))
        return HistogramMetricFamily(self.name, self.help, buckets=cumulative, sum_value=self.sum)


class _Families:
    """The one collector a `Registry` gives the library: its families, in declared order."""

    def __init__(self, families: dict[str, _Family]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        for family in self._families.values():
            yield family.family()


class Registry:
    """The metric families of one channel, in the order they were declared."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}
        self._collectors: list[Collector] = []
        self._exposed = CollectorRegistry(auto_describe=False)
        self._exposed.register(_Families(self._families))

    def counter(self, name: str, help_text: str) -> Counter:
        return self._add(Counter(name, help_text))

    def gauge(self, name: str, help_text: str) -> Gauge:
        return self._add(Gauge(name, help_text))

    def summary(self, name: str, help_text: str) -> Summary:
        return self._add(Summary(name, help_text))

    def histogram(
        self, name: str, help_text: str, buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> Histogram:
        return self._add(Histogram(name, help_text, buckets))

    def collect_with(self, collector: Collector) -> None:
        """Run `collector` (plain or async) before each exposition to refresh mirrored values."""
        self._collectors.append(collector)

    async def exposition(self) -> str:
        """Refresh every mirrored value, then write all families as Prometheus text."""
        for collector in self._collectors:
            result = collector()
            if inspect.isawaitable(result):
                await result
        return self.render()

    def render(self) -> str:
        return generate_latest(self._exposed).decode("utf-8")

    def _add(self, family: _F) -> _F:
        if family.name in self._families:
            raise ValueError(f"metric {family.name} is declared twice")
        self._families[family.name] = family
        return family
