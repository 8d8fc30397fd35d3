from gameplane.kit.app import serve
from gameplane.sessions.app import build_app
from gameplane.sessions.settings import SessionsSettings


def main() -> None:
    settings = SessionsSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
