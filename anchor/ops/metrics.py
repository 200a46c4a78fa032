"""Numbers an operator's Prometheus scrapes: a tiny registry and its text exposition (0.0.4).

The channel owns one `Registry`; nothing here is global, so two channels in one process (or
one test after another) never share a count. Most figures already live somewhere (the
playout's frame counters, the store's question table, OBS's stats), so the registry mostly
mirrors them: collectors registered with `Registry.collect_with` copy the current values in
just before each scrape. Only figures nobody else keeps (answer latency) are observed here.

Counters mirrored from a component are set to that component's running total: they only go
up while the process lives, which is all Prometheus asks of a counter (a restart resets it,
and `rate()` handles that).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_Labels = tuple[tuple[str, str], ...]
Collector = Callable[[], Awaitable[None] | None]
_F = TypeVar("_F", bound="_Family")


def _key(labels: dict[str, object]) -> _Labels:
    return tuple(sorted((name, str(value)) for name, value in labels.items()))


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _sample(name: str, labels: _Labels, value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}"
    inner = ",".join(f'{key}="{_escape(val)}"' for key, val in labels)
    return f"{name}{{{inner}}} {_number(value)}"


class _Family:
    kind = "untyped"

    def __init__(self, name: str, help_text: str) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid metric name")
        self.name = name
        self.help = help_text

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> Iterable[str]:
        raise NotImplementedError


class Gauge(_Family):
    """A value that goes up and down (queue depth, connected 0/1, lateness)."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self._values: dict[_Labels, float] = {}

    def set(self, value: float, **labels: object) -> None:
        self._values[_key(labels)] = float(value)

    def value(self, **labels: object) -> float | None:
        return self._values.get(_key(labels))

    def samples(self) -> Iterable[str]:
        for labels, value in sorted(self._values.items()):
            yield _sample(self.name, labels, value)


class Counter(Gauge):
    """A running total. `inc` counts here; `set` mirrors a total kept by another component."""

    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = _key(labels)
        self._values[key] = self._values.get(key, 0.0) + amount


class Summary(_Family):
    """Sum and count of observations (seconds spent rendering, encoding), no quantiles."""

    kind = "summary"

    def __init__(self, name: str, help_text: str) -> None:
        super().__init__(name, help_text)
        self.sum = 0.0
        self.count = 0

    def set(self, total: float, count: int) -> None:
        self.sum, self.count = float(total), int(count)

    def samples(self) -> Iterable[str]:
        yield _sample(f"{self.name}_sum", (), self.sum)
        yield _sample(f"{self.name}_count", (), self.count)


class Histogram(_Family):
    """Observations counted into cumulative buckets (answer latency)."""

    kind = "histogram"

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

    def samples(self) -> Iterable[str]:
        for bound, count in zip(self.buckets, self._counts, strict=True):
            yield _sample(f"{self.name}_bucket", (("le", _number(bound)),), count)
        yield _sample(f"{self.name}_bucket", (("le", "+Inf"),), self.count)
        yield _sample(f"{self.name}_sum", (), self.sum)
        yield _sample(f"{self.name}_count", (), self.count)


class Registry:
    """The metric families of one channel, in the order they were declared."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}
        self._collectors: list[Collector] = []

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
        lines: list[str] = []
        for family in self._families.values():
            lines.extend(family.header())
            lines.extend(family.samples())
        return "\n".join(lines) + "\n"

    def _add(self, family: _F) -> _F:
        if family.name in self._families:
            raise ValueError(f"metric {family.name} is declared twice")
        self._families[family.name] = family
        return family
