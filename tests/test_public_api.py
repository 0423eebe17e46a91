"""The public names: cheap to import, callable, and not shadowed by submodules."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_keras() -> None:
    code = "import sys, fraudkeras; print('keras' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_functions_stay_functions_after_their_modules_load() -> None:
    import fraudkeras.analysis.attribution
    import fraudkeras.analysis.evaluation
    import fraudkeras.analysis.importance
    import fraudkeras.analysis.report
    import fraudkeras.comparison
    import fraudkeras.deploy.export
    import fraudkeras.deploy.scoring
    import fraudkeras.training.train

    names = (
        "train", "evaluate", "export", "compare", "score", "load_transactions", "split",
        "retune", "attributions", "explain", "permutation_importance", "write_report",
    )  # fmt: skip
    for name in names:
        assert callable(getattr(fraudkeras, name)), name
        assert getattr(fraudkeras, name).__name__ == name
    assert all(hasattr(fraudkeras, name) for name in fraudkeras.__all__)
