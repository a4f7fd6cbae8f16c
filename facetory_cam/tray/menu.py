"""The tray menu as plain data, built from API answers, and the actions its items trigger.

Keeping the model free of pystray means it can be tested without a display and against the
real API; ``app`` only translates :class:`MenuItem` trees into pystray menus. "Quit daemon"
stops the daemon through the API; "Quit tray" ends the tray alone and says so in its label.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from facetory_cam.tray.client import ApiClient, ApiError, ApiUnreachable

__all__ = [
    "INTENSITY_STEPS",
    "Action",
    "Effects",
    "MenuItem",
    "TrayView",
    "build_menu",
    "fetch_view",
    "perform",
    "title_of",
]

INTENSITY_STEPS = (0.25, 0.5, 0.75, 1.0)

ActionKind = Literal["toggle", "look", "intensity", "open_panel", "snapshot", "retry", "quit", "quit_daemon"]


@dataclass(frozen=True)
class Action:
    """What a click asks for; ``value`` is the look id (or None for no makeup) or the intensity."""

    kind: ActionKind
    value: Any = None


@dataclass(frozen=True)
class MenuItem:
    """One entry; ``checked`` None means not checkable; a non-empty ``submenu`` makes it a submenu."""

    label: str
    action: Action | None = None
    checked: bool | None = None
    radio: bool = False
    enabled: bool = True
    default: bool = False
    submenu: tuple[MenuItem, ...] = ()
    separator: bool = False


SEPARATOR = MenuItem("", separator=True)


@dataclass(frozen=True)
class TrayView:
    """Everything the menu shows; ``error`` set means the daemon could not be used."""

    state: dict[str, Any] | None = None
    looks: tuple[dict[str, Any], ...] = ()
    error: str | None = None

    @property
    def reachable(self) -> bool:
        return self.error is None and self.state is not None


def fetch_view(client: ApiClient) -> TrayView:
    """Ask the daemon for its state and library; any failure becomes a view that says why."""
    try:
        state = client.state()
        looks = client.looks()
    except ApiUnreachable as exc:
        return TrayView(error=str(exc))
    except ApiError as exc:
        if exc.status == 401:
            return TrayView(error="the daemon refused the API token (restarted? retry reads the new one)")
        return TrayView(error=f"the daemon answered an error: {exc.detail}")
    return TrayView(state=state, looks=tuple(looks))


def _percent(value: float) -> str:
    return f"{round(value * 100)} %"


def title_of(view: TrayView) -> str:
    """The icon's tooltip: what the camera does right now."""
    if not view.reachable or view.state is None:
        return "Facetory: daemon unreachable"
    s = view.state
    if not s.get("enabled", True):
        return "Facetory: off (camera passes through)"
    name = s.get("look_name") or "no makeup"
    return f"Facetory: {name}, {_percent(float(s.get('intensity', 1.0)))}"


def _look_items(view: TrayView) -> tuple[MenuItem, ...]:
    active = view.state.get("look") if view.state else None
    items = [MenuItem("No makeup", Action("look", None), checked=active is None, radio=True)]
    for look in view.looks:
        usable = not look.get("problem")
        label = str(look.get("name") or look.get("id"))
        items.append(
            MenuItem(
                label if usable else f"{label} (unavailable)",
                Action("look", look["id"]),
                checked=look["id"] == active,
                radio=True,
                enabled=usable,
            )
        )
    return tuple(items)


def _intensity_items(view: TrayView) -> tuple[MenuItem, ...]:
    current = float(view.state.get("intensity", 1.0)) if view.state else math.nan
    return tuple(
        MenuItem(
            _percent(step), Action("intensity", step), checked=math.isclose(current, step, abs_tol=0.005), radio=True
        )
        for step in INTENSITY_STEPS
    )


def build_menu(view: TrayView) -> tuple[MenuItem, ...]:
    """The whole menu for ``view``; when the daemon is down every daemon item is disabled and Retry appears."""
    quit_item = MenuItem("Quit tray (the daemon keeps running)", Action("quit"))
    stop_item = MenuItem("Quit daemon", Action("quit_daemon"), enabled=view.reachable and view.state is not None)
    if not view.reachable or view.state is None:
        return (
            MenuItem("Daemon unreachable", enabled=False),
            MenuItem("Camera filter on", Action("toggle"), checked=False, enabled=False),
            MenuItem("Look", enabled=False, submenu=(MenuItem("(none)", enabled=False),)),
            MenuItem("Intensity", enabled=False, submenu=(MenuItem("(none)", enabled=False),)),
            SEPARATOR,
            MenuItem("Retry now", Action("retry"), default=True),
            MenuItem("Open panel", Action("open_panel"), enabled=False),
            MenuItem("Take snapshot", Action("snapshot"), enabled=False),
            SEPARATOR,
            stop_item,
            quit_item,
        )
    enabled = bool(view.state.get("enabled", True))
    return (
        MenuItem(title_of(view), enabled=False),
        MenuItem("Camera filter on", Action("toggle", not enabled), checked=enabled),
        MenuItem("Look", submenu=_look_items(view)),
        MenuItem("Intensity", submenu=_intensity_items(view)),
        SEPARATOR,
        MenuItem("Open panel", Action("open_panel"), default=True),
        MenuItem("Take snapshot", Action("snapshot")),
        SEPARATOR,
        stop_item,
        quit_item,
    )


@dataclass
class Effects:
    """The outside world an action may touch, injected so tests can watch it."""

    open_url: Callable[[str], Any]
    snapshot_dir: Path
    quit: Callable[[], None] = field(default=lambda: None)


def perform(client: ApiClient, action: Action, effects: Effects) -> str | None:
    """Carry out ``action``; returns a short message for the user (None when there is nothing to say).

    Errors are turned into messages, never raised: a tray click must not crash the tray.
    """
    try:
        if action.kind == "toggle":
            enabled = bool(action.value) if action.value is not None else not client.state().get("enabled", True)
            client.put_state(enabled=enabled)
            return "Camera filter on" if enabled else "Camera filter off"
        if action.kind == "look":
            state = client.put_state(look=action.value)
            return f"Look: {state.get('look_name') or 'no makeup'}"
        if action.kind == "intensity":
            client.put_state(intensity=float(action.value))
            return f"Intensity {_percent(float(action.value))}"
        if action.kind == "open_panel":
            url = client.session_link()
            effects.open_url(url)
            return None
        if action.kind == "snapshot":
            png = client.snapshot()
            effects.snapshot_dir.mkdir(parents=True, exist_ok=True)
            path = effects.snapshot_dir / f"facetory-{datetime.now():%Y%m%d-%H%M%S-%f}.png"
            path.write_bytes(png)
            return f"Snapshot saved to {path}"
        if action.kind == "quit":
            effects.quit()
            return None
        if action.kind == "quit_daemon":
            client.shutdown()
            return "Daemon stopping"
        return None  # retry: the caller refreshes
    except ApiUnreachable as exc:
        return str(exc)
    except ApiError as exc:
        return f"The daemon said: {exc.detail}"
    except OSError as exc:
        return f"Could not save: {exc}"
