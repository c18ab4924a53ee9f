"""Shoal's Python SDK: write ops as Python functions, build them into a Wasm component with
componentize-py.

    from shoal import op, export

    @op
    def double(value: int) -> int:
        "Doubles a number."
        return value * 2

    Op = export()   # componentize-py exports the class named `Op` of the app module

See sdk/python/README.md.
"""

from . import cbor
from ._core import (
    BadInput,
    DynamicOut,
    DynamicOutput,
    EventRejected,
    Failure,
    In,
    OpContext,
    OpDefinition,
    OpError,
    Out,
    Output,
    RetryRequested,
    YieldRejected,
    caller_module,
    module_ops,
    op,
)
from .events import (
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    ExpectationResult,
    MetadataValue,
)

__all__ = [
    "op",
    "export",
    "In",
    "Out",
    "DynamicOut",
    "Output",
    "DynamicOutput",
    "OpContext",
    "OpDefinition",
    "OpError",
    "Failure",
    "RetryRequested",
    "BadInput",
    "YieldRejected",
    "EventRejected",
    "MetadataValue",
    "AssetKey",
    "AssetMaterialization",
    "AssetObservation",
    "ExpectationResult",
    "cbor",
]

__version__ = "0.3.0"


def export(*ops):
    """The class that exports ops from a component: ``Op = export()`` in the app module lists
    every ``@op`` of that module, in definition order; ``Op = export(a, b)`` lists those.

    componentize-py instantiates the app module's ``Op`` for the WIT ``op`` interface. Outside a
    component (plain CPython) the class still lists the ops, as ``Op.ops``, but cannot run them:
    use ``shoal.testing.run`` there.
    """
    ops = module_ops(caller_module(), ops)
    try:
        from . import _component
    except ModuleNotFoundError as e:
        if e.name not in ("wit_world", "componentize_py_types") and not (
            e.name or ""
        ).startswith("wit_world."):
            raise
        _component = None
    if _component is not None:
        cls = _component.op_class(ops)
    else:

        class Op:
            def describe(self):
                raise RuntimeError(
                    "not inside a component: use shoal.testing.describe / shoal.testing.run"
                )

            run = describe

        cls = Op
    cls.ops = ops
    return cls
