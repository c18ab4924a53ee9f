"""Splits a text into words, shouts each word in its own step, joins them again.

`shoal/` is a copy of Shoal's Python SDK (sdk/python), made by `host new`.
"""

from dataclasses import dataclass
from typing import Iterator

from shoal import DynamicOut, DynamicOutput, OpContext, export, op


@dataclass
class SplitConfig:
    text: str


@op(out=DynamicOut(str))
def split(context: OpContext, config: SplitConfig) -> Iterator[DynamicOutput[str]]:
    """Yields each word of config.text, keyed by its position."""
    for i, word in enumerate(config.text.split()):
        yield DynamicOutput(word, mapping_key=str(i))


@op
def shout(word: str) -> str:
    """Uppercases one word."""
    return word.upper()


@op
def join(context: OpContext, words: list[str]) -> str:
    """Joins the shouted words with spaces."""
    context.add_output_metadata({"words": len(words)})  # shown with the output's event
    return " ".join(words)


Op = export()
