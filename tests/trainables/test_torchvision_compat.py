"""``import_torchvision`` (trainables/_torchvision_compat.py), each case in a fresh interpreter: the workaround
registers op schemas process-wide and rewrites ``sys.modules``, which a test must not do to pytest's process.

Beside the installed torchvision, two stand-in ``torchvision`` packages written by the tests exercise the two
branches this machine's wheel may not reach: an import that fails for another reason (raised as it is), and one
that fails on the missing ``nms`` schema part-way through (its half-imported submodules are imported afresh)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

MODULE = REPO / "tailsweep" / "trainables" / "_torchvision_compat.py"

# Loaded from its file, not through ``tailsweep.trainables`` (whose imports would cost seconds per process).
CALL_TWICE = f"""
import importlib.util, json, logging, sys
spec = importlib.util.spec_from_file_location("compat", {str(MODULE)!r})
compat = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compat)
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
logging.getLogger("tailsweep").addHandler(Keep())
first = compat.import_torchvision()
second = compat.import_torchvision()
out = {{"same": first is second is sys.modules["torchvision"], "warnings": records}}
if len(sys.argv) > 1:
    import torch
    model = first.models.get_model("resnet18", weights=None, num_classes=3)
    out["logits"] = list(model.eval()(torch.zeros(2, 3, 16, 16)).shape)
print(json.dumps(out))
"""


def _python(code: str, *args: str, path: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in path)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, env=env)


def test_the_installed_torchvision_loads_its_models_and_says_once_when_it_needed_the_workaround():
    plain = _python("import torchvision")
    needs_it = plain.returncode != 0
    if needs_it:  # the only failure the workaround is for; any other would be a broken install
        assert "torchvision::nms does not exist" in plain.stderr, plain.stderr[-2000:]
    out = _python(CALL_TWICE, "model")
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["same"] and seen["logits"] == [2, 3]  # the pure-Python models work either way
    if needs_it:
        assert len(seen["warnings"]) == 1, seen["warnings"]  # said once, not per call
        assert "compiled ops do not match torch" in seen["warnings"][0] and "Pillow" in seen["warnings"][0]
    else:
        assert seen["warnings"] == []  # a matching wheel: nothing patched, nothing said


def _stand_in(root: Path, init: str) -> Path:
    pkg = root / "torchvision"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(init)
    return root


def test_another_import_error_is_raised_as_it_is(tmp_path):
    site = _stand_in(tmp_path, "raise RuntimeError('CUDA driver version is insufficient')\n")
    out = _python(CALL_TWICE, path=(site,))
    assert out.returncode != 0
    assert "RuntimeError: CUDA driver version is insufficient" in out.stderr
    assert "compiled ops do not match" not in out.stderr  # not mistaken for the nms case


def test_the_nms_failure_gets_the_schemas_and_a_clean_second_import(tmp_path):
    """The stand-in imports a submodule, then fails as the mismatched wheel does unless ``torchvision::nms`` has a
    schema: the workaround defines it, drops the half-imported submodule and imports the package again."""
    log = tmp_path / "executed"
    site = _stand_in(
        tmp_path / "site",
        "import torch\n"
        "from . import part\n"
        "if not hasattr(torch.ops.torchvision, 'nms'):\n"
        "    raise RuntimeError('operator torchvision::nms does not exist')\n"
        "__version__ = 'stand-in'\n",
    )
    (site / "torchvision" / "part.py").write_text(f"open({str(log)!r}, 'a').write('part\\n')\n")
    probe = CALL_TWICE.replace(
        "print(json.dumps(out))",
        "import torch\n"
        "out['qnms'] = hasattr(torch.ops.torchvision, 'qnms')\n"
        "out['part'] = 'torchvision.part' in sys.modules\n"
        "print(json.dumps(out))",
    )
    out = _python(probe, path=(site,))
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["same"] and seen["qnms"] and seen["part"]
    assert log.read_text().splitlines() == ["part", "part"]  # the submodule ran again, not reused half-imported
    assert len(seen["warnings"]) == 1
