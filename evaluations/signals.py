"""What the reasoner tells the evaluation workbench, once stored (sent through console.signals.send):

    results_stored(run_ids)  results of these evaluation runs were written or swept (sent by `reasoner`;
                             received by `evaluations.runs` to report progress and finish runs)
"""

from __future__ import annotations

from django.dispatch import Signal

results_stored = Signal()
