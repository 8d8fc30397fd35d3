from gameplane.kit.migrate import run_env
from gameplane.risk.models import Base

run_env(Base.metadata)
