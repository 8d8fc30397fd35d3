from gameplane.kit.migrate import run_env
from gameplane.players.models import Base

run_env(Base.metadata)
