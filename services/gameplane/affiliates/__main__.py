from gameplane.affiliates.app import build_app
from gameplane.affiliates.settings import AffiliatesSettings
from gameplane.kit.app import serve


def main() -> None:
    settings = AffiliatesSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
