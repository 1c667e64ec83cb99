"""tailsweep: which loss-weighting scheme works best on *your* long-tailed labels.

The package has four parts (see the README's architecture section):

- :mod:`tailsweep.datasets` -- the Arrow label-table format, validation, statistics, demo data.
- :mod:`tailsweep.losses` -- the weighting-scheme registry.
- :mod:`tailsweep.trainables` -- the Ray Train worker loop, models and metrics.
- :mod:`tailsweep.orchestrator` -- the sweep spec, the Ray Tune run, MLflow tracking and the CLI.
"""

__version__ = "0.1.0"

from . import _job_credentials

_job_credentials.load()  # a cluster job's processes: the tracking server's credentials from the job's file
