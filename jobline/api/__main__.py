"""``python -m jobline.api``: serve the REST API with settings from the environment."""

from jobline.api.server import serve

if __name__ == "__main__":
    serve()
