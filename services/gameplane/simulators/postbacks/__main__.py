import uvicorn

from gameplane.simulators.postbacks.app import PostbackSimSettings, build_app


def main() -> None:
    settings = PostbackSimSettings()
    uvicorn.run(build_app(settings), host=settings.host, port=settings.port, log_config=None)


if __name__ == "__main__":
    main()
