from gameplane.backoffice.app import build_app
from gameplane.backoffice.settings import BackofficeSettings
from gameplane.kit.app import serve


def main() -> None:
    settings = BackofficeSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
