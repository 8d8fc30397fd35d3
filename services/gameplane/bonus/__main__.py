from gameplane.bonus.app import build_app
from gameplane.bonus.settings import BonusSettings
from gameplane.kit.app import serve


def main() -> None:
    settings = BonusSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
