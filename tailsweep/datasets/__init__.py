"""Label tables: the Arrow/Parquet format, validation, statistics and the synthetic demo data.

Imports neither Ray nor MLflow.
"""

from ._format import (
    INPUT_KINDS,
    SPLITS,
    LabelTable,
    Manifest,
    TableError,
    ancestor_closure_matrix,
    write_table,
)
from ._images import import_images, read_taxonomy, split_groups
from ._longtail import exponential_profile, longtail_rows, make_longtail
from ._sampling import lpros_copies
from ._stats import BUCKETS, LabelStats, bucket_of, label_stats
from ._synth import synth_garments
from ._validate import Problem, TableValidationError, check_table, validate_table

__all__ = [
    "BUCKETS",
    "INPUT_KINDS",
    "SPLITS",
    "LabelStats",
    "LabelTable",
    "Manifest",
    "Problem",
    "TableError",
    "TableValidationError",
    "ancestor_closure_matrix",
    "bucket_of",
    "check_table",
    "import_images",
    "label_stats",
    "lpros_copies",
    "longtail_rows",
    "make_longtail",
    "exponential_profile",
    "read_taxonomy",
    "split_groups",
    "synth_garments",
    "validate_table",
    "write_table",
]
