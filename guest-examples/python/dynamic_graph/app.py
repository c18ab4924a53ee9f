"""Dagster's "dynamic graph" example in Python: chunk 0..100, double each chunk, sum everything.

The same ops as guest-examples/dynamic-graph (Rust); the job is jobs/dynamic_graph_python.toml.
"""

from dataclasses import dataclass, field
from typing import Iterator

from shoal import BadInput, DynamicOut, DynamicOutput, In, OpContext, export, op


@dataclass
class LoadConfig:
    chunk_size: int = field(default=2, metadata={"description": "elements per piece"})


@op(out=DynamicOut(list[int], description="one piece of 0..100 per mapping key"))
def load_pieces(context: OpContext, config: LoadConfig) -> Iterator[DynamicOutput[list[int]]]:
    """Yields 0..100 in chunks of config.chunk_size (default 2), keyed by chunk index ("0".."49")."""
    if config.chunk_size < 1:
        raise BadInput("config `chunk_size` must be at least 1")
    large_data = list(range(100))
    for idx, start in enumerate(range(0, len(large_data), config.chunk_size)):
        yield DynamicOutput(large_data[start : start + config.chunk_size], mapping_key=str(idx))


@op(ins={"piece": In(description="one chunk from load_pieces")})
def compute_piece(context: OpContext, piece: list[int]) -> list[int]:
    """Doubles each element of a piece."""
    context.log.info("computing piece: %s" % piece)
    return [x * 2 for x in piece]


@op(ins={"pieces": In(description="every computed piece, collected")})
def merge_and_analyze(context: OpContext, pieces: list[list[int]]) -> int:
    """Sums all pieces."""
    total = sum(sum(piece) for piece in pieces)
    context.log.info("total sum of pieces: %d" % total)
    return total


Op = export()
