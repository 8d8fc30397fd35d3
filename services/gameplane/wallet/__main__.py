from gameplane.kit.app import serve
from gameplane.wallet.app import build_app
from gameplane.wallet.settings import WalletSettings

settings = WalletSettings()
serve(build_app(settings), settings)
