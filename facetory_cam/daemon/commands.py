"""Control commands posted by the API, tray or CLI, applied by the pipeline between frames.

Commands are validated where they are made (a bad look never reaches the queue);
the processing thread drains the queue before each frame, so a frame is always
rendered with one consistent state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from facetory_cam.looks.schema import Background, Layers, Look


@dataclass(frozen=True)
class SetLook:
    look: Look | None  # None: no makeup


@dataclass(frozen=True)
class SetIntensity:
    intensity: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.intensity <= 1.0:
            raise ValueError(f"intensity must be within 0..1, got {self.intensity}")


@dataclass(frozen=True)
class SetBypass:
    bypass: bool  # True: frames go out untouched (tracking paused too)


@dataclass(frozen=True)
class SetLayer:
    layer: str
    enabled: bool


@dataclass(frozen=True)
class SetSource:
    index: int  # which source of the pipeline
    spec: str


TOGGLES = frozenset(Layers.model_fields) | {"background"}

Command = SetLook | SetIntensity | SetBypass | SetLayer | SetSource


@dataclass(frozen=True)
class ControlState:
    """What the user chose; ``effective_look`` is what the renderer gets."""

    look: Look | None = None
    intensity: float = 1.0
    bypass: bool = False
    disabled_layers: frozenset[str] = field(default_factory=frozenset)

    def apply(self, cmd: Command) -> ControlState:
        if isinstance(cmd, SetLook):
            return replace(self, look=cmd.look)
        if isinstance(cmd, SetIntensity):
            return replace(self, intensity=cmd.intensity)
        if isinstance(cmd, SetBypass):
            return replace(self, bypass=cmd.bypass)
        if isinstance(cmd, SetLayer):
            if cmd.layer not in TOGGLES:
                raise ValueError(f"unknown layer {cmd.layer!r}; one of {', '.join(sorted(TOGGLES))}")
            layers = self.disabled_layers - {cmd.layer} if cmd.enabled else self.disabled_layers | {cmd.layer}
            return replace(self, disabled_layers=frozenset(layers))
        return self

    def effective_look(self) -> Look | None:
        if self.look is None:
            return None
        update: dict[str, object] = {"intensity": self.look.intensity * self.intensity}
        off = {k: None for k in self.disabled_layers if k in Layers.model_fields}
        if off:
            update["layers"] = self.look.layers.model_copy(update=off)
        if "background" in self.disabled_layers:
            update["background"] = Background()
        return self.look.model_copy(update=update)
