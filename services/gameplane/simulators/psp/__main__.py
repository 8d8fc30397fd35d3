from gameplane.kit.app import serve
from gameplane.simulators.psp.app import build_app
from gameplane.simulators.psp.settings import PspSettings


def main() -> None:
    settings = PspSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
