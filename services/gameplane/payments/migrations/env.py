from gameplane.kit.migrate import run_env
from gameplane.payments.models import Base

run_env(Base.metadata)
