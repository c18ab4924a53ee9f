"""Running ops natively (plain CPython, no component), for unit tests of ops.

    from shoal.testing import run

    result = run(compute_piece, inputs={"piece": [1, 2]})
    assert result.value == [2, 4]

``run`` goes through the same dispatch as a component: inputs and config are encoded to CBOR
and decoded again, dynamic outputs are yielded to a recording host that checks mapping keys as
Shoal's host does, events and output metadata are recorded (``result.events``,
``result.output_metadata(...)``), and errors come back as the WIT error variant
(``result.error``).
"""

import collections
import json
import re

from . import cbor
from ._core import Collector, HostRejected, Invocation, OpContext, OpDefinition, OpFailed, invoke

__all__ = [
    "run",
    "build_op_context",
    "describe",
    "RunResult",
    "RecordingHost",
    "OutputMetadata",
    "BuiltOpContext",
]

_KEY = re.compile(r"[A-Za-z0-9_]+")

#: Metadata an op attached to an output (``mapping_key`` ``None`` for a non-dynamic one), as
#: ``refuse`` sees it.
OutputMetadata = collections.namedtuple("OutputMetadata", "output_name mapping_key metadata")


class RecordingHost:
    """A host that records log lines, yielded values, events and output metadata.
    ``reject(output, key, value)`` may return a message to reject a yield with; mapping keys
    are checked as Shoal's host does. ``refuse(thing)``, given each event and each
    :class:`OutputMetadata`, may return a message to refuse it with."""

    def __init__(self, reject=None, refuse=None):
        self.logs = []
        self.yielded = []
        self.events = []
        self.metadata = {}  # (output, mapping key) -> {label: MetadataValue}
        self._reject = reject
        self._refuse = refuse
        self._keys = set()

    def log(self, level, message):
        self.logs.append((level, message))

    def _check(self, thing):
        message = self._refuse(thing) if self._refuse is not None else None
        if message:
            raise HostRejected(message)

    def log_event(self, event):
        self._check(event)
        self.events.append(event)

    def add_output_metadata(self, output, mapping_key, entries):
        self._check(OutputMetadata(output, mapping_key, dict(entries)))
        self.metadata.setdefault((output, mapping_key), {}).update(entries)

    def yield_output(self, output, mapping_key, data):
        value = cbor.loads(data)
        if not _KEY.fullmatch(mapping_key) or len(mapping_key.encode()) > 128:
            raise HostRejected(
                "invalid mapping key %s on output `%s`: must match ^[A-Za-z0-9_]+$ and be at "
                "most 128 bytes" % (json.dumps(mapping_key), output)
            )
        if (output, mapping_key) in self._keys:
            raise HostRejected("duplicate mapping key `%s` on output `%s`" % (mapping_key, output))
        if self._reject is not None:
            message = self._reject(output, mapping_key, value)
            if message:
                raise HostRejected(message)
        self._keys.add((output, mapping_key))
        self.yielded.append((output, mapping_key, value))


class RunResult:
    """What one native run gave.

    ``outputs``: non-dynamic outputs by name (decoded); ``yielded``: dynamic values yielded
    during the run as ``(output, mapping_key, value)``; ``returned``: dynamic values returned at
    the end, same shape; ``logs``: ``(level, message)``; ``events``: the events the op logged,
    in order; ``error``: ``(kind, message)`` when the op failed (kind is ``failed``,
    ``retry-requested`` or ``bad-input``), else ``None``. An optional output the op left out is
    not in ``outputs``.
    """

    def __init__(self, outputs, yielded, returned, host, error):
        self.outputs = outputs
        self.yielded = yielded
        self.returned = returned
        self.logs = host.logs
        self.events = host.events
        self._metadata = host.metadata
        self.error = error

    def output_metadata(self, output_name="result", mapping_key=None):
        """The metadata attached to an output (to its value with ``mapping_key``, for a dynamic
        one), as ``{label: MetadataValue}``; empty when there is none."""
        return dict(self._metadata.get((output_name, mapping_key), {}))

    @property
    def ok(self):
        return self.error is None

    @property
    def value(self):
        """The ``result`` output; an AssertionError when the op failed."""
        if self.error is not None:
            raise AssertionError("the op failed: %s: %s" % self.error)
        return self.outputs["result"]

    @property
    def dynamic(self):
        """Every dynamic value, yielded then returned, as ``(output, mapping_key, value)``."""
        return self.yielded + self.returned

    def __repr__(self):
        return "RunResult(outputs=%r, dynamic=%r, error=%r)" % (
            self.outputs,
            self.dynamic,
            self.error,
        )


def run(op, inputs=None, config=None, *, tags=None, run_id="test-run", step_key=None,
        mapping_keys=(), attempt=1, reject=None, refuse=None, raw_inputs=None, raw_config=None):
    """Runs ``op`` once through the SDK's dispatch. ``inputs`` and ``config`` are Python values
    (encoded to CBOR here); ``raw_inputs``/``raw_config`` give CBOR bytes as they are; ``tags``
    is a dict of the step's tags. ``reject`` and ``refuse``: see :class:`RecordingHost`."""
    if not isinstance(op, OpDefinition):
        raise TypeError("shoal.testing.run takes an op made by @op, not %r" % (op,))
    encoded = {name: cbor.dumps(value) for name, value in (inputs or {}).items()}
    encoded.update(raw_inputs or {})
    if raw_config is None:
        raw_config = cbor.dumps(config if config is not None else {})
    if step_key is None:
        step_key = op.name + "".join("[%s]" % k for k in mapping_keys)
    tags = sorted((tags or {}).items())
    inv = Invocation(run_id, step_key, mapping_keys, attempt, raw_config, tags)
    host = RecordingHost(reject, refuse)
    try:
        result = invoke(op, inv, encoded, host)
    except OpFailed as e:
        return RunResult({}, host.yielded, [], host, (e.kind, e.message))
    outputs = {name: cbor.loads(data) for name, data in result.values}
    returned = [(o, k, cbor.loads(v)) for o, k, v in result.dynamic]
    return RunResult(outputs, host.yielded, returned, host, None)


class BuiltOpContext(OpContext):
    """A context made by :func:`build_op_context`: it records what the op logs, and binds to
    the op it is passed to (``my_op(context, ...)``)."""

    __slots__ = ("_host",)

    def __init__(self, host, **where):
        super().__init__(op_name=None, step=Collector(None, host), **where)
        self._host = host

    def bind(self, defn):
        self.op_name = defn.name
        self._step = Collector(defn, self._host)

    def get_events(self):
        """The events the op logged, in order (Dagster's ``get_events``)."""
        return list(self._host.events)

    def get_output_metadata(self, output_name="result", mapping_key=None):
        """The metadata attached to an output, as ``{label: MetadataValue}`` (Dagster's
        ``get_output_metadata``)."""
        return dict(self._host.metadata.get((output_name, mapping_key), {}))

    @property
    def logs(self):
        """The log lines, as ``(level, message)``."""
        return self._host.logs


def build_op_context(op_config=None, *, tags=None, run_id="test-run", mapping_key=None,
                     attempt=1, refuse=None):
    """Dagster's ``build_op_context``: a context to call an op's function with directly,
    ``my_op(build_op_context(tags={"env": "prod"}), ...)``, then read what it logged with
    ``get_events()`` and ``get_output_metadata(...)``. Unlike :func:`run`, nothing is encoded,
    checked or collected: the function's return value (or generator) is what you get."""
    mapping_keys = [mapping_key] if mapping_key is not None else []
    return BuiltOpContext(
        RecordingHost(refuse=refuse),
        run_id=run_id,
        step_key="",
        mapping_keys=mapping_keys,
        attempt=attempt,
        op_config=dict(op_config or {}),
        tags=sorted((tags or {}).items()),
    )


def describe(ops):
    """What the component's ``describe`` returns, as dicts (schemas parsed from JSON); ``ops`` is
    a list of ops or the class ``export()`` returned."""
    ops = getattr(ops, "ops", ops)
    out = []
    for defn in ops:
        out.append(
            {
                "name": defn.name,
                "description": defn.description,
                "inputs": [
                    {"name": i.name, "description": i.description, "schema": _parse(i.schema)}
                    for i in defn.inputs
                ],
                "outputs": [
                    {
                        "name": o.name,
                        "dynamic": o.dynamic,
                        "description": o.description,
                        "schema": _parse(o.schema),
                        "required": o.required,
                    }
                    for o in defn.outputs
                ],
                "config_schema": _parse(defn.config_schema),
            }
        )
    return out


def _parse(text):
    return None if text is None else json.loads(text)
