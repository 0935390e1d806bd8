"""One blueprint per area: auth, live, results, history, status, export, validation, help, api."""

from __future__ import annotations

from flask import Blueprint

from device.web.views import api, auth, export, help, history, live, results, status, validation

BLUEPRINTS: tuple[Blueprint, ...] = (
    auth.bp,
    live.bp,
    results.bp,
    history.bp,
    status.bp,
    export.bp,
    validation.bp,
    help.bp,
    api.bp,
)
