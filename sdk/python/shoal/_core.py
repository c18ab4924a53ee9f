"""Ops, their declarations and the dispatch that runs one: pure Python, no component bindings.

The component glue (``_component``) and the test helper (``testing``) both call
:func:`invoke` with a *host*: an object with ``log(level, message)``,
``yield_output(output, mapping_key, cbor_bytes)``, ``log_event(event)`` (an event of
``shoal.events``) and ``add_output_metadata(output, mapping_key, entries)`` (entries as
``[(label, MetadataValue)]``), the last three raising :class:`HostRejected` when the host
refuses what they carry.
"""

import collections.abc
import dataclasses
import sys
import traceback
import types
import typing

from . import cbor
from .events import AssetMaterialization, AssetObservation, ExpectationResult, metadata_entries
from .schema import _EMPTY, ConversionError, _clean_doc, convert, schema_json

__all__ = [
    "op",
    "In",
    "Out",
    "DynamicOut",
    "Output",
    "DynamicOutput",
    "OpContext",
    "OpError",
    "Failure",
    "RetryRequested",
    "BadInput",
    "YieldRejected",
    "EventRejected",
    "OpDefinition",
    "registered_ops",
]

T = typing.TypeVar("T")

_CO_VARARGS = 0x04
_CO_VARKEYWORDS = 0x08
_CO_GENERATOR = 0x20

#: Added to an ImportError's message inside a component (set by ``_component``).
IMPORT_HINT = ""

#: The output an op with a single output produces, and the default ``output_name``.
DEFAULT_OUTPUT = "result"

# ---------------------------------------------------------------------------------------------
# Errors


class OpError(Exception):
    """An error the op returns to the host as data. Raise a subclass; this base means `failed`."""

    kind = "failed"

    def __init__(self, message=""):
        super().__init__(message)
        self.message = str(message)


class Failure(OpError):
    """The op failed; retrying will not help (WIT ``op-error::failed``)."""

    kind = "failed"


class RetryRequested(OpError):
    """A transient failure: run the step again if its retry policy allows
    (WIT ``op-error::retry-requested``)."""

    kind = "retry-requested"


class BadInput(OpError):
    """An input or the config does not have the shape the op expects
    (WIT ``op-error::bad-input``)."""

    kind = "bad-input"


class YieldRejected(Failure):
    """Raised at the ``yield`` of a dynamic output that the host rejected (a bad or duplicate
    mapping key, an output past a limit...). The step fails with the host's message whatever
    the op does next, so let it propagate."""


class EventRejected(Failure):
    """Raised by ``context.log_event`` and ``context.add_output_metadata`` when the event or
    metadata cannot be recorded (the host refused it, or it names an output or mapping key it
    cannot go to). Unlike a rejected yield, the op may catch it and go on."""


class HostRejected(Exception):
    """Raised by a host's ``yield_output``, ``log_event`` or ``add_output_metadata`` when the
    host refused what it was given."""


# ---------------------------------------------------------------------------------------------
# Declarations


class In:
    """Declares an input: ``@op(ins={"piece": In(description="...")})``. The input itself is the
    function parameter of that name; ``type`` overrides its annotation for the schema and check."""

    def __init__(self, type=_EMPTY, description=""):
        self.type = type
        self.description = description


class Out:
    """Declares a (non-dynamic) output: ``@op(out=Out(list[int], description="..."))`` or, for
    several, ``@op(out={"a": Out(), "b": DynamicOut()})``.

    ``is_required=False`` lets the op leave the output out: by not yielding its ``Output``, or by
    returning ``None`` for it. The steps that read it are then skipped, not failed."""

    dynamic = False

    def __init__(self, type=_EMPTY, description="", is_required=True):
        if not isinstance(is_required, bool):
            raise TypeError("is_required is a bool, not %r" % (is_required,))
        self.type = type
        self.description = description
        self.is_required = is_required


class DynamicOut(Out):
    """Declares a dynamic output: the op yields any number of :class:`DynamicOutput` values for
    it, and a job must ``map`` or ``collect`` it. ``type`` is the type of each element.
    ``is_required=False``: when the op yields no value for it, what maps or collects it is
    skipped (a required one with no values gives zero clones and an empty collect)."""

    dynamic = True


class Output(typing.Generic[T]):
    """A value of a non-dynamic output, yielded by a generator op:
    ``yield Output(value, output_name="a", metadata={"rows": 3})`` (the metadata is attached to
    the output, as ``context.add_output_metadata`` does)."""

    __slots__ = ("value", "output_name", "metadata")

    def __init__(self, value, output_name=DEFAULT_OUTPUT, metadata=None):
        self.value = value
        self.output_name = output_name
        self.metadata = metadata_entries(metadata)

    def __repr__(self):
        return "Output(%r, output_name=%r)" % (self.value, self.output_name)


class DynamicOutput(typing.Generic[T]):
    """One element of a dynamic output: ``yield DynamicOutput(value, mapping_key="k")``. The
    mapping key must match ``^[A-Za-z0-9_]+$`` and be unique on its output; ``metadata`` (a
    dict) is attached to this value before it reaches the host."""

    __slots__ = ("value", "mapping_key", "output_name", "metadata")

    def __init__(self, value, mapping_key, output_name=DEFAULT_OUTPUT, metadata=None):
        self.value = value
        self.mapping_key = mapping_key
        self.output_name = output_name
        self.metadata = metadata_entries(metadata)

    def __repr__(self):
        return "DynamicOutput(%r, mapping_key=%r, output_name=%r)" % (
            self.value,
            self.mapping_key,
            self.output_name,
        )


@dataclasses.dataclass(frozen=True)
class InputDefinition:
    name: str
    description: str
    annotation: typing.Any
    schema: typing.Optional[str]


@dataclasses.dataclass(frozen=True)
class OutputDefinition:
    name: str
    dynamic: bool
    description: str
    schema: typing.Optional[str]
    required: bool


class OpDefinition:
    """An op: the decorated function plus what ``describe`` says about it. Calling it calls the
    function, so ops stay plain functions in tests."""

    def __init__(self, fn, name, description, inputs, outputs, config_annotation, config_schema,
                 takes_context, takes_config, is_generator):
        self.fn = fn
        self.name = name
        self.description = description
        self.inputs = inputs
        self.outputs = outputs
        self.config_annotation = config_annotation
        self.config_schema = config_schema
        self.takes_context = takes_context
        self.takes_config = takes_config
        self.is_generator = is_generator
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", name)
        self.__qualname__ = getattr(fn, "__qualname__", name)
        self.__module__ = getattr(fn, "__module__", None)
        self.__wrapped__ = fn

    def __call__(self, *args, **kwargs):
        if self.takes_context:
            # A context of `shoal.testing.build_op_context` learns which op it serves (its
            # outputs, for add_output_metadata).
            context = args[0] if args else kwargs.get("context")
            bind = getattr(context, "bind", None)
            if bind is not None:
                bind(self)
        return self.fn(*args, **kwargs)

    def __repr__(self):
        return "<op %s>" % self.name

    def output(self, name):
        for o in self.outputs:
            if o.name == name:
                return o
        return None


# Every op defined, per module, in definition order: `export()` lists a module's ops.
_REGISTRY = {}


def registered_ops(module_name):
    """The ops defined in ``module_name``, in definition order."""
    return list(_REGISTRY.get(module_name, ()))


def _hints(fn):
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:
        return dict(getattr(fn, "__annotations__", {}))


def _iterated_type(annotation):
    """``T`` of ``Iterator[X[T]]``/``Generator[X[T], ...]``/``Iterable[X[T]]``, with X the
    wrapper class, as ``(X, T)``; ``(None, None)`` otherwise."""
    origin = typing.get_origin(annotation)
    abc = collections.abc
    if origin not in (abc.Iterator, abc.Generator, abc.Iterable):
        return None, None
    args = typing.get_args(annotation)
    if not args:
        return None, None
    item = args[0]
    wrapper = typing.get_origin(item)
    item_args = typing.get_args(item)
    if wrapper in (Output, DynamicOutput) and item_args:
        return wrapper, item_args[0]
    return None, None


def _make_op(fn, name, out, ins, description):
    if not callable(fn) or not hasattr(fn, "__code__"):
        raise TypeError("@op decorates a function, not %r" % (fn,))
    name = name or fn.__name__
    code = fn.__code__
    if code.co_flags & (_CO_VARARGS | _CO_VARKEYWORDS):
        raise TypeError("op `%s`: *args and **kwargs are not supported; name every input" % name)
    if code.co_posonlyargcount:
        raise TypeError("op `%s`: positional-only parameters are not supported" % name)
    params = list(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
    hints = _hints(fn)
    ins = dict(ins or {})

    takes_context = bool(params) and params[0] == "context"
    if "context" in params[1:]:
        raise TypeError("op `%s`: `context` must be the first parameter" % name)
    takes_config = "config" in params
    input_names = [p for p in params if p not in ("context", "config")]
    unknown = sorted(set(ins) - set(input_names))
    if unknown:
        raise TypeError(
            "op `%s`: ins names %s, which %s not parameter(s) of the function"
            % (name, ", ".join("`%s`" % u for u in unknown), "is" if len(unknown) == 1 else "are")
        )

    inputs = []
    for p in input_names:
        decl = ins.get(p)
        annotation = hints.get(p, _EMPTY)
        if decl is not None and decl.type is not _EMPTY:
            annotation = decl.type
        inputs.append(
            InputDefinition(
                name=p,
                description=decl.description if decl is not None else "",
                annotation=annotation,
                schema=schema_json(annotation),
            )
        )

    is_generator = bool(code.co_flags & _CO_GENERATOR)
    returns = hints.get("return", _EMPTY)
    if out is None:
        out = Out()
    if isinstance(out, Out):
        outs = {DEFAULT_OUTPUT: out}
        single = True
    elif isinstance(out, dict) and out and all(isinstance(o, Out) for o in out.values()):
        outs = out
        single = False
    else:
        raise TypeError(
            "op `%s`: out= takes Out(), DynamicOut() or a non-empty dict of them by name" % name
        )
    outputs = []
    for out_name, decl in outs.items():
        annotation = decl.type
        if annotation is _EMPTY and single:
            wrapper, item = _iterated_type(returns)
            if wrapper is not None:
                expected = DynamicOutput if decl.dynamic else Output
                if wrapper is expected:
                    annotation = item
            elif not decl.dynamic and not is_generator:
                annotation = returns
        outputs.append(
            OutputDefinition(
                name=out_name,
                dynamic=decl.dynamic,
                description=decl.description,
                schema=schema_json(annotation),
                required=decl.is_required,
            )
        )

    config_annotation = hints.get("config", _EMPTY) if takes_config else _EMPTY
    if description is None:
        description = _clean_doc(fn.__doc__) if fn.__doc__ else ""
    definition = OpDefinition(
        fn=fn,
        name=name,
        description=description,
        inputs=inputs,
        outputs=outputs,
        config_annotation=config_annotation,
        config_schema=schema_json(config_annotation) if takes_config else None,
        takes_context=takes_context,
        takes_config=takes_config,
        is_generator=is_generator,
    )
    _REGISTRY.setdefault(getattr(fn, "__module__", None), []).append(definition)
    return definition


def op(fn=None, *, name=None, out=None, ins=None, description=None):
    """Declares an op. ``@op`` or ``@op(name=..., out=..., ins=..., description=...)``.

    The function's parameters are its inputs (the job wires each by name), except ``context``
    (first parameter; an :class:`OpContext`) and ``config`` (the op's config table, as a dict or
    as the annotated dataclass). The docstring is the description. ``out`` is ``Out()`` (the
    default: one output, ``result``, holding the return value), ``DynamicOut()`` (one dynamic
    output, filled by yielding :class:`DynamicOutput`) or a dict of them by name (yield
    :class:`Output` / :class:`DynamicOutput` with ``output_name``, or return a tuple in their
    order).
    """

    def wrap(f):
        return _make_op(f, name, out, ins, description)

    if fn is not None:
        return wrap(fn)
    return wrap


# ---------------------------------------------------------------------------------------------
# The context an op sees


_LEVELS = ("trace", "debug", "info", "warn", "error")


class OpLogger:
    """``context.log``: messages go to the host's log, attributed to the step."""

    __slots__ = ("_host",)

    def __init__(self, host):
        self._host = host

    def _log(self, level, message, args):
        if args:
            message = message % args
        self._host.log(level, str(message))

    def trace(self, message, *args):
        self._log("trace", message, args)

    def debug(self, message, *args):
        self._log("debug", message, args)

    def info(self, message, *args):
        self._log("info", message, args)

    def warn(self, message, *args):
        self._log("warn", message, args)

    warning = warn

    def error(self, message, *args):
        self._log("error", message, args)

    exception = error


class OpContext:
    """Where a step sits in the run, as Dagster's ``OpExecutionContext`` names it, and what the
    op tells the host beside its values: output metadata and events."""

    __slots__ = (
        "op_name", "run_id", "step_key", "mapping_keys", "attempt", "op_config", "tags", "log",
        "_step",
    )

    def __init__(self, op_name, run_id, step_key, mapping_keys, attempt, op_config, tags, step):
        self.op_name = op_name
        self.run_id = run_id
        self.step_key = step_key
        self.mapping_keys = list(mapping_keys)
        self.attempt = attempt
        self.op_config = op_config
        #: The step's tags (job's, overridden by the op's, by the run's), read-only.
        self.tags = types.MappingProxyType(dict(tags))
        self.log = OpLogger(step.host)
        self._step = step

    @property
    def mapping_key(self):
        """The innermost mapping key of this clone, or ``None`` when the step is not mapped."""
        return self.mapping_keys[-1] if self.mapping_keys else None

    def get_mapping_key(self):
        return self.mapping_key

    @property
    def retry_number(self):
        """0 on the first attempt, 1 on the first retry, and so on."""
        return self.attempt - 1

    def get_tag(self, key):
        """The value of tag ``key``, or ``None`` when the step has no such tag."""
        return self.tags.get(key)

    def has_tag(self, key):
        return key in self.tags

    def add_output_metadata(self, metadata, output_name=None, mapping_key=None):
        """Attaches ``metadata`` (a dict of label to value) to an output: the only one when
        ``output_name`` is not given; for a dynamic output, to its value with ``mapping_key``,
        before that value is yielded. Adds to earlier metadata; a label given again replaces its
        value. Raises :class:`EventRejected` when it cannot be attached."""
        self._step.add_metadata(output_name, mapping_key, metadata_entries(metadata))

    def log_event(self, event):
        """Records ``event`` (an :class:`AssetMaterialization`, :class:`AssetObservation` or
        :class:`ExpectationResult`) for the step now. Raises :class:`EventRejected` when the
        host refuses it."""
        if not isinstance(event, (AssetMaterialization, AssetObservation, ExpectationResult)):
            raise TypeError(
                "log_event takes an AssetMaterialization, AssetObservation or "
                "ExpectationResult, not %r" % (event,)
            )
        self._step.log_event(event)

    def __repr__(self):
        return "OpContext(op=%r, step_key=%r, attempt=%d)" % (
            self.op_name,
            self.step_key,
            self.attempt,
        )


# ---------------------------------------------------------------------------------------------
# Dispatch


class Invocation:
    """What the host passes to one run: where the step sits, its config (CBOR) and its tags
    (``(key, value)`` pairs)."""

    __slots__ = ("run_id", "step_key", "mapping_keys", "attempt", "config", "tags")

    def __init__(self, run_id="run", step_key="", mapping_keys=(), attempt=1, config=b"\xa0",
                 tags=()):
        self.run_id = run_id
        self.step_key = step_key
        self.mapping_keys = list(mapping_keys)
        self.attempt = attempt
        self.config = config
        self.tags = list(tags)


class OpFailed(Exception):
    """The run's error, as the WIT variant: ``kind`` is ``failed``, ``retry-requested`` or
    ``bad-input``."""

    def __init__(self, kind, message):
        super().__init__("%s: %s" % (kind, message))
        self.kind = kind
        self.message = message


class Result:
    """A successful run: ``values`` as (name, CBOR) in declaration order, ``dynamic`` (the
    returned dynamic values) as (output, mapping key, CBOR)."""

    __slots__ = ("values", "dynamic")

    def __init__(self, values, dynamic):
        self.values = values
        self.dynamic = dynamic


def _dataclass_to_map(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return NotImplemented


def _to_cbor(value):
    """Values as CBOR; dataclass instances (anywhere inside) become maps."""
    return cbor.dumps(value, default=_dataclass_to_map)


def _encode_output(defn, output, key, value):
    try:
        return _to_cbor(value)
    except cbor.CBOREncodeError as e:
        where = "output `%s`" % output if key is None else "output `%s` [%s]" % (output, key)
        raise OpFailed("failed", "op `%s`: %s: %s" % (defn.name, where, e)) from None


def _decode_config(defn, inv):
    try:
        raw = cbor.loads(inv.config)
    except cbor.CBORDecodeError as e:
        raise OpFailed("bad-input", "op `%s`: config: invalid CBOR: %s" % (defn.name, e)) from None
    if not isinstance(raw, dict):
        raise OpFailed(
            "bad-input", "op `%s`: config: expected a map, found %s" % (defn.name, type(raw).__name__)
        )
    return raw


def _bad_config(defn, e):
    if e.path:
        return OpFailed("bad-input", "op `%s`: config field `%s`: %s" % (defn.name, e.path, e.message))
    return OpFailed("bad-input", "op `%s`: config: %s" % (defn.name, e.message))


def _arguments(defn, inv, inputs, step):
    """The keyword arguments of the op's function, and the raw config."""
    raw_config = _decode_config(defn, inv)
    kwargs = {}
    for decl in defn.inputs:
        if decl.name not in inputs:
            raise OpFailed("bad-input", "op `%s`: input `%s` was not given" % (defn.name, decl.name))
        try:
            value = cbor.loads(inputs[decl.name])
        except cbor.CBORDecodeError as e:
            raise OpFailed(
                "bad-input", "op `%s`: input `%s`: invalid CBOR: %s" % (defn.name, decl.name, e)
            ) from None
        try:
            kwargs[decl.name] = convert(value, decl.annotation)
        except ConversionError as e:
            where = " at `%s`" % e.path if e.path else ""
            raise OpFailed(
                "bad-input", "op `%s`: input `%s`%s: %s" % (defn.name, decl.name, where, e.message)
            ) from None
    if defn.takes_config:
        try:
            kwargs["config"] = convert(raw_config, defn.config_annotation)
        except ConversionError as e:
            raise _bad_config(defn, e) from None
    if defn.takes_context:
        kwargs["context"] = OpContext(
            op_name=defn.name,
            run_id=inv.run_id,
            step_key=inv.step_key,
            mapping_keys=inv.mapping_keys,
            attempt=inv.attempt,
            op_config=raw_config,
            tags=inv.tags,
            step=step,
        )
    return kwargs


class Collector:
    """Gathers one run's outputs, yielding dynamic values to the host as they come, and passes
    its metadata and events on."""

    def __init__(self, defn, host):
        self.defn = defn
        self.host = host
        self.values = {}
        self.dynamic = []
        self.yielded = set()  # (output, mapping key) already handed to the host

    def _rejected(self, message):
        return EventRejected("op `%s`: %s" % (self.defn.name, message))

    def add_metadata(self, output_name, mapping_key, entries):
        """Checks where metadata goes (the SDK knows the outputs and what was yielded) and hands
        it to the host."""
        if self.defn is not None:
            output_name = self._metadata_target(output_name, mapping_key)
        # else a build_op_context context not passed to an op: nothing to check against
        try:
            self.host.add_output_metadata(output_name or DEFAULT_OUTPUT, mapping_key, entries)
        except HostRejected as e:
            raise EventRejected(str(e)) from None

    def _metadata_target(self, output_name, mapping_key):
        """The output metadata goes to, or :class:`EventRejected` when it cannot go there."""
        outputs = self.defn.outputs
        if output_name is None:
            if len(outputs) != 1:
                raise self._rejected(
                    "add_output_metadata needs output_name: the op has outputs %s"
                    % ", ".join("`%s`" % o.name for o in outputs)
                )
            output_name = outputs[0].name
        decl = self.defn.output(output_name)
        if decl is None:
            raise self._rejected(
                "metadata for output `%s`, which is not declared (outputs: %s)"
                % (output_name, ", ".join("`%s`" % o.name for o in outputs))
            )
        if decl.dynamic and mapping_key is None:
            raise self._rejected(
                "metadata for dynamic output `%s` needs the mapping_key of its value" % output_name
            )
        if not decl.dynamic and mapping_key is not None:
            raise self._rejected(
                "output `%s` is not dynamic: its metadata takes no mapping_key (got %r)"
                % (output_name, mapping_key)
            )
        if (output_name, mapping_key) in self.yielded:
            raise self._rejected(
                "metadata for output `%s` [%s], which was already yielded: attach it before"
                % (output_name, mapping_key)
            )
        return output_name

    def log_event(self, event):
        try:
            self.host.log_event(event)
        except HostRejected as e:
            raise EventRejected(str(e)) from None

    def output_decl(self, name, dynamic, what):
        decl = self.defn.output(name)
        if decl is None:
            declared = ", ".join("`%s`" % o.name for o in self.defn.outputs)
            raise OpFailed(
                "failed",
                "op `%s`: %s names output `%s`, which is not declared (outputs: %s)"
                % (self.defn.name, what, name, declared),
            )
        if decl.dynamic != dynamic:
            if dynamic:
                hint = "it is not dynamic: yield Output(value, output_name=...) for it"
            else:
                hint = "it is dynamic: yield DynamicOutput(value, mapping_key=...) for it"
            raise OpFailed(
                "failed", "op `%s`: %s for output `%s`, but %s" % (self.defn.name, what, name, hint)
            )
        return decl

    def dynamic_value(self, item, now):
        """Yields ``item`` to the host now (``now``) or keeps it for the returned list."""
        if not isinstance(item, DynamicOutput):
            raise OpFailed(
                "failed",
                "op `%s`: a dynamic output takes DynamicOutput values, not %s"
                % (self.defn.name, type(item).__name__),
            )
        self.output_decl(item.output_name, True, "DynamicOutput")
        key = item.mapping_key
        if not isinstance(key, str):
            raise OpFailed(
                "failed",
                "op `%s`: the mapping key of a DynamicOutput is a str, not %s"
                % (self.defn.name, type(key).__name__),
            )
        data = _encode_output(self.defn, item.output_name, key, item.value)
        if item.metadata:
            self.add_metadata(item.output_name, key, item.metadata)
        if now:
            self.host.yield_output(item.output_name, key, data)
            self.yielded.add((item.output_name, key))
        else:
            self.dynamic.append((item.output_name, key, data))

    def value(self, name, value, metadata=()):
        self.output_decl(name, False, "Output")
        if name in self.values:
            raise OpFailed(
                "failed", "op `%s`: output `%s` was produced twice" % (self.defn.name, name)
            )
        data = _encode_output(self.defn, name, None, value)
        if metadata:
            self.add_metadata(name, None, metadata)
        self.values[name] = data

    def returned(self, decl, value):
        """A returned value of non-dynamic output ``decl``: ``None`` leaves an optional one
        out."""
        if isinstance(value, Output):
            self.value(value.output_name, value.value, value.metadata)
        elif value is not None or decl.required:
            self.value(decl.name, value)

    def result(self):
        values = []
        for decl in self.defn.outputs:
            if decl.dynamic:
                continue
            if decl.name not in self.values:
                if not decl.required:
                    continue  # left out: the host skips what reads it
                raise OpFailed(
                    "failed",
                    "op `%s`: output `%s` was never produced (declare it "
                    "Out(is_required=False) to leave it out)" % (self.defn.name, decl.name),
                )
            values.append((decl.name, self.values[decl.name]))
        return Result(values, self.dynamic)


def _run_generator(defn, gen, collector):
    rejected = None
    pending = None
    while True:
        try:
            item = gen.throw(pending) if pending is not None else next(gen)
        except StopIteration as stop:
            returned = stop.value
            break
        if rejected is not None:
            # The op caught the rejection and went on: stop it, the step fails anyway.
            gen.close()
            raise OpFailed("failed", rejected)
        pending = None
        if isinstance(item, DynamicOutput):
            try:
                collector.dynamic_value(item, now=True)
            except HostRejected as e:
                rejected = str(e)
                pending = YieldRejected(rejected)
            except EventRejected as e:
                pending = e  # its metadata was refused: the value is not yielded either
        elif isinstance(item, Output):
            try:
                collector.value(item.output_name, item.value, item.metadata)
            except EventRejected as e:
                pending = e
        else:
            gen.close()
            raise OpFailed(
                "failed",
                "op `%s` yielded a %s; an op yields Output(...) or DynamicOutput(...)"
                % (defn.name, type(item).__name__),
            )
    if rejected is not None:
        raise OpFailed("failed", rejected)
    if returned is not None:
        plain = [o for o in defn.outputs if not o.dynamic]
        if len(plain) == 1 and plain[0].name not in collector.values:
            collector.value(plain[0].name, returned)
        else:
            raise OpFailed(
                "failed",
                "op `%s` is a generator that returned a value; yield Output(value, "
                "output_name=...) instead" % defn.name,
            )


def _take_return(defn, returned, collector):
    outs = defn.outputs
    if len(outs) == 1:
        decl = outs[0]
        if decl.dynamic:
            if returned is not None:
                try:
                    items = list(returned)
                except TypeError:
                    raise OpFailed(
                        "failed",
                        "op `%s` has a dynamic output: yield DynamicOutput values, or return a "
                        "list of them (it returned a %s)" % (defn.name, type(returned).__name__),
                    ) from None
                for item in items:
                    collector.dynamic_value(item, now=False)
        else:
            collector.returned(decl, returned)
        return
    if not isinstance(returned, tuple) or len(returned) != len(outs):
        raise OpFailed(
            "failed",
            "op `%s` has %d outputs (%s): return a tuple of %d values in that order, or yield "
            "Output / DynamicOutput values"
            % (defn.name, len(outs), ", ".join(o.name for o in outs), len(outs)),
        )
    for decl, value in zip(outs, returned):
        if decl.dynamic:
            for item in value or ():
                collector.dynamic_value(item, now=False)
        else:
            collector.returned(decl, value)


def _format_exception(exc):
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def invoke(defn, inv, inputs, host):
    """Runs ``defn`` once: ``inputs`` maps input names to CBOR. Returns a :class:`Result` or
    raises :class:`OpFailed` with the WIT error variant; never raises anything else."""
    try:
        collector = Collector(defn, host)
        kwargs = _arguments(defn, inv, inputs, collector)
        returned = defn.fn(**kwargs)
        if defn.is_generator:
            _run_generator(defn, returned, collector)
        else:
            _take_return(defn, returned, collector)
        return collector.result()
    except OpFailed:
        raise
    except OpError as e:
        raise OpFailed(e.kind, e.message or "op `%s`: %s" % (defn.name, type(e).__name__)) from None
    except (Exception, SystemExit) as e:
        try:
            host.log("error", "op `%s` raised:\n%s" % (defn.name, _format_exception(e)))
        except Exception:
            pass
        text = str(e)
        message = "op `%s`: %s%s" % (defn.name, type(e).__name__, ": " + text if text else "")
        if isinstance(e, ImportError) and IMPORT_HINT:
            message += IMPORT_HINT
        raise OpFailed("failed", message) from None


def find_op(ops, name):
    for defn in ops:
        if defn.name == name:
            return defn
    return None


def module_ops(module_name, ops):
    """The ops an ``export`` lists: the given ones, or those defined in ``module_name``."""
    if not ops:
        ops = registered_ops(module_name)
        if not ops:
            raise TypeError(
                "shoal.export(): module `%s` defines no @op; pass the ops to export" % module_name
            )
    seen = set()
    for defn in ops:
        if not isinstance(defn, OpDefinition):
            raise TypeError("shoal.export() takes ops made by @op, not %r" % (defn,))
        if defn.name in seen:
            raise TypeError("shoal.export(): two ops are named `%s`" % defn.name)
        seen.add(defn.name)
    return list(ops)


def caller_module(depth=2):
    return sys._getframe(depth).f_globals.get("__name__")
