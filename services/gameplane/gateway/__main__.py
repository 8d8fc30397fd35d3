from gameplane.gateway.app import UVICORN_OPTIONS, build_app
from gameplane.gateway.settings import GatewaySettings
from gameplane.kit.app import serve


def main() -> None:
    settings = GatewaySettings()
    serve(build_app(settings), settings, **UVICORN_OPTIONS)


if __name__ == "__main__":
    main()
