from gameplane.kit.migrate import run_env
from gameplane.sessions.models import Base

run_env(Base.metadata)
