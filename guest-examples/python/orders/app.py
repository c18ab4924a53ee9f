"""Op interface 0.3.0 in Python: a tag, output metadata, asset and expectation events, and
optional outputs. The job is jobs/orders_python.toml.

load_orders reads the `env` tag (default "dev"), attaches metadata to its output and logs a
materialization of warehouse/orders and an expectation; large_orders yields the large orders
(an optional dynamic output: none, and what maps it is skipped); refunds returns the negative
orders, or leaves its optional output out when there are none.
"""

from dataclasses import dataclass, field
from typing import Iterator, Optional

from shoal import (
    AssetMaterialization,
    AssetObservation,
    DynamicOut,
    DynamicOutput,
    ExpectationResult,
    MetadataValue,
    OpContext,
    Out,
    export,
    op,
)


@dataclass
class LoadConfig:
    amounts: list[int] = field(default_factory=lambda: [120, 35, -10, 80])


@dataclass
class LargeConfig:
    threshold: int = 100


@op
def load_orders(context: OpContext, config: LoadConfig) -> list[dict]:
    """One order per amount of config.amounts, recorded as the asset warehouse/orders."""
    env = context.get_tag("env") or "dev"
    orders = [{"id": i, "amount": a} for i, a in enumerate(config.amounts)]
    rows = "\n".join("| %d | %d |" % (o["id"], o["amount"]) for o in orders)
    context.add_output_metadata(
        {
            "rows": len(orders),
            "env": env,
            "total": sum(config.amounts),
            "preview": MetadataValue.md("| id | amount |\n|---|---|\n" + rows),
        }
    )
    context.log_event(
        AssetMaterialization(
            asset_key=["warehouse", "orders"],
            description="orders loaded from the config",
            partition=env,
            metadata={"rows": len(orders)},
        )
    )
    context.log_event(
        ExpectationResult(
            success=all(a != 0 for a in config.amounts),
            label="amounts_nonzero",
            metadata={"zeros": config.amounts.count(0)},
        )
    )
    return orders


@op(out=DynamicOut(dict, is_required=False))
def large_orders(context: OpContext, orders: list[dict], config: LargeConfig) -> Iterator[DynamicOutput[dict]]:
    """Yields each order of at least config.threshold, keyed order_<id>; none is no output."""
    large = [o for o in orders if o["amount"] >= config.threshold]
    context.log_event(AssetObservation(asset_key=["warehouse", "orders"], metadata={"large": len(large)}))
    for o in large:
        yield DynamicOutput(o, mapping_key="order_%d" % o["id"], metadata={"amount": o["amount"]})


@op
def audit(order: dict) -> str:
    """Describes one large order."""
    return "order %d: %d" % (order["id"], order["amount"])


@op(out=Out(list[dict], is_required=False))
def refunds(orders: list[dict]) -> Optional[list[dict]]:
    """The orders with a negative amount; left out when there are none."""
    negative = [o for o in orders if o["amount"] < 0]
    return negative or None


Op = export()
