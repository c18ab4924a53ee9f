"""The glue between the SDK and componentize-py's bindings of the `op-component` world.

Imported only inside a component build (``wit_world`` and ``componentize_py_types`` exist only
there); ``shoal.export`` falls back to a native stand-in without them.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import emit, events, log, types

from . import _core
from ._core import HostRejected, Invocation, OpFailed, find_op, invoke
from .events import AssetMaterialization, AssetObservation

# A component holds the modules imported while it was built (the app module's imports) and
# nothing else: the host grants no files to import more from.
_core.IMPORT_HINT = (
    " (an op component can import only the modules imported when it was built: import them at"
    " the top of the app module)"
)

_LEVELS = {
    "trace": log.Level.TRACE,
    "debug": log.Level.DEBUG,
    "info": log.Level.INFO,
    "warn": log.Level.WARN,
    "error": log.Level.ERROR,
}

_ERRORS = {
    "failed": types.OpError_Failed,
    "retry-requested": types.OpError_RetryRequested,
    "bad-input": types.OpError_BadInput,
}


_METADATA = {
    "text": events.MetadataValue_Text,
    "int": events.MetadataValue_Int,
    "float": events.MetadataValue_Float,
    "boolean": events.MetadataValue_Boolean,
    "url": events.MetadataValue_Url,
    "path": events.MetadataValue_Path,
    "json": events.MetadataValue_Json,
    "markdown": events.MetadataValue_Markdown,
}


def _entries(entries):
    return [events.MetadataEntry(label, _METADATA[v.kind](v.value)) for label, v in entries]


def _user_event(event):
    if isinstance(event, (AssetMaterialization, AssetObservation)):
        asset = events.AssetEvent(
            list(event.asset_key.path),
            event.description,
            event.partition,
            _entries(event.metadata.items()),
        )
        if isinstance(event, AssetMaterialization):
            return events.UserEvent_AssetMaterialization(asset)
        return events.UserEvent_AssetObservation(asset)
    return events.UserEvent_ExpectationResult(
        events.ExpectationResult(
            event.success, event.label, event.description, _entries(event.metadata.items())
        )
    )


def _call(f, *args):
    """Calls an import returning `result<_, string>`, its error as HostRejected."""
    try:
        f(*args)
    except Err as e:
        raise HostRejected(str(e.value)) from None


class _Host:
    """The host as the SDK's dispatch sees it: the `log`, `emit` and `events` imports."""

    __slots__ = ()

    def log(self, level, message):
        log.log(_LEVELS[level], message)

    def yield_output(self, output, mapping_key, data):
        _call(emit.yield_output, types.DynamicValue(output, mapping_key, data))

    def log_event(self, event):
        _call(events.log_event, _user_event(event))

    def add_output_metadata(self, output, mapping_key, entries):
        _call(events.add_output_metadata, output, mapping_key, _entries(entries))


_HOST = _Host()


def _op_info(defn):
    return types.OpInfo(
        name=defn.name,
        description=defn.description,
        inputs=[types.InputInfo(i.name, i.description, i.schema) for i in defn.inputs],
        outputs=[
            types.OutputInfo(o.name, o.dynamic, o.description, o.schema, o.required)
            for o in defn.outputs
        ],
        config_schema=defn.config_schema,
    )


def op_class(ops):
    """The class componentize-py instantiates for the exported `op` interface."""
    # Built once, when the app module is imported: that happens while componentize-py
    # pre-initialises the component, so every instance starts with it ready.
    infos = [_op_info(defn) for defn in ops]

    class Op(exports.Op):
        def describe(self):
            return list(infos)

        def run(self, name, ctx, inputs):
            defn = find_op(ops, name)
            if defn is None:
                raise Err(types.OpError_Failed("this component has no op `%s`" % name))
            inv = Invocation(
                ctx.run_id,
                ctx.step_key,
                ctx.mapping_keys,
                ctx.attempt,
                ctx.config,
                [(t.key, t.value) for t in ctx.tags],
            )
            named = {}
            for nv in inputs:
                named[nv.name] = nv.value
            try:
                result = invoke(defn, inv, named, _HOST)
            except OpFailed as e:
                raise Err(_ERRORS[e.kind](e.message)) from None
            return types.Outputs(
                [types.NamedValue(n, v) for n, v in result.values],
                [types.DynamicValue(o, k, v) for o, k, v in result.dynamic],
            )

    return Op
