from gameplane.analytics.app import build_app
from gameplane.analytics.settings import AnalyticsSettings
from gameplane.kit.app import serve


def main() -> None:
    settings = AnalyticsSettings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
