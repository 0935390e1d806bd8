"""Assessment items: what the kit scores (see :mod:`device.items.spec`).

Public API (what the store, the web page and exports use)::

    AssessmentItem, ScoreMeaning, ItemRule      the spec (device.items.spec)
    ITEMS                                       read-only key → item mapping
    DEFAULT_ITEM                                "mass_flexion" (older trials read as this)
    get_item(key_or_item) -> AssessmentItem     UnknownItemError (a FlexscoreError) names
                                                unknown keys and lists the known ones
    item_keys() -> tuple[str, ...]
    resolve_items("all" | key) -> tuple[AssessmentItem, ...]
    register_item(item, replace=False), unregister_item(key)
    MASS_FLEXION, MASS_EXTENSION                the built-in items
"""

from device.items.extension import MASS_EXTENSION
from device.items.flexion import MASS_FLEXION
from device.items.registry import (
    DEFAULT_ITEM,
    ITEMS,
    UnknownItemError,
    get_item,
    item_keys,
    register_item,
    resolve_items,
    unregister_item,
)
from device.items.spec import AssessmentItem, ItemRule, ScoreMeaning

register_item(MASS_FLEXION)
register_item(MASS_EXTENSION)

__all__ = [
    "DEFAULT_ITEM",
    "ITEMS",
    "MASS_EXTENSION",
    "MASS_FLEXION",
    "AssessmentItem",
    "ItemRule",
    "ScoreMeaning",
    "UnknownItemError",
    "get_item",
    "item_keys",
    "register_item",
    "resolve_items",
    "unregister_item",
]
