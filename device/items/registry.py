"""The registry of assessment items: key → :class:`~device.items.spec.AssessmentItem`."""

from __future__ import annotations

from types import MappingProxyType

from device.errors import FlexscoreError
from device.items.spec import AssessmentItem

_ITEMS: dict[str, AssessmentItem] = {}
ITEMS = MappingProxyType(_ITEMS)  # read-only view; changes only through register_item
DEFAULT_ITEM = "mass_flexion"


class UnknownItemError(FlexscoreError, KeyError):
    """An item key that no registered item has."""

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0]) if self.args else ""


def item_keys() -> tuple[str, ...]:
    """The keys of the registered items, in registration order."""
    return tuple(_ITEMS)


def get_item(item: str | AssessmentItem) -> AssessmentItem:
    """The registered item of a key (a spec is returned as it is).

    :class:`UnknownItemError` names the unknown key and lists the known ones.
    """
    if isinstance(item, AssessmentItem):
        return item
    try:
        return _ITEMS[item]
    except (KeyError, TypeError):
        raise UnknownItemError(
            f"unknown assessment item {item!r} (known: {', '.join(_ITEMS) or 'none'})"
        ) from None


def register_item(item: AssessmentItem, *, replace: bool = False) -> AssessmentItem:
    """Add an item to the registry (tests, extensions). A key already registered by another
    spec is refused unless ``replace``. Returns the item."""
    old = _ITEMS.get(item.key)
    if old is not None and old is not item and not replace:
        raise FlexscoreError(f"an assessment item with the key {item.key!r} is already registered")
    _ITEMS[item.key] = item
    return item


def unregister_item(key: str) -> None:
    """Remove an item (tests that registered one clean up with this). The default item stays."""
    if key == DEFAULT_ITEM:
        raise FlexscoreError(f"the default item {DEFAULT_ITEM!r} cannot be unregistered")
    get_item(key)
    del _ITEMS[key]


def resolve_items(spec: str) -> tuple[AssessmentItem, ...]:
    """The items a CLI/config choice names: one key, or "all" (every registered item)."""
    if spec == "all":
        return tuple(_ITEMS.values())
    return (get_item(spec),)
