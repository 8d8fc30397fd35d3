from gameplane.games.app import build_app
from gameplane.games.settings import GamesSettings
from gameplane.kit.app import serve


def main() -> None:
    settings = GamesSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
