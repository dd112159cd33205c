"""REST request models generated from the option dataclasses, so a route takes the same names, defaults, help
and checks as the command line and the Python API (SampleOptions for /api/generate/sample)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from recgen.errors import RecgenError
from recgen.generate.options import SampleOptions

MAX_SAMPLES = 256  # images per /api/generate/sample request (the server's own limit; the library's is larger)


class OptionsRequest(BaseModel):
    """A request whose fields include those of an options dataclass (`options_class`); the dataclass's own
    check runs on every request, its RecgenError becoming a 422 like any other validation error."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    options_class: ClassVar[Any] = None  # set by request_model

    def options(self, **changes: Any):
        names = [f.name for f in dataclasses.fields(self.options_class)]
        return self.options_class(**{**{k: getattr(self, k) for k in names}, **changes})

    @model_validator(mode="after")
    def _check(self):
        try:
            self.options()
        except RecgenError as e:
            raise ValueError(str(e)) from None
        return self


def request_model(name: str, cls, extra: dict[str, tuple[Any, Any]],
                  overrides: dict[str, dict[str, Any]] | None = None) -> type[OptionsRequest]:
    """A pydantic model with the `extra` fields ({name: (type, Field)}) and one per field of dataclass `cls`:
    its type, default, description (metadata "help") and alias (metadata "flag"); overrides[name] adds or
    replaces Field arguments (default, description, bounds) for this route."""
    hints, fields = get_type_hints(cls), dict(extra)
    for f in dataclasses.fields(cls):
        kw = {"description": f.metadata.get("help", ""), **(overrides or {}).get(f.name, {})}
        if "flag" in f.metadata:
            kw.setdefault("alias", f.metadata["flag"])
        fields[f.name] = (hints[f.name], Field(kw.pop("default", f.default), **kw))
    model = create_model(name, __base__=OptionsRequest, **fields)
    model.options_class = cls
    return model


SampleRequest = request_model(
    "SampleRequest", SampleOptions,
    {"run": (str, Field(description="generator run directory, relative to the runs root"))},
    {"n": {"default": 16, "le": MAX_SAMPLES}, "steps": {"le": 1000}, "temperature": {"le": 100},
     "like": {"description": "base64 of an image file to make variations of (vae, diffusion, pixelcnn)"}})
SampleRequest.__doc__ = "`recgen generate sample`'s options; `like` carries the image file itself (base64)."
