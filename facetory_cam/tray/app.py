"""The tray icon process (``facetory tray``): pystray glue over the menu model, polling the daemon.

The tray is its own process so that a crash or a missing desktop never touches the camera.
It polls the state every few seconds (the panel or the CLI may change it too), rebuilds the
menu only when something changed, and runs clicks on worker threads so a slow daemon never
freezes the icon. pystray is imported lazily: the menu model and its tests need no display.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageOps

from facetory_cam.tray.client import ApiClient
from facetory_cam.tray.menu import Action, Effects, MenuItem, TrayView, build_menu, fetch_view, perform, title_of

log = logging.getLogger(__name__)

__all__ = ["ARTWORK", "TrayApp", "draw_icon", "icon_image", "snapshot_dir"]

# The repository's top-level tray/ folder (absent from an installed wheel: then the icon is drawn).
ARTWORK = Path(__file__).resolve().parents[2] / "tray" / "facetory-tray.png"
DEFAULT_INTERVAL_S = 3.0


def draw_icon(size: int = 64) -> Image.Image:
    """The tray artwork: a rose rounded square with a pair of lips, drawn so it works without the PNG."""
    scale = 4  # draw large, shrink: smooth edges without antialiasing support in ImageDraw
    s = size * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0, 0, s - 1, s - 1), radius=s // 5, fill=(214, 92, 122, 255))
    cx, cy, w, h = s / 2, s * 0.55, s * 0.62, s * 0.30
    upper = [
        (cx - w / 2, cy),
        (cx - w / 4, cy - h / 2),
        (cx - w / 16, cy - h / 2.6),
        (cx, cy - h / 4),
        (cx + w / 16, cy - h / 2.6),
        (cx + w / 4, cy - h / 2),
        (cx + w / 2, cy),
    ]
    d.polygon(upper, fill=(255, 240, 244, 255))
    d.chord((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), 0, 180, fill=(255, 240, 244, 255))
    d.line((cx - w / 2, cy, cx + w / 2, cy), fill=(150, 40, 70, 255), width=max(scale * 2, s // 40))
    return img.resize((size, size), Image.Resampling.LANCZOS)


def icon_image(active: bool = True, *, artwork: Path = ARTWORK) -> Image.Image:
    """The icon from the artwork file (drawn when missing); greyed out when the filter is off or unreachable."""
    try:
        with Image.open(artwork) as f:
            img = f.convert("RGBA")
    except (OSError, ValueError):
        img = draw_icon()
    if active:
        return img
    grey = ImageOps.grayscale(img).convert("RGBA")
    grey.putalpha(img.getchannel("A").point(lambda a: a * 2 // 3))
    return grey


def snapshot_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_pictures_dir()) / "Facetory"


def _to_pystray(items: tuple[MenuItem, ...], on_click: Callable[[Action], None]) -> Any:
    import pystray

    def entry(item: MenuItem) -> Any:
        if item.separator:
            return pystray.Menu.SEPARATOR
        if item.submenu:
            return pystray.MenuItem(item.label, pystray.Menu(*(entry(i) for i in item.submenu)), enabled=item.enabled)
        action = item.action

        def clicked(_icon: Any, _item: Any) -> None:
            if action is not None:
                on_click(action)

        checked = None if item.checked is None else (lambda _i, value=item.checked: value)
        return pystray.MenuItem(
            item.label, clicked, checked=checked, radio=item.radio, enabled=item.enabled, default=item.default
        )

    return pystray.Menu(*(entry(i) for i in items))


class TrayApp:
    """One tray icon over one daemon; :meth:`run` blocks until Quit (or :meth:`stop`)."""

    def __init__(
        self,
        client: ApiClient,
        *,
        interval: float = DEFAULT_INTERVAL_S,
        open_url: Callable[[str], Any] = webbrowser.open,
        pictures: Path | None = None,
        artwork: Path = ARTWORK,
    ) -> None:
        self.client = client
        self.interval = interval
        self.artwork = artwork
        self.effects = Effects(open_url=open_url, snapshot_dir=pictures or snapshot_dir(), quit=self.stop)
        self.view = TrayView(error="not asked yet")
        self.items: tuple[MenuItem, ...] = build_menu(self.view)
        self.icon: Any = None
        self.refreshes = 0
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._ui_lock = threading.Lock()  # pystray's X backend mishandles updates racing with stop()
        self._poller: threading.Thread | None = None

    def create_icon(self) -> Any:
        """The pystray icon (backend chosen by pystray, or by PYSTRAY_BACKEND)."""
        import pystray

        self.icon = pystray.Icon(
            "facetory",
            icon=icon_image(False, artwork=self.artwork),
            title=title_of(self.view),
            menu=_to_pystray(self.items, self.click),
        )
        return self.icon

    def refresh(self) -> TrayView:
        """Ask the daemon again and update the icon when anything changed."""
        view = fetch_view(self.client)
        with self._lock:
            changed = view != self.view
            self.view = view
            self.refreshes += 1
            if changed:
                self.items = build_menu(view)
        if changed:
            active = view.reachable and bool(view.state and view.state.get("enabled", True))
            with self._ui_lock:
                icon = self.icon
                if icon is not None and not self._stopping.is_set():
                    icon.menu = _to_pystray(self.items, self.click)
                    icon.title = title_of(view)
                    icon.icon = icon_image(active, artwork=self.artwork)
                    icon.update_menu()
        return view

    def click(self, action: Action) -> None:
        """Run a menu action off the UI thread, then refresh at once."""
        if action.kind == "retry":
            self._wake.set()
            return
        threading.Thread(target=self._perform, args=(action,), name="tray-action", daemon=True).start()

    def _perform(self, action: Action) -> None:
        message = perform(self.client, action, self.effects)
        if message:
            log.info("%s", message)
            icon = self.icon
            if icon is not None and getattr(icon, "HAS_NOTIFICATION", False):
                try:
                    icon.notify(message, "Facetory")
                except Exception as exc:  # noqa: BLE001 - a notification is a nicety, never a crash
                    log.debug("notification failed: %s", exc)
        self._wake.set()

    def _poll(self) -> None:
        while not self._stopping.is_set():
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - keep polling; the next round may work
                log.warning("tray refresh failed: %s", exc)
            self._wake.wait(self.interval)
            self._wake.clear()

    def _setup(self, icon: Any) -> None:
        icon.visible = True
        self._poller = threading.Thread(target=self._poll, name="tray-poll", daemon=True)
        self._poller.start()

    def run(self) -> None:
        """Show the icon and poll until stopped; blocks (call from the main thread on macOS)."""
        icon = self.icon if self.icon is not None else self.create_icon()
        icon.run(setup=self._setup)

    def stop(self) -> None:
        """End polling and remove the icon; safe from any thread, more than once."""
        self._stopping.set()
        self._wake.set()
        with self._ui_lock:
            if self.icon is not None:
                self.icon.stop()
                # python-xlib can leave the X backend's final request (destroying its window, which ends
                # its loop) queued but unsent when two threads flush at once; one more flush sends it.
                display = getattr(self.icon, "_display", None)
                if display is not None:
                    with contextlib.suppress(Exception):
                        display.flush()
        poller = self._poller
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout=self.client.timeout * 2 + 1)
