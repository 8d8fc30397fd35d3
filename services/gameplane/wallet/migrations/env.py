from gameplane.kit.migrate import run_env
from gameplane.wallet.models import Base

run_env(Base.metadata)
