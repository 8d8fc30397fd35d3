from gameplane.analytics.models import Base
from gameplane.kit.migrate import run_env

run_env(Base.metadata)
