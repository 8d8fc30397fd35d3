from gameplane.kit.app import serve
from gameplane.players.app import build_app
from gameplane.players.settings import PlayersSettings


def main() -> None:
    settings = PlayersSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
