"""recgen: image recognition and image generation, trained, judged and improved by each other."""

__version__ = "0.1.0"

from recgen.errors import RecgenError  # noqa: E402

__all__ = ["RecgenError", "__version__"]
