"""The model zoo: functions that return a ``jdl.Module``."""

from jdl.models.mlp import mlp
from jdl.models import classic
