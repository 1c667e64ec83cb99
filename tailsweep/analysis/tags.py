"""The MLflow tags tailsweep writes on its runs (``orchestrator/_tracking.py``) and the analysis reads."""

SWEEP_TAG = "tailsweep.sweep_id"
KIND_TAG = "tailsweep.kind"  # "sweep" on a parent run
TRIAL_TAG = "tune_trial_id"
TRIAL_KEY_TAG = "tailsweep.trial_key"
STARTED_TAG = "tailsweep.trial_started"  # unix time the trial started (MLflow's start_time is its planning)
PARENT_TAG = "mlflow.parentRunId"
CONFIG_TAG = "tailsweep.config"  # the trial's configuration (scheme parameters, lr, weight decay) as JSON
RETRIES_TAG = "tailsweep.retries"  # times the trial's Train worker group was restarted (trainables/_tracking.py)
RETRY_TAG = "tailsweep.retry"  # why, and where each restart resumed: "restart 1: node ... lost; resumed at epoch 2"
NOTE_TAG = "mlflow.note.content"  # a run's description in the MLflow UI (the parent's: the report's verdict)
