from gameplane.kit.app import serve
from gameplane.risk.app import build_app
from gameplane.risk.settings import RiskSettings


def main() -> None:
    settings = RiskSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
