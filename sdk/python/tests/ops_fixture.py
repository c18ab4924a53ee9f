"""A module of ops for the tests: `export()` lists them in this order."""

from dataclasses import dataclass
from typing import Iterator

from shoal import (
    BadInput,
    DynamicOut,
    DynamicOutput,
    Failure,
    In,
    Out,
    Output,
    RetryRequested,
    export,
    op,
)


@dataclass
class LoadConfig:
    chunk_size: int = 2


@op(out=DynamicOut(list[int], description="pieces"))
def load_pieces(context, config: LoadConfig) -> Iterator[DynamicOutput[list[int]]]:
    """Yields 0..10 in chunks.

    Keyed by chunk index.
    """
    if config.chunk_size < 1:
        raise BadInput("config `chunk_size` must be at least 1")
    context.log.info("chunk size %d", config.chunk_size)
    data = list(range(10))
    for idx, start in enumerate(range(0, len(data), config.chunk_size)):
        yield DynamicOutput(data[start : start + config.chunk_size], mapping_key=str(idx))


@op(ins={"piece": In(description="one chunk")})
def compute_piece(context, piece: list[int]) -> list[int]:
    """Doubles each element."""
    return [x * 2 for x in piece]


@op
def add(a: int, b: float = 0.5) -> float:
    return a + b


@op(name="untyped")
def untyped_op(value, config):
    return {"value": value, "config": config}


@op(out={"total": Out(int, description="the sum"), "items": DynamicOut(str)})
def split(values: list[int]):
    """Two outputs."""
    yield Output(sum(values), output_name="total")
    for v in values:
        yield DynamicOutput(str(v), mapping_key="v%d" % v, output_name="items")


@op(out={"low": Out(), "high": Out()})
def halves(values: list[int]):
    values = sorted(values)
    return values[: len(values) // 2], values[len(values) // 2 :]


@op(out=DynamicOut())
def returns_list(n: int):
    return [DynamicOutput(i, mapping_key="r%d" % i) for i in range(n)]


@op
def where(context) -> dict:
    return {
        "run_id": context.run_id,
        "step_key": context.step_key,
        "mapping_key": context.mapping_key,
        "mapping_keys": context.mapping_keys,
        "attempt": context.attempt,
        "retry_number": context.retry_number,
        "op_config": context.op_config,
        "op_name": context.op_name,
    }


@op
def flaky(context) -> str:
    if context.attempt < 2:
        raise RetryRequested("try again")
    return "ok"


@op
def fails() -> None:
    raise Failure("it broke")


@op
def crashes(x: int) -> int:
    return {"a": 1}[str(x)]


Op = export()
