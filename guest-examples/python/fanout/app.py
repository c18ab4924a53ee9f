"""The fan-out benchmark's building blocks in Python, as testkit's fan_out, identity and sum
(guest-examples/testkit): fan_out yields n values, identity runs once per value, sum collects.
The job is jobs/fanout_python.toml.
"""

from dataclasses import dataclass
from typing import Any, Iterator

from shoal import DynamicOut, DynamicOutput, export, op


@dataclass
class FanOutConfig:
    n: int


@op(out=DynamicOut(int))
def fan_out(config: FanOutConfig) -> Iterator[DynamicOutput[int]]:
    """Yields the integers 0..n, keyed k0, k1, ..."""
    for i in range(config.n):
        yield DynamicOutput(i, mapping_key="k%d" % i)


@op
def identity(value: Any) -> Any:
    """Returns its input."""
    return value


@op
def sum(values: list[int]) -> int:
    """Sums the collected values."""
    total = 0
    for v in values:
        total += v
    return total


Op = export()
