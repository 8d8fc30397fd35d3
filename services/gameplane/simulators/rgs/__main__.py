from gameplane.kit.app import serve
from gameplane.simulators.rgs.app import build_app
from gameplane.simulators.rgs.settings import RgsSettings


def main() -> None:
    settings = RgsSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
