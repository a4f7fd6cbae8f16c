"""The API's view of the running pipeline: what the user chose, validated whole before any of it is sent.

The pipeline applies commands between frames on its own thread, so reading its state right
after a change could still show the old one. The control plane therefore mirrors the chosen
state itself (``ControlState.apply`` is pure) and remembers what the pipeline cannot tell:
the library id of the active look and the spec of each source.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from facetory_cam.daemon.commands import (
    TOGGLES,
    Command,
    ControlState,
    SetBypass,
    SetIntensity,
    SetLayer,
    SetLook,
    SetSource,
)
from facetory_cam.looks.schema import Look

__all__ = ["ControlPlane", "Controller", "StateChange", "StateError", "allowed_source_spec"]

# Cameras and the synthetic test camera; files are chosen on the command line, never over HTTP.
_SOURCE_SPEC = re.compile(r"^(\d{1,3}|/dev/video\d{1,3}|scripted(:\d{2,5}x\d{2,5}(@\d{1,3}(\.\d{1,3})?)?)?)$")


def allowed_source_spec(spec: str) -> bool:
    return bool(_SOURCE_SPEC.fullmatch(spec))


class Controller(Protocol):
    """What the API needs from a pipeline (``daemon.pipeline.Pipeline`` is one)."""

    def submit(self, cmd: Command) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...


class StateError(ValueError):
    """A requested change is invalid; nothing was applied."""


_UNSET: Any = object()


@dataclass(frozen=True)
class StateChange:
    """A partial change of the control state; ``_UNSET`` fields stay as they are."""

    look: tuple[str, Look] | None = _UNSET  # (library id, runtime look) or None for no makeup
    intensity: float = _UNSET
    enabled: bool = _UNSET
    layers: Mapping[str, bool] = _UNSET
    source: tuple[int, str] = _UNSET


class ControlPlane:
    """Wraps a controller; thread-safe; ``state()`` is what the next processed frame will use."""

    def __init__(
        self,
        controller: Controller,
        *,
        state: ControlState | None = None,
        look_id: str | None = None,
        sources: Sequence[str] = (),
        switch_sources: bool = True,
    ) -> None:
        self.controller = controller
        self._state = state if state is not None else ControlState()
        self._look_id = look_id if self._state.look is not None else None
        self._sources = list(sources)
        self._switch_sources = switch_sources
        self._lock = threading.Lock()

    @property
    def look_id(self) -> str | None:
        with self._lock:
            return self._look_id

    def state(self) -> dict[str, Any]:
        with self._lock:
            s = self._state
            return {
                "look": self._look_id,
                "look_name": None if s.look is None else s.look.name,
                "intensity": s.intensity,
                "enabled": not s.bypass,
                "layers": {name: name not in s.disabled_layers for name in sorted(TOGGLES)},
                "sources": [{"index": i, "spec": spec} for i, spec in enumerate(self._sources)],
            }

    def stats(self) -> dict[str, Any]:
        return self.controller.snapshot()

    def apply(self, change: StateChange) -> dict[str, Any]:
        """Validate the whole change, then send it; raises StateError and changes nothing when any part is bad."""
        cmds: list[Command] = []
        if change.look is not _UNSET:
            cmds.append(SetLook(None if change.look is None else change.look[1]))
        if change.intensity is not _UNSET:
            try:
                cmds.append(SetIntensity(float(change.intensity)))
            except ValueError as exc:
                raise StateError(str(exc)) from None
        if change.enabled is not _UNSET:
            cmds.append(SetBypass(not change.enabled))
        if change.layers is not _UNSET:
            unknown = sorted(set(change.layers) - TOGGLES)
            if unknown:
                raise StateError(f"unknown layer {unknown[0]!r}; one of {', '.join(sorted(TOGGLES))}")
            cmds.extend(SetLayer(name, bool(on)) for name, on in sorted(change.layers.items()))
        if change.source is not _UNSET:
            index, spec = change.source
            if not 0 <= index < len(self._sources):
                raise StateError(f"no source {index}; this daemon has {len(self._sources)}")
            if not self._switch_sources:
                raise StateError("this pipeline cannot switch sources")
            if not allowed_source_spec(spec):
                raise StateError(
                    "a source is a camera index (0), a device (/dev/video0) or scripted[:WxH[@FPS]];"
                    " files are chosen on the command line"
                )
            cmds.append(SetSource(index, spec))
        with self._lock:
            new = self._state
            for cmd in cmds:
                new = new.apply(cmd)  # raises nothing: every command was checked above
            for cmd in cmds:
                self.controller.submit(cmd)
            self._state = new
            if change.look is not _UNSET:
                self._look_id = None if change.look is None else change.look[0]
            if change.source is not _UNSET:
                self._sources[change.source[0]] = change.source[1]
        return self.state()

    def refresh_look(self, look_id: str, look: Look) -> bool:
        """Re-send the active look after it was edited in the library; True when it was active."""
        with self._lock:
            if self._look_id != look_id:
                return False
            self.controller.submit(SetLook(look))
            self._state = self._state.apply(SetLook(look))
            return True
