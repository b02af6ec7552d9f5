"""The REST API (Starlette): ``create_app`` builds it, ``serve`` runs it under uvicorn."""

from jobline.api.app import create_app
from jobline.api.server import serve

__all__ = ["create_app", "serve"]
