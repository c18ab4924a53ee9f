"""Metadata values and the events an op logs, as Dagster names them: ``MetadataValue``,
``AssetKey``, ``AssetMaterialization``, ``AssetObservation``, ``ExpectationResult``.

Pure Python: each object is checked when it is made (a bad label, an empty asset key, a value
with no metadata variant raise ``TypeError``/``ValueError`` at once, in the op's own line), and
``_component`` turns it into the WIT ``events`` types.
"""

import dataclasses
import json
import math
import os
import typing

__all__ = [
    "MetadataValue",
    "AssetKey",
    "AssetMaterialization",
    "AssetObservation",
    "ExpectationResult",
    "metadata_entries",
]

_S64 = (-(2**63), 2**63 - 1)


@dataclasses.dataclass(frozen=True)
class MetadataValue:
    """One metadata value: ``kind`` is the WIT variant (``text``, ``int``, ``float``,
    ``boolean``, ``url``, ``path``, ``json``, ``markdown``), ``value`` what it holds (``json``
    holds the JSON text). Make one with the constructors named as in Dagster::

        MetadataValue.int(3), MetadataValue.url("https://..."), MetadataValue.md("# Title")

    or give a plain value where metadata is expected (see :meth:`of`).
    """

    kind: str
    value: typing.Any

    @staticmethod
    def text(text):
        return MetadataValue("text", _str(text, "text"))

    @staticmethod
    def int(value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("MetadataValue.int takes an int, not %r" % (value,))
        if not _S64[0] <= value <= _S64[1]:
            raise ValueError("MetadataValue.int: %d is out of the 64-bit signed range" % value)
        return MetadataValue("int", value)

    @staticmethod
    def float(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError("MetadataValue.float takes a number, not %r" % (value,))
        if not math.isfinite(value):
            raise ValueError("MetadataValue.float: %r is not finite (JSON has no NaN)" % (value,))
        return MetadataValue("float", float(value))

    @staticmethod
    def bool(value):
        if not isinstance(value, bool):
            raise TypeError("MetadataValue.bool takes a bool, not %r" % (value,))
        return MetadataValue("boolean", value)

    @staticmethod
    def url(url):
        return MetadataValue("url", _str(url, "url"))

    @staticmethod
    def path(path):
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        return MetadataValue("path", _str(path, "path"))

    @staticmethod
    def json(data):
        """``data`` (a dict, list or any JSON value) as JSON text."""
        try:
            text = json.dumps(data, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError("MetadataValue.json: %r is not JSON: %s" % (data, e)) from None
        return MetadataValue("json", text)

    @staticmethod
    def md(markdown):
        return MetadataValue("markdown", _str(markdown, "md"))

    @staticmethod
    def of(value):
        """A plain value as its natural variant: ``str`` text, ``bool`` boolean, ``int`` int,
        ``float`` float, a path (``os.PathLike``) path, ``dict``/``list``/``tuple``/``None``
        json; a :class:`MetadataValue` as it is."""
        if isinstance(value, MetadataValue):
            return value
        if isinstance(value, str):
            return MetadataValue.text(value)
        if isinstance(value, bool):
            return MetadataValue.bool(value)
        if isinstance(value, int):
            return MetadataValue.int(value)
        if isinstance(value, float):
            return MetadataValue.float(value)
        if isinstance(value, os.PathLike):
            return MetadataValue.path(value)
        if value is None or isinstance(value, (dict, list, tuple)):
            return MetadataValue.json(value)
        raise TypeError(
            "no metadata value for a %s (%r): use str, int, float, bool, a path, a dict or list, "
            "or MetadataValue.*" % (type(value).__name__, value)
        )


def _str(value, what):
    if not isinstance(value, str):
        raise TypeError("MetadataValue.%s takes a str, not %r" % (what, value))
    return value


def metadata_entries(metadata):
    """``metadata`` (a mapping of label to value, or ``None``) as ``[(label, MetadataValue)]``."""
    if metadata is None:
        return []
    if not hasattr(metadata, "items"):
        raise TypeError("metadata is a dict of label to value, not %r" % (metadata,))
    entries = []
    for label, value in metadata.items():
        if not isinstance(label, str) or not label:
            raise ValueError("a metadata label is a non-empty str, not %r" % (label,))
        entries.append((label, MetadataValue.of(value)))
    return entries


@dataclasses.dataclass(frozen=True)
class AssetKey:
    """An asset's key as path components: ``AssetKey("orders")``,
    ``AssetKey(["warehouse", "orders"])``."""

    path: tuple

    def __init__(self, path):
        if isinstance(path, AssetKey):
            path = path.path
        elif isinstance(path, str):
            path = (path,)
        elif isinstance(path, (list, tuple)):
            path = tuple(path)
        else:
            raise TypeError("an asset key is a str or a list of str, not %r" % (path,))
        if not path or not all(isinstance(p, str) and p for p in path):
            raise ValueError("an asset key is one or more non-empty str, not %r" % (list(path),))
        object.__setattr__(self, "path", path)


def _optional_str(value, what):
    if value is not None and not isinstance(value, str):
        raise TypeError("%s is a str or None, not %r" % (what, value))
    return value


@dataclasses.dataclass
class _AssetEvent:
    asset_key: AssetKey
    description: typing.Optional[str] = None
    partition: typing.Optional[str] = None
    metadata: typing.Any = None

    def __post_init__(self):
        self.asset_key = AssetKey(self.asset_key)
        _optional_str(self.description, "description")
        _optional_str(self.partition, "partition")
        self.metadata = dict(metadata_entries(self.metadata))


class AssetMaterialization(_AssetEvent):
    """The op wrote (a partition of) an asset: ``AssetMaterialization(asset_key=["db",
    "orders"], description=..., partition=..., metadata={"rows": 3})``. Recorded as
    ``ASSET_MATERIALIZATION``."""


class AssetObservation(_AssetEvent):
    """The op looked at an asset without writing it. Recorded as ``ASSET_OBSERVATION``."""


@dataclasses.dataclass
class ExpectationResult:
    """The outcome of a data quality check: ``ExpectationResult(success=False,
    label="no_null_ids", description=..., metadata={"nulls": 4})``. Recorded as
    ``STEP_EXPECTATION_RESULT``. Unlike Dagster, the label is required: it names the check."""

    success: bool
    label: str
    description: typing.Optional[str] = None
    metadata: typing.Any = None

    def __post_init__(self):
        if not isinstance(self.success, bool):
            raise TypeError("ExpectationResult: success is a bool, not %r" % (self.success,))
        if not isinstance(self.label, str) or not self.label:
            raise ValueError("ExpectationResult: label is a non-empty str, not %r" % (self.label,))
        _optional_str(self.description, "description")
        self.metadata = dict(metadata_entries(self.metadata))
