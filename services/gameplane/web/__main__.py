from gameplane.kit.app import serve
from gameplane.web.app import build_app
from gameplane.web.settings import WebSettings


def main() -> None:
    settings = WebSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
